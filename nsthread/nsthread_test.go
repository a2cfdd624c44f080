package nsthread

import (
	"errors"
	"os"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

func init() { runtime.LockOSThread() }

func mountNS(t *testing.T, p string) string {
	t.Helper()
	ns, err := os.Readlink(p)
	if err != nil {
		t.Fatal(err)
	}
	return ns
}

func TestEnterErrorSkipsFn(t *testing.T) {
	want := errors.New("entering")
	ran := false
	if err := Run(func() error { return want }, func() error { ran = true; return nil }); err != want {
		t.Fatalf("Run = %v, want %v", err, want)
	}
	if ran {
		t.Error("fn ran after enter failed")
	}
}

func TestFnRunsInTheEnteredNamespaceOnly(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: unshare(CLONE_NEWNS)")
	}
	before := mountNS(t, "/proc/self/ns/mnt")
	var inside string
	err := Run(func() error { return unix.Unshare(unix.CLONE_NEWNS) }, func() error {
		inside = mountNS(t, "/proc/thread-self/ns/mnt")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if inside == before {
		t.Errorf("fn ran in %s, the process's own mount namespace", inside)
	}
	// Later goroutines never run on that thread: a few hundred of them
	// all see the process's namespace.
	for range 200 {
		got := make(chan string, 1)
		go func() {
			ns, _ := os.Readlink("/proc/thread-self/ns/mnt")
			got <- ns
		}()
		if ns := <-got; ns != before {
			t.Fatalf("a later goroutine ran in %s, want %s", ns, before)
		}
	}
	if after := mountNS(t, "/proc/self/ns/mnt"); after != before {
		t.Errorf("/proc/self shows %s after Run, want %s", after, before)
	}
}
