package kernelfs

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// A v1 cgroup renamed away, with another made at its path, is read afresh
// at the next use: through the inotify watch, and, where a directory has no
// watch, through the inode check by path.
func TestRenamedCgroupNotReadThroughOldDescriptors(t *testing.T) {
	base := "/sys/fs/cgroup/memory"
	var st syscall.Statfs_t
	if os.Geteuid() != 0 || syscall.Statfs(base, &st) != nil || st.Type != cgroupSuperMagic {
		t.Skip("needs root and a cgroup v1 memory hierarchy")
	}
	for _, watched := range []bool{true, false} {
		t.Run(fmt.Sprintf("watched=%v", watched), func(t *testing.T) {
			fs := New("/proc", Options{})
			t.Cleanup(func() { fs.Close() })
			if !watched {
				fs.cache.renames.close()
				fs.cache.renames = &renames{fd: -1}
			}
			dir := filepath.Join(base, fmt.Sprintf("cgprocfs-test-renames-%d-%v", os.Getpid(), watched))
			moved := dir + "-moved"
			mk := func(limit int) {
				t.Helper()
				if err := os.Mkdir(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, "memory.limit_in_bytes"), []byte(strconv.Itoa(limit)), 0); err != nil {
					t.Fatal(err)
				}
			}
			t.Cleanup(func() { syscall.Rmdir(dir); syscall.Rmdir(moved) })
			read := func(d string) string {
				t.Helper()
				buf := fs.GetBuf()
				defer fs.PutBuf(buf)
				data, err := fs.ReadFile(filepath.Join(d, "memory.limit_in_bytes"), buf)
				if err != nil {
					t.Fatal(err)
				}
				return strings.TrimSpace(string(data))
			}
			mk(100 << 20)
			if got := read(dir); got != strconv.Itoa(100<<20) {
				t.Fatalf("first read %s", got)
			}
			fs.cache.mu.Lock()
			e := fs.cache.entries[entryKey{dir: dir}]
			fs.cache.mu.Unlock()
			if e == nil || !e.checkIno || (e.wd > 0) != watched {
				t.Fatalf("entry %+v: want a kept v1 directory, watched %v", e, watched)
			}
			if err := os.Rename(dir, moved); err != nil {
				t.Skipf("cgroup rename not allowed here: %v", err)
			}
			mk(200 << 20)
			if got := read(dir); got != strconv.Itoa(200<<20) {
				t.Fatalf("cgroup made at the path of one renamed away: %s, want %d", got, 200<<20)
			}
			if got := read(moved); got != strconv.Itoa(100<<20) {
				t.Fatalf("renamed cgroup: %s, want %d", got, 100<<20)
			}
			if watched {
				fs.cache.mu.Lock()
				n := len(fs.cache.renames.wds)
				fs.cache.mu.Unlock()
				if n != 2 {
					t.Fatalf("%d watches, want 2 (the new directory and the renamed one)", n)
				}
			}
		})
	}
}
