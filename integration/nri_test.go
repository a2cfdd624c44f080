package integration

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// specBindable are the served files runc lets a container's spec bind:
// these /proc files and anything under /sys.
func specBindable(rel string) bool {
	switch rel {
	case "proc/cpuinfo", "proc/diskstats", "proc/meminfo", "proc/stat", "proc/swaps", "proc/uptime", "proc/loadavg":
		return true
	}
	return strings.HasPrefix(rel, "sys/")
}

// freeTotal runs procps free -b in the container and returns the total of
// its Mem: row, with what free printed.
func (c *containerd) freeTotal(id string) (int64, string) {
	c.t.Helper()
	out := c.Crictl("exec", id, "free", "-b")
	mem, _ := freeBytes(c.t, out)
	return mem["total"], out
}

// cgprocfsBinds are the container's spec mounts whose source is in the
// cgprocfs mount at mp, by destination.
func cgprocfsBinds(spec runtimeSpec, mp string) map[string][]string {
	out := map[string][]string{}
	for _, m := range spec.Mounts {
		if strings.HasPrefix(m.Source, mp+"/") {
			out[m.Destination] = m.Options
		}
	}
	return out
}

// TestNRIContainerd runs cgprocfs as an NRI plugin of a real containerd
// (CRI, runc, crictl): a pod's container limited to 200 MiB sees 200 MiB in
// free through the binds the plugin put in its spec; a container that ran
// before cgprocfs gets the files when the plugin connects (attach at
// Synchronize); the annotation and an excluded namespace leave containers
// alone; the daemon serves while no NRI socket exists and connects when
// containerd comes, and again after containerd restarts.
func TestNRIContainerd(t *testing.T) {
	const limit = 209715200 // 200 MiB
	c := newContainerd(t)
	web := c.RunPod("web", "default", nil)
	early := c.Container(web, "early", limit, nil)
	if total, out := c.freeTotal(early); total == limit {
		t.Fatalf("before cgprocfs runs, free already shows the limit:\n%s", out)
	}

	// With containerd stopped (its containers go on) there is no NRI
	// socket: the daemon says so and serves all the same.
	c.Stop()
	os.Remove(c.NRISocket)
	d := startDaemon(t, "--nri", "--nri-socket", c.NRISocket)
	poll(t, 10*time.Second, "the daemon to log that there is no NRI socket", func() bool {
		return strings.Contains(d.logs(), "no NRI socket")
	})
	if _, err := os.ReadFile(d.Path("proc/meminfo")); err != nil {
		t.Fatalf("the daemon does not serve without an NRI socket: %v", err)
	}
	start := time.Now()
	c.Start()
	poll(t, 20*time.Second, "the plugin to register with containerd", func() bool {
		return strings.Count(d.logs(), "nri: registered") == 1
	})
	t.Logf("registered %v after containerd started", time.Since(start).Round(time.Millisecond))
	if !strings.Contains(c.Log(), "90-cgprocfs") {
		t.Errorf("containerd's log does not name the plugin 90-cgprocfs")
	}

	// At Synchronize the running container is attached.
	poll(t, 10*time.Second, "the container started before cgprocfs to see its limit", func() bool {
		total, _ := c.freeTotal(early)
		return total == limit
	})

	// A container created now gets binds in its spec.
	workload := c.Container(web, "workload", limit, nil)
	total, out := c.freeTotal(workload)
	t.Logf("free -b in the pod's container:\n%s", out)
	if total != limit {
		t.Errorf("free -b total %d, want %d", total, limit)
	}
	binds := cgprocfsBinds(c.Spec(workload), d.Mountpoint)
	var want []string
	// Files runc refuses in a spec (proc/vmstat, proc/pressure/*) are
	// attached once the container runs.
	var attachOnly []string
	for _, entry := range d.binds() {
		if rel := strings.TrimSuffix(entry, "/"); specBindable(rel) {
			want = append(want, "/"+rel)
		} else {
			attachOnly = append(attachOnly, "/"+rel)
		}
	}
	if len(want) == 0 {
		t.Fatal("the mount serves no file a spec can bind")
	}
	for _, dest := range want {
		opts, ok := binds[dest]
		if !ok {
			t.Errorf("the spec has no bind of %s; its cgprocfs binds: %v", dest, binds)
			continue
		}
		if !slices.Contains(opts, "ro") {
			t.Errorf("the spec's bind of %s is not read-only: %v", dest, opts)
		}
	}
	if len(binds) != len(want) {
		t.Errorf("the spec has %d cgprocfs binds, want %d (%v)", len(binds), len(want), want)
	}
	t.Logf("spec binds: %d (%s ...)", len(binds), want[0])
	countBinds := func(when string) {
		t.Helper()
		for _, id := range []string{early, workload} {
			inside := len(want)
			for _, f := range attachOnly {
				if _, err := c.crictl("exec", id, "test", "-e", f); err == nil {
					inside++
				}
			}
			if n := strings.Count(c.Crictl("exec", id, "cat", "/proc/self/mountinfo"), " - fuse.cgprocfs "); n != inside {
				t.Errorf("%s: %d cgprocfs mounts inside container %s, want %d (%d in the spec, the rest attached)", when, n, id, inside, len(want))
			}
		}
	}
	countBinds("after creation")
	if _, err := c.crictl("exec", workload, "sh", "-c", "echo x > /proc/meminfo"); err == nil {
		t.Error("/proc/meminfo is writable in the container")
	}

	// The annotation turns it off for a container; an excluded namespace
	// for a pod.
	optout := c.Container(web, "optout", limit, map[string]string{"cgprocfs.io/enabled": "false"})
	system := c.RunPod("dns", "kube-system", nil)
	coredns := c.Container(system, "coredns", limit, nil)
	skipped := func(when string) {
		t.Helper()
		for _, id := range []string{optout, coredns} {
			if b := cgprocfsBinds(c.Spec(id), d.Mountpoint); len(b) != 0 {
				t.Errorf("%s: container %s has cgprocfs binds in its spec: %v", when, id, b)
			}
			if total, out := c.freeTotal(id); total == limit {
				t.Errorf("%s: container %s sees its limit:\n%s", when, id, out)
			}
		}
	}
	skipped("after creation")

	// containerd restarts: the plugin connects again, attaches into none
	// of the skipped containers, and binds into new ones.
	c.Stop()
	c.Start()
	poll(t, 30*time.Second, "the plugin to register again after containerd restarted", func() bool {
		return strings.Count(d.logs(), "nri: registered") == 2
	})
	after := c.Container(web, "after-restart", limit, nil)
	if total, out := c.freeTotal(after); total != limit {
		t.Errorf("after containerd restarted: free -b total %d, want %d:\n%s", total, limit, out)
	}
	// Synchronize's attaches run in the background: wait until the daemon
	// logged the second one before looking at the skipped containers.
	poll(t, 10*time.Second, "the second synchronize", func() bool {
		return strings.Count(d.logs(), "nri: synchronized") == 2
	})
	skipped("after containerd restarted")
	// Attaching again binds nothing twice.
	countBinds("after containerd restarted")
	if strings.Contains(d.logs(), "level=ERROR") || strings.Contains(d.logs(), "panicked") {
		t.Errorf("the daemon logged errors:\n%s", d.logs())
	}
	if t.Failed() || testing.Verbose() {
		t.Logf("cgprocfs log:\n%s", d.logs())
	}
}
