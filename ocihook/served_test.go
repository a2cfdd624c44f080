package ocihook

import (
	"os"
	"path/filepath"
	"slices"
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

func TestServedFiles(t *testing.T) {
	mp := t.TempDir()
	mkfiles(t, mp, "proc/meminfo", "proc/stat", "sys/block/sda/stat", "sys/devices/system/cpu/online", "sys/empty/")
	got, err := ServedFiles(mp)
	want := []string{"proc/meminfo", "proc/stat", "sys/block/sda/stat", "sys/devices/system/cpu/online"}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("ServedFiles: %q, %v; want %q", got, err, want)
	}
	if _, err := ServedFiles(filepath.Join(mp, "missing")); err == nil {
		t.Error("ServedFiles of a missing directory: no error")
	}
}

func TestServingNotMounted(t *testing.T) {
	ok, why, err := Serving(t.TempDir())
	if err != nil || ok || !strings.Contains(why, "no cgprocfs is mounted") {
		t.Errorf("Serving of a plain directory: %v, %q, %v", ok, why, err)
	}
}

func TestEscapeMountinfo(t *testing.T) {
	if got := escapeMountinfo("/var/lib/my mnt\\x"); got != `/var/lib/my\040mnt\134x` {
		t.Errorf("escapeMountinfo: %q", got)
	}
}
