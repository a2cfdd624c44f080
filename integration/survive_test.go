package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// container is a mount namespace in its own cgroup holding binds of every
// served file, as a container whose runtime bound them would.
type container struct {
	cg  *testCgroup
	cmd *exec.Cmd
	out *syncWriter
	// wantMem is the MemTotal figure (kB) its own reads must show.
	wantMem string
}

// startContainers starts n containers; the first readers of them read
// /proc/meminfo every 100 ms and print its first line.
func startContainers(t *testing.T, d *daemon, n, readers int) []*container {
	t.Helper()
	var cs []*container
	for i := range n {
		cg := newCgroup(t, fmt.Sprintf("survive%d", i), nil)
		limit := int64(64+i) << 20
		cg.SetMemoryLimit(t, limit)
		// "bound" says the prologue has bound every file.
		script := "echo bound; exec sleep 1000"
		if i < readers {
			script = "echo bound; while :; do read l < /proc/meminfo; echo \"$l\"; sleep 0.1; done"
		}
		c := &container{cg: cg, out: &syncWriter{w: &bytes.Buffer{}}, wantMem: fmt.Sprintf(" %d kB", limit>>10)}
		c.cmd = d.command(context.Background(), cg, script)
		c.cmd.Stdout, c.cmd.Stderr = c.out, c.out
		if err := c.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.cmd.Process.Kill(); c.cmd.Wait() })
		cs = append(cs, c)
	}
	// Every container has its binds in place before the test goes on.
	for _, c := range cs {
		poll(t, 20*time.Second, "a container's binds", func() bool { return strings.HasPrefix(c.out.String(), "bound\n") && c.readsLive() })
	}
	return cs
}

// readsLive tells whether the container's /proc/meminfo is a cgprocfs bind
// that answers. The test reads it through /proc/PID/root, which walks the
// container's mounts (the view is the test's own cgroup's: only the
// connection is checked). A dead bind fails statfs with ENOTCONN; the
// kernel's own file is not a FUSE file.
func (c *container) readsLive() bool {
	p := fmt.Sprintf("/proc/%d/root/proc/meminfo", c.cmd.Process.Pid)
	var st syscall.Statfs_t
	if err := syscall.Statfs(p, &st); err != nil || st.Type != fuseSuperMagic {
		return false
	}
	_, err := os.ReadFile(p)
	return err == nil
}

// fuseSuperMagic is the f_type of a FUSE filesystem.
const fuseSuperMagic = 0x65735546

// restartAndCheck stops the daemon with stop, starts a new one at the same
// mount point, and checks that every container reads again, and the readers
// their own MemTotal, within 1 s of the new daemon's start.
func restartAndCheck(t *testing.T, d *daemon, cs []*container, stop func()) {
	t.Helper()
	stop()
	<-d.exited
	if cs[0].readsLive() {
		t.Fatal("a container still reads with the daemon gone: the test cannot tell a re-attach")
	}
	marks := make([]int, len(cs))
	for i, c := range cs {
		marks[i] = len(c.out.String())
	}
	began := time.Now()
	d2 := startDaemonAt(t, d.Mountpoint)
	for _, c := range cs {
		poll(t, 5*time.Second, "every container to read again", c.readsLive)
	}
	allLive := time.Since(began)
	var readersBack time.Duration
	for i, c := range cs {
		if !strings.Contains(c.cmd.Args[len(c.cmd.Args)-1], "read l") {
			continue
		}
		poll(t, 5*time.Second, "a reader to see its own MemTotal again", func() bool {
			return strings.Contains(c.out.String()[marks[i]:], c.wantMem)
		})
		readersBack = max(readersBack, time.Since(began))
		if after := c.out.String()[marks[i]:]; strings.Contains(after, "MemTotal") && !strings.Contains(after, c.wantMem) {
			t.Errorf("reader saw another MemTotal than its own (%s):\n%s", c.wantMem, after)
		}
	}
	t.Logf("%d containers: all binds live %v after the new daemon started, readers back after %v; daemon log:\n%s",
		len(cs), allLive.Round(time.Millisecond), readersBack.Round(time.Millisecond), d2.logs())
	// The readers need the binds live first: the same slack for the
	// daemon's own start under emulation (TCG), which now starts two
	// processes (the holder and its server).
	if readersBack > time.Second+200*time.Millisecond+startupSlack() {
		t.Errorf("readers came back %v after the start, want within 1 s (plus their 100 ms read interval)", readersBack)
	}
	if allLive > time.Second+startupSlack() {
		t.Errorf("binds live %v after the start, want within 1 s", allLive)
	}
}

// startupSlack is what the daemon's own start (exec, mount) may add under
// software emulation.
func startupSlack() time.Duration {
	if os.Getenv("CGPROCFS_VM") != "" {
		return 4 * time.Second
	}
	return 0
}

func survivalContainers() int {
	if os.Getenv("CGPROCFS_VM") != "" {
		return 10
	}
	return 50
}

// kill -9 of the daemon, then a new start: every container's binds are
// replaced with the new mount's, no container restarted.
func TestReattachAfterKill(t *testing.T) {
	d := startDaemon(t)
	cs := startContainers(t, d, survivalContainers(), 3)
	restartAndCheck(t, d, cs, func() { d.cmd.Process.Signal(syscall.SIGKILL) })
}

