package integration

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// joinScript moves the shell that runs it into cg. It writes 0 ("the
// writer") rather than $$, which inside a new pid namespace is not the pid
// the cgroup files expect.
func joinScript(cg *testCgroup) string {
	var b strings.Builder
	for _, f := range cg.procsFiles() {
		fmt.Fprintf(&b, "echo 0 > %s; ", f)
	}
	return b.String()
}

func memTotalLine(t *testing.T, out string) string {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "MemTotal:") {
			return strings.Join(strings.Fields(l), " ")
		}
	}
	t.Fatalf("no MemTotal line in %q", out)
	return ""
}

func kb(bytes int64) string { return fmt.Sprintf("MemTotal: %d kB", bytes/1024) }

// Every process of a container sees the container's view: the cgroup of the
// init of its pid namespace, also from a nested cgroup or /init.scope.
func TestContainerViewIsTheInitsCgroup(t *testing.T) {
	d := startDaemon(t)
	ctr := newCgroup(t, "ctr", nil)
	ctr.SetMemoryLimit(t, 300*mib)
	nested := newCgroup(t, "nested", ctr)
	nested.SetMemoryLimit(t, 100*mib)
	scope := newCgroup(t, "init.scope", ctr)
	scope.SetMemoryLimit(t, 50*mib)

	cases := []struct {
		name, script string
		want         int64
	}{
		{"host pid namespace in a nested cgroup gets its own cgroup",
			joinScript(nested) + "head -n1 /proc/meminfo", 100 * mib},
		{"a process of the container in a nested cgroup gets the init's cgroup",
			"unshare -p -f /bin/sh -c '/bin/sh -c \"" + joinScript(nested) + "head -n1 /proc/meminfo\"'", 300 * mib},
		{"an init in /init.scope stands for its parent",
			"unshare -p -f /bin/sh -c '" + joinScript(scope) + "head -n1 /proc/meminfo'", 300 * mib},
		{"a grandchild of the init after its parent exited",
			"unshare -p -f /bin/sh -c '(/bin/sh -c \"sleep 0.2; head -n1 /proc/meminfo\" &) ; sleep 1'", 300 * mib},
	}
	// On v2 a cgroup that enables controllers for its children holds no
	// processes (no internal processes), so there the container's
	// processes start in its init.scope, as systemd puts them.
	start := ctr
	if unified {
		start = scope
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := memTotalLine(t, d.run(t, start, c.script)); got != kb(c.want) {
				t.Errorf("got %q, want %q", got, kb(c.want))
			}
		})
	}
}

// A caller in the host's root cgroup sees the host's own values.
func TestRootCgroupSeesHost(t *testing.T) {
	d := startDaemon(t)
	rootProcs := "/sys/fs/cgroup/memory/cgroup.procs"
	if unified {
		rootProcs = "/sys/fs/cgroup/cgroup.procs"
	}
	out := d.run(t, nil, "echo 0 > "+rootProcs+"; head -n1 /proc/meminfo")
	host, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := memTotalLine(t, out), memTotalLine(t, string(host)); got != want {
		t.Errorf("root cgroup caller: %q, want the host's %q", got, want)
	}
}
