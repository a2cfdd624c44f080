package fs

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

type errnoErr syscall.Errno

func (e errnoErr) Error() string        { return syscall.Errno(e).Error() }
func (e errnoErr) Errno() syscall.Errno { return syscall.Errno(e) }

func mountForTest(t *testing.T, files []File) string {
	t.Helper()
	return mountWith(t, files, Options{})
}

func mountWith(t *testing.T, files []File, o Options) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting FUSE needs root")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("no /dev/fuse")
	}
	mp := t.TempDir()
	server, err := Mount(mp, files, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := server.Unmount(); err != nil {
			syscall.Unmount(mp, syscall.MNT_DETACH)
		}
	})
	return mp
}

// Each open gets its own snapshot, however large, and later offsets of that
// open come from it even after other opens built different content.
func TestSnapshotPerOpen(t *testing.T) {
	var opens atomic.Int32
	const size = 3<<20 + 123
	mp := mountForTest(t, []File{{Path: "proc/big", Content: func(ctx context.Context, pid uint32) ([]byte, error) {
		n := opens.Add(1)
		return bytes.Repeat([]byte{'0' + byte(n%10)}, size), nil
	}}})
	first, err := os.Open(filepath.Join(mp, "proc/big"))
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	head := make([]byte, 4096)
	if _, err := io.ReadFull(first, head); err != nil {
		t.Fatal(err)
	}
	// Another open in between builds new content.
	second, err := os.ReadFile(filepath.Join(mp, "proc/big"))
	if err != nil || len(second) != size || second[0] != '2' {
		t.Fatalf("second open: %d bytes starting %q, %v", len(second), second[:1], err)
	}
	rest, err := io.ReadAll(first)
	if err != nil {
		t.Fatal(err)
	}
	all := append(head, rest...)
	if len(all) != size || bytes.Count(all, []byte{'1'}) != size {
		t.Fatalf("first open read %d bytes, not one consistent snapshot of %d", len(all), size)
	}
	// Reading at an offset beyond the end gives EOF.
	if n, err := first.ReadAt(make([]byte, 10), size+10); n != 0 || err != io.EOF {
		t.Errorf("read past the end: %d, %v", n, err)
	}
}

// With go-fuse's reader pool (Readers 0, what --gomaxprocs above 1 gives),
// readers are served in parallel: four opens must be inside their content
// functions at the same time.
func TestOpensAreServedInParallel(t *testing.T) {
	const n = 4
	var inside sync.WaitGroup
	inside.Add(n)
	mp := mountForTest(t, []File{{Path: "f", Content: func(ctx context.Context, pid uint32) ([]byte, error) {
		inside.Done()
		done := make(chan struct{})
		go func() { inside.Wait(); close(done) }()
		select {
		case <-done:
			return []byte("ok\n"), nil
		case <-time.After(10 * time.Second):
			return nil, errors.New("opens were not served in parallel")
		}
	}}})
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if b, err := os.ReadFile(filepath.Join(mp, "f")); err != nil || string(b) != "ok\n" {
				t.Errorf("read %q, %v", b, err)
			}
		}()
	}
	wg.Wait()
}

