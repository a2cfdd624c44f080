package kernelfs

import (
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
)

// PidFileNS answers for the process that has the pid now: after a process
// in another pid namespace exits and its pid goes to a process in ours, the
// namespace kept for the first is not given for the second.
func TestPidFileNSFollowsTheProcessNotThePid(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: a new pid namespace and ns_last_pid")
	}
	fs := New("/proc", Options{})
	t.Cleanup(func() { fs.Close() })
	self, err := fs.pidNSByPath(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	start := func(flags uintptr) *exec.Cmd {
		t.Helper()
		cmd := exec.Command("sleep", "60")
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: flags}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd
	}
	read := func(pid int) (uint64, error) {
		buf := fs.GetBuf()
		defer fs.PutBuf(buf)
		data, ns, err := fs.PidFileNS(pid, "cgroup", buf)
		if err == nil && len(data) == 0 {
			t.Fatalf("pid %d: empty cgroup file", pid)
		}
		return ns, err
	}

	pidNS := func(pid int) (uint64, error) { return fs.PidNS(pid) }
	// Each way of asking, first after the pid went to another process.
	for _, ask := range []struct {
		name string
		ns   func(int) (uint64, error)
	}{{"PidFileNS", read}, {"PidNS", pidNS}} {
		first := start(syscall.CLONE_NEWPID)
		pid := first.Process.Pid
		ns, err := read(pid)
		if err != nil {
			t.Fatal(err)
		}
		if want, _ := fs.pidNSByPath(pid); ns != want || ns == self {
			t.Fatalf("pid %d in a new pid namespace: namespace %d, want %d (ours is %d)", pid, ns, want, self)
		}
		first.Process.Kill()
		first.Wait()

		// The pid again, for a process in our namespace, while the
		// cache still holds the first one's entry: ns_last_pid makes
		// the next fork take it, unless another fork on the host
		// comes first.
		var second *exec.Cmd
		for range 50 {
			if err := os.WriteFile("/proc/sys/kernel/ns_last_pid", []byte(strconv.Itoa(pid-1)), 0); err != nil {
				t.Skipf("cannot choose the next pid: %v", err)
			}
			if c := start(0); c.Process.Pid == pid {
				second = c
				break
			}
		}
		if second == nil {
			t.Skipf("pid %d was not given again in 50 forks", pid)
		}
		if got, err := ask.ns(pid); err != nil || got != self {
			t.Errorf("%s of pid %d, reused by a process in our pid namespace %d: %d, %v", ask.name, pid, self, got, err)
		}
		second.Process.Kill()
		second.Wait()
		if _, err := ask.ns(pid); !IsGone(err) {
			t.Errorf("%s of pid %d, exited: got %v, want an error that says it is gone", ask.name, pid, err)
		}
	}
}
