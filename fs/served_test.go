package fs

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestServedFiles(t *testing.T) {
	mp := t.TempDir()
	for _, p := range []string{"proc/meminfo", "proc/stat", "sys/block/sda/stat", "sys/devices/system/cpu/online", "sys/empty/x"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(mp, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(p, "/x") {
			if err := os.WriteFile(filepath.Join(mp, p), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Directories the tree makes show 0555; only one served whole shows
	// 0755 (TestSourceDirFollowsCaller).
	filepath.WalkDir(mp, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o555)
		}
		return nil
	})
	got, err := ServedFiles(mp)
	want := []string{"proc/meminfo", "proc/stat", "sys/block/sda/stat", "sys/devices/system/cpu/online"}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("ServedFiles: %q, %v; want %q", got, err, want)
	}
	if _, err := ServedFiles(filepath.Join(mp, "missing")); err == nil {
		t.Error("ServedFiles of a missing directory: no error")
	}
}
