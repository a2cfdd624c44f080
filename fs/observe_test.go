package fs

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// countingObserver keeps every End per file.
type countingObserver struct {
	mu       sync.Mutex
	begun    map[string]int
	results  map[string][]syscall.Errno
	refused  int
	inFlight int
}

type countingFile struct {
	o    *countingObserver
	path string
}

func (o *countingObserver) File(path string) FileObserver { return countingFile{o, path} }
func (o *countingObserver) OpenRefused()                  { o.mu.Lock(); o.refused++; o.mu.Unlock() }
func (f countingFile) Begin() {
	f.o.mu.Lock()
	defer f.o.mu.Unlock()
	f.o.begun[f.path]++
	f.o.inFlight++
}
func (f countingFile) End(took time.Duration, errno syscall.Errno) {
	f.o.mu.Lock()
	defer f.o.mu.Unlock()
	f.o.inFlight--
	f.o.results[f.path] = append(f.o.results[f.path], errno)
}

// Every open and every rebuild at offset 0 is one request, with its errno;
// a refused open is told too.
func TestObserverSeesEveryRequest(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting FUSE needs root")
	}
	o := &countingObserver{begun: map[string]int{}, results: map[string][]syscall.Errno{}}
	files := []File{
		{Path: "ok", Content: func(ctx context.Context, pid uint32) ([]byte, error) {
			SetOwner(ctx, "/a")
			return []byte("hello\n"), nil
		}},
		{Path: "fails", Content: func(ctx context.Context, pid uint32) ([]byte, error) {
			return nil, errors.New("broken")
		}},
	}
	mp := t.TempDir()
	server, err := Mount(mp, files, Options{Observer: o, MaxOpenPerOwner: 2, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := server.Unmount(); err != nil {
			syscall.Unmount(mp, syscall.MNT_DETACH)
		}
	})
	for range 3 {
		if _, err := os.ReadFile(filepath.Join(mp, "ok")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.ReadFile(filepath.Join(mp, "fails")); !errors.Is(err, syscall.EIO) {
		t.Fatalf("read of a failing file: %v, want EIO", err)
	}
	// A reader that seeks back to 0 makes a second request.
	f, err := os.Open(filepath.Join(mp, "ok"))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	f.ReadAt(buf, 0)
	f.ReadAt(buf, 0)
	// Two open already (the cap): the third is refused.
	g, err := os.Open(filepath.Join(mp, "ok"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Open(filepath.Join(mp, "ok")); !errors.Is(err, syscall.EMFILE) {
		t.Fatalf("open past the cap: %v, want EMFILE", err)
	}
	f.Close()
	g.Close()

	o.mu.Lock()
	defer o.mu.Unlock()
	var ok, emfile int
	for _, e := range o.results["ok"] {
		switch e {
		case 0:
			ok++
		case syscall.EMFILE:
			emfile++
		default:
			t.Errorf("unexpected errno %v", e)
		}
	}
	// 3 ReadFiles, the open and the rebuild of f, the open of g.
	if ok != 6 || emfile != 1 || o.begun["ok"] != 7 {
		t.Errorf("ok %d (want 6), EMFILE %d (want 1), begun %d (want 7)", ok, emfile, o.begun["ok"])
	}
	if r := o.results["fails"]; len(r) != 1 || r[0] != syscall.EIO {
		t.Errorf("failing file's results %v, want one EIO", r)
	}
	if o.refused != 1 || o.inFlight != 0 {
		t.Errorf("refused %d (want 1), in flight %d (want 0)", o.refused, o.inFlight)
	}
}

// The first failure of a container's file is logged at once, the rest
// counted and logged once a minute; another container's first is logged at
// once too.
func TestErrorLogRateLimits(t *testing.T) {
	var buf bytes.Buffer
	l := newErrorLog(slog.New(slog.NewTextHandler(&buf, nil)), time.Minute)
	for i := range 100 {
		l.failed("/a", "proc/meminfo", uint32(i), errors.New("memory.stat: EIO"))
	}
	l.failed("/b", "proc/meminfo", 7, errors.New("other"))
	if n := strings.Count(buf.String(), "\n"); n != 2 {
		t.Fatalf("%d lines for 100 failures of /a and 1 of /b, want 2:\n%s", n, buf.String())
	}
	start := l.keys[errorKey{"/a", "proc/meminfo"}].logged
	l.flush(start.Add(30 * time.Second))
	if n := strings.Count(buf.String(), "\n"); n != 2 {
		t.Fatalf("flushed before a minute:\n%s", buf.String())
	}
	l.flush(start.Add(time.Minute))
	out := buf.String()
	if n := strings.Count(out, "\n"); n != 3 || !strings.Contains(out, "times=99") || !strings.Contains(out, "cgroup=/a") {
		t.Fatalf("after a minute, want one line counting /a's other 99:\n%s", out)
	}
	// Quiet for a minute: forgotten, so the next failure is logged at once.
	l.flush(start.Add(2*time.Minute + time.Second))
	if len(l.keys) != 0 {
		t.Errorf("quiet keys kept: %v", l.keys)
	}
	l.failed("/a", "proc/meminfo", 1, errors.New("again"))
	if n := strings.Count(buf.String(), "\n"); n != 4 {
		t.Errorf("a failure after a quiet minute was not logged at once:\n%s", buf.String())
	}
}
