package loadavg

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// cgroupDirOf is the directory of this process's cgroup in the hierarchy
// mounted at root (v1: a controller's mount; v2: /sys/fs/cgroup).
func cgroupDirOf(t *testing.T, root, controller string) string {
	t.Helper()
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for l := range strings.Lines(string(data)) {
		f := strings.SplitN(strings.TrimSpace(l), ":", 3)
		if len(f) != 3 {
			continue
		}
		if (controller == "" && f[0] == "0") || (controller != "" && strings.Contains(","+f[1]+",", ","+controller+",")) {
			return filepath.Join(root, f[2])
		}
	}
	t.Skipf("no %q hierarchy in /proc/self/cgroup", controller)
	return ""
}

// testHierarchy is where the test makes its cgroups: v1's cpu controller,
// or cgroup2.
func testHierarchy(t *testing.T) (root, controller string) {
	t.Helper()
	var st unix.Statfs_t
	if unix.Statfs("/sys/fs/cgroup", &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		return "/sys/fs/cgroup", ""
	}
	return "/sys/fs/cgroup/cpu", "cpu"
}

// The cgroup iterator sees a container's running and D-state threads, in
// its cgroup and below, and nothing of another cgroup's.
func TestCgroupTasksOneTreeOnly(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: BPF and cgroups")
	}
	root, controller := testHierarchy(t)
	w, err := NewCgroupTasks(cgroupDirOf(t, root, controller))
	if err != nil {
		t.Skipf("no BPF cgroup iterator here (Linux 6.7+ with BTF): %v", err)
	}
	t.Cleanup(func() { w.Close() })

	base := filepath.Join(root, fmt.Sprintf("cgprocfs-test-cgtasks-%d", os.Getpid()))
	child, other := filepath.Join(base, "child"), base+"-other"
	for _, d := range []string{base, child, other} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, d := range []string{child, base, other} {
			os.Remove(d)
		}
	})
	spin := func(dir string) int {
		t.Helper()
		cmd := exec.Command("sh", "-c", "echo $$ > "+filepath.Join(dir, "cgroup.procs")+" && exec sh -c 'while :; do :; done'")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd.Process.Pid
	}
	inChild, inOther := spin(child), spin(other)
	// Each spins once it has moved itself into its cgroup: runnable at
	// every moment from then on, on a CPU or queued.
	walk := func(dir string, want int) map[int]byte {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			s, err := w.Fresh(dir, 0)
			if err != nil {
				t.Fatal(err)
			}
			if s.States[want] == 'R' {
				return s.States
			}
			if time.Now().After(deadline) {
				t.Fatalf("the walk of %s never showed %d running: %v", dir, want, s.States)
			}
			time.Sleep(time.Millisecond)
		}
	}
	walk(other, inOther)
	if states := walk(base, inChild); states[inOther] != 0 {
		t.Errorf("the walk of %s shows %d of another cgroup: %v", base, inOther, states)
	}
	if states := walk(other, inOther); len(states) != 1 {
		t.Errorf("the walk of %s: %v, want only %d", other, states, inOther)
	}
	// Nothing is kept of a cgroup no longer asked about.
	w.Forget(0)
	w.mu.Lock()
	n := len(w.cgroups)
	w.mu.Unlock()
	if n != 0 {
		t.Errorf("%d cgroups kept after Forget(0)", n)
	}
	if _, err := w.Fresh(filepath.Join(base, "gone"), 0); err == nil {
		t.Error("a walk of a cgroup that does not exist gave no error")
	}
}
