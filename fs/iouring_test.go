package fs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cgprocfs/cgprocfs/cgroupview"
)

// ioURingForTest turns FUSE over io_uring on for the test, or skips it on a
// kernel without it, and puts the switch back when the test ends.
func ioURingForTest(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting FUSE needs root")
	}
	was, err := os.ReadFile(FuseURingParam)
	if err != nil {
		t.Skipf("no FUSE over io_uring on this kernel: %v", err)
	}
	t.Cleanup(func() {
		if err := RestoreIOUringSwitch(FuseURingParam, was); err != nil {
			t.Error(err)
		}
	})
	if _, err := EnableIOUring(FuseURingParam); err != nil {
		t.Fatal(err)
	}
}

// onlyCPU is the one CPU the calling thread may run on, or -1.
func onlyCPU() int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil || set.Count() != 1 {
		return -1
	}
	for c := 0; ; c++ {
		if set.IsSet(c) {
			return c
		}
	}
}

// Over io_uring every request is answered by the thread of its reader's
// CPU: a reader pinned to each CPU in turn gets its content from a thread
// pinned to that same CPU, chunked reads of a large file stay whole, errors
// reach the reader, and unmounting ends every queue's thread.
func TestIOUringAnswersOnTheReadersCPU(t *testing.T) {
	ioURingForTest(t)
	const size = 1<<20 + 17 // more than one READ's payload
	mp := t.TempDir()
	server, err := Mount(mp, []File{
		{Path: "cpu", Content: func(ctx context.Context, pid uint32) ([]byte, error) {
			return fmt.Appendf(nil, "%d", onlyCPU()), nil
		}},
		{Path: "big", Content: func(ctx context.Context, pid uint32) ([]byte, error) {
			return bytes.Repeat([]byte{'x'}, size), nil
		}},
		{Path: "gone", Content: func(ctx context.Context, pid uint32) ([]byte, error) { return nil, errnoErr(syscall.ESRCH) }},
	}, Options{IOUring: true})
	if err != nil {
		t.Fatal(err)
	}
	unmounted := false
	t.Cleanup(func() {
		if !unmounted {
			if err := server.Unmount(); err != nil {
				syscall.Unmount(mp, syscall.MNT_DETACH)
			}
		}
	})
	possible, err := os.ReadFile("/sys/devices/system/cpu/possible")
	if err != nil {
		t.Fatal(err)
	}
	cpus, err := cgroupview.ParseCPUList(possible)
	if err != nil {
		t.Fatal(err)
	}
	if n := server.WaitIOUring(); n != len(cpus) {
		t.Fatalf("%d io_uring queues serve, want one per possible CPU (%d)", n, len(cpus))
	}

	// Pinning the thread pins this goroutine only while it is locked to
	// it: a test runs on a goroutine of its own, which the Go scheduler
	// may otherwise move to another thread between two reads.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var mine unix.CPUSet
	if err := unix.SchedGetaffinity(0, &mine); err != nil {
		t.Fatal(err)
	}
	defer unix.SchedSetaffinity(0, &mine)
	read := 0
	for _, c := range cpus {
		if !mine.IsSet(c) {
			continue
		}
		read++
		var one unix.CPUSet
		one.Set(c)
		if err := unix.SchedSetaffinity(0, &one); err != nil {
			t.Fatal(err)
		}
		for range 20 {
			b, err := os.ReadFile(filepath.Join(mp, "cpu"))
			if err != nil || string(b) != fmt.Sprint(c) {
				t.Fatalf("read from CPU %d: answered on CPU %q, %v", c, b, err)
			}
		}
		if b, err := os.ReadFile(filepath.Join(mp, "big")); err != nil || len(b) != size || bytes.Count(b, []byte{'x'}) != size {
			t.Errorf("read of %d bytes from CPU %d: %d bytes, %v", size, c, len(b), err)
		}
		if _, err := os.ReadFile(filepath.Join(mp, "gone")); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("read of a failing file from CPU %d: %v, want ESRCH", c, err)
		}
	}

	if read == 0 {
		t.Fatal("the test may run on none of the possible CPUs")
	}
	if err := server.Unmount(); err != nil {
		t.Fatal(err)
	}
	unmounted = true
	done := make(chan struct{})
	go func() { server.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the io_uring queues still serve 10 s after the unmount")
	}
}
