package cgroupview

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Off cgroupfs the cache is bypassed: a fixture file replaced by rename is
// seen at once.
func TestFileCacheFixtureTreeReadPlainly(t *testing.T) {
	fc := testFiles(t)
	dir := t.TempDir()
	p := filepath.Join(dir, "memory.max")
	write := func(v string) {
		tmp := p + ".tmp"
		if err := os.WriteFile(tmp, []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, p); err != nil {
			t.Fatal(err)
		}
	}
	write("100\n")
	if v, err := fc.readLimit(p); err != nil || v != 100 {
		t.Fatalf("readLimit = %d, %v; want 100", v, err)
	}
	write("200\n")
	if v, err := fc.readLimit(p); err != nil || v != 200 {
		t.Fatalf("after rename readLimit = %d, %v; want 200", v, err)
	}
	if v, err := fc.readLimit(filepath.Join(dir, "nope", "memory.max")); err != nil || v != NoLimit {
		t.Fatalf("missing directory: readLimit = %d, %v; want NoLimit", v, err)
	}
	if _, err := fc.readUint(filepath.Join(dir, "memory.current")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v, want ErrNotExist", err)
	}
}

// realMemoryCgroup makes a memory cgroup on the host's cgroupfs (root
// only) and returns its directory and limit file name.
func realMemoryCgroup(t *testing.T, name string) (dir, limitFile string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to make cgroups")
	}
	base, limitFile := "/sys/fs/cgroup/memory", "memory.limit_in_bytes"
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		base, limitFile = "/sys/fs/cgroup", "memory.max"
	}
	if _, err := os.Stat(filepath.Join(base, "cgroup.procs")); err != nil {
		t.Skip("no memory cgroup hierarchy")
	}
	dir = filepath.Join(base, fmt.Sprintf("cgprocfs-test-filecache-%d-%s", os.Getpid(), name))
	return dir, limitFile
}

func mkCgroup(t *testing.T, dir, limitFile string, limit int) {
	t.Helper()
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Rmdir(dir) })
	if err := os.WriteFile(filepath.Join(dir, limitFile), []byte(strconv.Itoa(limit)), 0); err != nil {
		t.Fatal(err)
	}
}

// On cgroupfs descriptors are kept, yet a changed limit shows at once and a
// cgroup removed and made again, or renamed away, is never read through
// the old descriptors.
func TestFileCacheRealCgroupNeverStale(t *testing.T) {
	fc := testFiles(t)
	dir, limitFile := realMemoryCgroup(t, "a")
	moved := dir + "-moved"
	t.Cleanup(func() { syscall.Rmdir(moved) })
	p := filepath.Join(dir, limitFile)
	want := func(what string, v uint64) {
		t.Helper()
		got, err := fc.readLimit(p)
		if err != nil || got != v {
			t.Fatalf("%s: readLimit = %d, %v; want %d", what, got, err, v)
		}
	}
	mkCgroup(t, dir, limitFile, 100<<20)
	want("first read", 100<<20)
	if n := fc.fs.KeptFDs(); n != 1 {
		t.Fatalf("cgroup file not cached: %d descriptors kept, want 1", n)
	}

	if err := os.WriteFile(p, []byte(strconv.Itoa(200<<20)), 0); err != nil {
		t.Fatal(err)
	}
	want("limit changed", 200<<20)

	if err := syscall.Rmdir(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := fc.readUint(p); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("removed cgroup: %v, want ErrNotExist", err)
	}
	mkCgroup(t, dir, limitFile, 300<<20)
	want("made again", 300<<20)

	if err := os.Rename(dir, moved); err != nil {
		t.Skipf("cgroup rename not allowed here: %v", err)
	}
	mkCgroup(t, dir, limitFile, 400<<20)
	want("renamed away and made again", 400<<20)
	if v, err := fc.readLimit(filepath.Join(moved, limitFile)); err != nil || v != 300<<20 {
		t.Fatalf("renamed cgroup: %d, %v; want %d", v, err, 300<<20)
	}
}

// Readers, sweeps and evictions at once: run with -race.
func TestFileCacheConcurrentSweep(t *testing.T) {
	fc := testFiles(t)
	dir, limitFile := realMemoryCgroup(t, "b")
	mkCgroup(t, dir, limitFile, 100<<20)
	p := filepath.Join(dir, limitFile)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if v, err := fc.readLimit(p); err != nil || v != 100<<20 {
					errs <- fmt.Errorf("readLimit = %d, %v", v, err)
					return
				}
			}
		}()
	}
	deadline := time.Now().Add(300 * time.Millisecond)
	for time.Now().Before(deadline) {
		fc.fs.Sweep(0)
	}
	close(stop)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
}