// SIGTERM, then a new start: the same.
func TestReattachAfterStop(t *testing.T) {
	d := startDaemon(t)
	cs := startContainers(t, d, survivalContainers(), 3)
	restartAndCheck(t, d, cs, func() { d.cmd.Process.Signal(syscall.SIGTERM) })
}

// A runc container started without any bind gets the files with
// `cgprocfs attach`, and loses them with `cgprocfs detach`.
func TestAttachDetachRuncContainer(t *testing.T) {
	d := startDaemon(t)
	c := newRuncBundle(t, nil, 200*mib, "/bin/sh", "-c", "exec sleep 1000")
	// The container keeps runc's stdio: a pipe would never reach EOF.
	logf, err := os.Create(t.TempDir() + "/runc.log")
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	run := exec.Command(c.runc, "--root", c.state, "run", "--detach", "--bundle", c.bundle, c.id)
	run.Stdout, run.Stderr = logf, logf
	if err := run.Run(); err != nil {
		out, _ := os.ReadFile(logf.Name())
		t.Fatalf("runc run --detach: %v\n%s", err, out)
	}
	state, err := exec.Command(c.runc, "--root", c.state, "state", c.id).Output()
	if err != nil {
		t.Fatalf("runc state: %v", err)
	}
	var pid int
	if i := strings.Index(string(state), `"pid": `); i >= 0 {
		fmt.Sscanf(string(state)[i+len(`"pid": `):], "%d", &pid)
	}
	if pid <= 0 {
		t.Fatalf("no pid in runc state:\n%s", state)
	}
	free := func() int64 {
		out, err := exec.Command(c.runc, "--root", c.state, "exec", c.id, "/usr/bin/free", "-b").CombinedOutput()
		if err != nil {
			t.Fatalf("runc exec free: %v\n%s", err, out)
		}
		mem, _ := freeBytes(t, string(out))
		return mem["total"]
	}
	host := free()
	if host == 200*mib {
		t.Fatalf("free shows the limit before any attach")
	}
	cgprocfs := func(args ...string) string {
		out, err := exec.Command(binary, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("cgprocfs %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	t.Logf("attach: %s", cgprocfs("attach", "--mountpoint", d.Mountpoint, fmt.Sprint(pid)))
	if got := free(); got != 200*mib {
		t.Fatalf("after attach free -b shows %d, want %d", got, 200*mib)
	}
	status := cgprocfs("status", d.Mountpoint)
	if !strings.Contains(status, "live: yes") || !strings.Contains(status, "containers: 1") {
		t.Errorf("status with one container attached:\n%s", status)
	}
	t.Logf("detach: %s", cgprocfs("detach", fmt.Sprint(pid)))
	if got := free(); got != host {
		t.Fatalf("after detach free -b shows %d, want the host's %d", got, host)
	}
}

// status says whether the mount is served, and fails when it is not.
func TestStatus(t *testing.T) {
	d := startDaemon(t)
	out, err := exec.Command(binary, "status", d.Mountpoint).CombinedOutput()
	if err != nil {
		t.Fatalf("status of a live daemon: %v\n%s", err, out)
	}
	for _, want := range []string{"live: yes", fmt.Sprintf("server-pid: %d\n", d.serverPid()), fmt.Sprintf("holder-pid: %d\n", d.cmd.Process.Pid), "version: ", "containers: 0"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	d.cmd.Process.Signal(syscall.SIGKILL)
	<-d.exited
	out, err = exec.Command(binary, "status", d.Mountpoint).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "live: no") {
		t.Errorf("status of a killed daemon: %v\n%s", err, out)
	}
}

// A daemon starting at another mount point re-attaches nothing of a live
// daemon's containers: each serves its own.
func TestReattachLeavesOtherMountsAlone(t *testing.T) {
	a := startDaemon(t)
	cs := startContainers(t, a, 2, 0)
	devBefore := bindDevs(t, cs[0])
	b := startDaemon(t)
	// Its re-attach is done when it logs that it serves.
	poll(t, 10*time.Second, "the second daemon to say it serves", func() bool { return strings.Contains(b.logs(), "msg=serving") })
	if got := bindDevs(t, cs[0]); got != devBefore {
		t.Fatalf("a container of the daemon at %s had its binds moved to %s's: %q, then %q", a.Mountpoint, b.Mountpoint, devBefore, got)
	}
	if strings.Contains(b.logs(), "re-attached") {
		t.Errorf("the second daemon re-attached something:\n%s", b.logs())
	}
}

// bindDevs lists the distinct devices of a container's cgprocfs binds.
func bindDevs(t *testing.T, c *container) string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", c.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	var devs []string
	for l := range strings.SplitSeq(string(data), "\n") {
		if f := strings.Fields(l); len(f) > 4 && strings.Contains(l, " - fuse.cgprocfs ") && f[3] != "/" && !slices.Contains(devs, f[2]) {
			devs = append(devs, f[2])
		}
	}
	if len(devs) == 0 {
		t.Fatalf("the container holds no cgprocfs binds:\n%s", data)
	}
	return strings.Join(devs, " ")
}
