package integration

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	cgfs "github.com/cgprocfs/cgprocfs/fs"
)

const timeoutSysctl = "/proc/sys/fs/fuse/default_request_timeout"

// A stopped daemon does not hang its readers for good where the kernel has a
// FUSE request timeout (6.14 and later): after the default timeout (30 s;
// the kernel looks every 15 s) it aborts the connection, the waiting reader
// gets ECONNABORTED, later ones ENOTCONN, and the daemon, continued, finds
// its connection gone and exits. The host-wide default is set only while the
// daemon's own connection starts.
func TestHungDaemonTimesOut(t *testing.T) {
	needRoot(t)
	before, err := os.ReadFile(timeoutSysctl)
	if errors.Is(err, os.ErrNotExist) {
		t.Skip("this kernel has no FUSE request timeout (Linux 6.14 and later): a stopped daemon blocks its readers until it continues")
	}
	if err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t)
	if after, _ := os.ReadFile(timeoutSysctl); string(after) != string(before) {
		t.Errorf("%s is %q after the daemon started, was %q", timeoutSysctl, after, before)
	}
	if err := syscall.Kill(d.serverPid(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(d.serverPid(), syscall.SIGCONT) })

	// A reader in its own process, so that the test never blocks on it.
	reader := exec.Command("cat", d.Path("proc/meminfo"))
	var out strings.Builder
	reader.Stdout, reader.Stderr = &out, &out
	start := time.Now()
	if err := reader.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- reader.Wait() }()
	t.Cleanup(func() { reader.Process.Kill() })
	limit := cgfs.DefaultRequestTimeout + 15*time.Second + 10*time.Second
	select {
	case err := <-done:
		took := time.Since(start)
		t.Logf("reader returned after %v: %v, %q", took.Round(time.Millisecond), err, out.String())
		if err == nil || !strings.Contains(out.String(), "connection abort") && !strings.Contains(out.String(), "not connected") {
			t.Errorf("reader of a stopped daemon: %v, %q; want a connection abort", err, out.String())
		}
		// The kernel rounds the timeout up to its 15 s check, never down.
		if took < cgfs.DefaultRequestTimeout-time.Second {
			t.Errorf("aborted after %v, before the %v timeout", took, cgfs.DefaultRequestTimeout)
		}
	case <-time.After(limit):
		t.Fatalf("reader still blocked %v after the daemon stopped", limit)
	}
	if _, err := os.ReadFile(d.Path("proc/uptime")); !errors.Is(err, syscall.ENOTCONN) {
		t.Errorf("reading after the abort: %v, want ENOTCONN", err)
	}
	syscall.Kill(d.serverPid(), syscall.SIGCONT)
	select {
	case <-d.exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("the continued daemon did not exit after its connection was aborted")
	}
}
