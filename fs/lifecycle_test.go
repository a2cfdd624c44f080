package fs

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// mountAt mounts one file, hello, at mp and makes sure, when the test ends,
// that it is unmounted and its server has stopped.
func mountAt(t *testing.T, mp string) *fuse.Server {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting FUSE needs root")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("no /dev/fuse")
	}
	if err := os.MkdirAll(mp, 0o755); err != nil {
		t.Fatal(err)
	}
	hello := func(context.Context, uint32) ([]byte, error) { return []byte("hello\n"), nil }
	server, err := Mount(mp, []File{{Path: "hello", Content: hello}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if mounted, _ := mountedAt("/proc", mp); mounted {
			syscall.Unmount(mp, syscall.MNT_DETACH)
		}
		server.Wait()
	})
	return server
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), nil))
}

// serveInBackground runs Serve and returns its result channel.
func serveInBackground(ctx context.Context, t *testing.T, server *fuse.Server, mp string) <-chan error {
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, server, mp, testLogger(t)) }()
	return done
}

// waitServe waits for Serve's result, at most 5 s.
func waitServe(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("Serve still running 5 s later")
		return nil
	}
}

func mustBeMounted(t *testing.T, mp string, want bool) {
	t.Helper()
	got, err := mountedAt("/proc", mp)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("cgprocfs mounted at %q: %v, want %v", mp, got, want)
	}
}

func TestClaimMountpointCreatesIt(t *testing.T) {
	mp := filepath.Join(t.TempDir(), "a", "b")
	if err := ClaimMountpoint(mp, testLogger(t)); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(mp); err != nil || !st.IsDir() {
		t.Fatalf("mount point after ClaimMountpoint: %v, %v", st, err)
	}
}

// Also the kernel's own mountinfo escape: the path has a space.
func TestClaimMountpointRefusesALiveMount(t *testing.T) {
	mp := filepath.Join(t.TempDir(), "with space")
	mountAt(t, mp)
	mustBeMounted(t, mp, true)
	err := ClaimMountpoint(mp, testLogger(t))
	if err == nil || !strings.Contains(err.Error(), "already serves") {
		t.Fatalf("ClaimMountpoint on a live mount: %v, want already serves", err)
	}
	if b, err := os.ReadFile(filepath.Join(mp, "hello")); err != nil || string(b) != "hello\n" {
		t.Errorf("the live mount after the refusal: %q, %v", b, err)
	}
}

// A mount whose FUSE connection is aborted answers ENOTCONN, as one left by
// a killed daemon does; ClaimMountpoint detaches it.
func TestClaimMountpointReplacesAStaleMount(t *testing.T) {
	mp := filepath.Join(t.TempDir(), "with space")
	server := mountAt(t, mp)
	abortConnection(t, mp)
	var st syscall.Statfs_t
	if err := syscall.Statfs(mp, &st); !errors.Is(err, syscall.ENOTCONN) {
		t.Fatalf("statfs after the abort: %v, want ENOTCONN", err)
	}
	server.Wait()
	if err := ClaimMountpoint(mp, testLogger(t)); err != nil {
		t.Fatal(err)
	}
	mustBeMounted(t, mp, false)
	if st, err := os.Stat(mp); err != nil || !st.IsDir() {
		t.Fatalf("mount point after the claim: %v, %v", st, err)
	}
}

// abortConnection aborts the FUSE connection of the mount at mp as the
// holder does (AbortConnection: fusectl where it is mounted, else a private
// mount of it; on this development machine nothing mounts fusectl).
func abortConnection(t *testing.T, mp string) {
	t.Helper()
	id, err := ConnectionID(mp)
	if err != nil {
		t.Fatal(err)
	}
	before := fusectlMounts(t)
	if err := AbortConnection(id); err != nil {
		t.Fatal(err)
	}
	if after := fusectlMounts(t); after != before {
		t.Errorf("fusectl mounts in this mount namespace: %d before the abort, %d after", before, after)
	}
}

func fusectlMounts(t *testing.T) int {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(data), " - fusectl ")
}

func TestServeUnmountsWhenCtxEnds(t *testing.T) {
	mp := filepath.Join(t.TempDir(), "mnt")
	server := mountAt(t, mp)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := serveInBackground(ctx, t, server, mp)
	cancel()
	if err := waitServe(t, done); err != nil {
		t.Fatal(err)
	}
	mustBeMounted(t, mp, false)
}

// A reader holding a file open makes the unmount fail with EBUSY; Serve
// detaches the mount, which keeps serving that reader.
func TestServeDetachesABusyMount(t *testing.T) {
	mp := filepath.Join(t.TempDir(), "mnt")
	server := mountAt(t, mp)
	f, err := os.Open(filepath.Join(mp, "hello"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Unmount(mp, 0); !errors.Is(err, syscall.EBUSY) {
		t.Fatalf("unmount with a file open: %v, want EBUSY", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := serveInBackground(ctx, t, server, mp)
	cancel()
	if err := waitServe(t, done); err != nil {
		t.Fatal(err)
	}
	mustBeMounted(t, mp, false)
	b := make([]byte, 16)
	if n, err := f.ReadAt(b, 0); string(b[:n]) != "hello\n" {
		t.Errorf("reading the open file after the detach: %q, %v", b[:n], err)
	}
}

func TestServeReturnsWhenUnmountedElsewhere(t *testing.T) {
	mp := filepath.Join(t.TempDir(), "mnt")
	server := mountAt(t, mp)
	done := serveInBackground(context.Background(), t, server, mp)
	if err := syscall.Unmount(mp, 0); err != nil {
		t.Fatal(err)
	}
	if err := waitServe(t, done); err == nil || !strings.Contains(err.Error(), "went away") {
		t.Fatalf("Serve after an unmount by other hands: %v, want an error saying the mount went away", err)
	}
}