// With Readers 1 one goroutine answers every request in turn: 8 parallel
// readers all get their content, and no two content functions ever run at
// once (the go-fuse patch's MaxReaders starts no second reader).
func TestOneReaderAnswersInTurn(t *testing.T) {
	var inside, most atomic.Int32
	mp := mountWith(t, []File{{Path: "f", Content: func(ctx context.Context, pid uint32) ([]byte, error) {
		n := inside.Add(1)
		defer inside.Add(-1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(time.Millisecond) // room for a second reader to come in
		return []byte("ok\n"), nil
	}}}, Options{Readers: 1})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				if b, err := os.ReadFile(filepath.Join(mp, "f")); err != nil || string(b) != "ok\n" {
					t.Errorf("read %q, %v", b, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if m := most.Load(); m != 1 {
		t.Errorf("%d content functions ran at once with Readers 1, want 1", m)
	}
}

func TestContentErrors(t *testing.T) {
	mp := mountForTest(t, []File{
		{Path: "gone", Content: func(ctx context.Context, pid uint32) ([]byte, error) { return nil, errnoErr(syscall.ESRCH) }},
		{Path: "broken", Content: func(ctx context.Context, pid uint32) ([]byte, error) { return nil, errors.New("boom") }},
		{Path: "pid", Content: func(ctx context.Context, pid uint32) ([]byte, error) {
			return []byte(strconv.Itoa(int(pid))), nil
		}},
	})
	if _, err := os.ReadFile(filepath.Join(mp, "gone")); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("ErrorErrno: %v, want ESRCH", err)
	}
	if _, err := os.ReadFile(filepath.Join(mp, "broken")); !errors.Is(err, syscall.EIO) {
		t.Errorf("plain error: %v, want EIO", err)
	}
	// The content function learns the calling thread.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	fd, err := syscall.Open(filepath.Join(mp, "pid"), syscall.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	buf := make([]byte, 32)
	n, err := syscall.Read(fd, buf)
	if err != nil || string(buf[:n]) != strconv.Itoa(syscall.Gettid()) {
		t.Errorf("pid file says %q (%v), the reading thread is %d", buf[:n], err, syscall.Gettid())
	}
}

func TestBadPathsAreRejected(t *testing.T) {
	for _, p := range []string{"", "/abs", "a/../b", "a//b"} {
		if _, err := Mount(t.TempDir(), []File{{Path: p}}, Options{}); err == nil {
			t.Errorf("path %q accepted", p)
		}
	}
}

// A reader that comes back to offset 0 (top's lseek before each refresh)
// gets fresh content, as from /proc; other offsets stay on the snapshot.
func TestReadAtZeroAgainRebuilds(t *testing.T) {
	var opens atomic.Int32
	mp := mountForTest(t, []File{{Path: "f", Content: func(ctx context.Context, pid uint32) ([]byte, error) {
		return []byte(strconv.Itoa(int(opens.Add(1))) + "\n"), nil
	}}})
	f, err := os.Open(filepath.Join(mp, "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 16)
	for want := 1; want <= 3; want++ {
		n, err := f.ReadAt(buf, 0)
		if err != nil && err != io.EOF {
			t.Fatal(err)
		}
		if got := string(buf[:n]); got != strconv.Itoa(want)+"\n" {
			t.Errorf("read %d at offset 0: %q, want %d", want, got, want)
		}
	}
	// The first read at 0 uses the open's own snapshot: three reads, three
	// builds, not four.
	if n := opens.Load(); n != 3 {
		t.Errorf("%d builds for one open and three reads at 0, want 3", n)
	}
}

// The mount is read-only, so the kernel refuses write opens, O_TRUNC on a
// read-only open included, with EROFS before the daemon is asked.
func TestMountIsReadOnly(t *testing.T) {
	mp := mountForTest(t, []File{{Path: "f", Content: func(ctx context.Context, pid uint32) ([]byte, error) { return []byte("ok\n"), nil }}})
	var st syscall.Statfs_t
	if err := syscall.Statfs(mp, &st); err != nil || st.Flags&0x1 == 0 { // ST_RDONLY
		t.Errorf("statfs flags %#x (%v), want ST_RDONLY", st.Flags, err)
	}
	for _, flags := range []int{os.O_WRONLY, os.O_RDWR, os.O_RDONLY | os.O_TRUNC} {
		if fd, err := syscall.Open(filepath.Join(mp, "f"), flags, 0); !errors.Is(err, syscall.EROFS) {
			t.Errorf("open with flags %#x: %v, want EROFS", flags, err)
			if err == nil {
				syscall.Close(fd)
			}
		}
	}
}
