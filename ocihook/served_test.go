package ocihook

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// mkfiles makes the files (paths ending in / are directories) under root.
func mkfiles(t *testing.T, root string, paths ...string) {
	t.Helper()
	for _, p := range paths {
		full := filepath.Join(root, p)
		if strings.HasSuffix(p, "/") {
			if err := os.MkdirAll(full, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte("x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestServingNotMounted(t *testing.T) {
	ok, why, err := Serving(t.TempDir())
	if err != nil || ok || !strings.Contains(why, "no cgprocfs is mounted") {
		t.Errorf("Serving of a plain directory: %v, %q, %v", ok, why, err)
	}
}
