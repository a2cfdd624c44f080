package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Handing the connection from one server to the next: SIGHUP (upgrade) and
// SIGKILL of the server (the holder restarts it), while containers read.

// readerFleet is containers (unshare'd mount namespaces in their own memory
// cgroups, holding binds of the served files) each running readers that
// count their reads: ok (their own MemTotal), wrong (another MemTotal) and
// failed. Each reader also keeps one open of /proc/meminfo across the
// handover and reads from it at the end.
type readerFleet struct {
	stop string
	cs   []*container
}

func startReaderFleet(t *testing.T, d *daemon, containers, readers int) *readerFleet {
	t.Helper()
	f := &readerFleet{stop: filepath.Join(t.TempDir(), "stop")}
	// The kernel's own MemTotal: what a reader gets from its /proc/meminfo
	// when no bind covers it (a re-attach without MOVE_MOUNT_BENEATH,
	// before 6.5, leaves microseconds between the old bind and the new).
	host := hostMemTotalKB(t)
	for i := range containers {
		cg := newCgroup(t, fmt.Sprintf("handover%d", i), nil)
		limit := int64(64+i) << 20
		cg.SetMemoryLimit(t, limit)
		want := strconv.FormatInt(limit>>10, 10)
		script := `echo bound
r() {
	ok=0 fail=0 wrong=0 kernel=0
	exec 3< /proc/meminfo
	read l <&3 || fail=$((fail+1))
	while [ ! -e ` + f.stop + ` ]; do
		if read l < /proc/meminfo; then
			case "$l" in
			*" ` + want + ` kB") ok=$((ok+1));;
			*" ` + host + ` kB") kernel=$((kernel+1));;
			*) wrong=$((wrong+1)); echo "wrong: $l";;
			esac
		else
			fail=$((fail+1))
		fi
		cat /proc/stat > /dev/null || fail=$((fail+1))
	done
	read l <&3 || { fail=$((fail+1)); echo "kept open: read failed"; }
	echo "reader ok=$ok fail=$fail wrong=$wrong kernel=$kernel"
}
for i in $(seq ` + strconv.Itoa(readers) + `); do r & done
wait
echo finished`
		c := &container{cg: cg, out: &syncWriter{w: &bytes.Buffer{}}, wantMem: " " + want + " kB"}
		c.cmd = d.command(context.Background(), cg, script)
		c.cmd.Stdout, c.cmd.Stderr = c.out, c.out
		if err := c.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.cmd.Process.Kill(); c.cmd.Wait() })
		f.cs = append(f.cs, c)
	}
	for _, c := range f.cs {
		poll(t, 20*time.Second, "a container's binds", func() bool { return strings.HasPrefix(c.out.String(), "bound\n") && c.readsLive() })
	}
	return f
}

var readerLine = regexp.MustCompile(`reader ok=(\d+) fail=(\d+) wrong=(\d+) kernel=(\d+)`)

func hostMemTotalKB(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(data))
	if len(f) < 2 || f[0] != "MemTotal:" {
		t.Fatalf("no MemTotal in /proc/meminfo:\n%s", data)
	}
	return f[1]
}

// finish stops the readers and sums their counts; kernel counts the reads
// of the kernel's own file, added to wrong on kernels where no re-attach
// happens (kernelOK false).
func (f *readerFleet) finish(t *testing.T) (ok, failed, wrong int) {
	return f.finishKernel(t, false)
}

func (f *readerFleet) finishKernel(t *testing.T, kernelOK bool) (ok, failed, wrong int) {
	t.Helper()
	if err := os.WriteFile(f.stop, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range f.cs {
		poll(t, 30*time.Second, "the readers to finish", func() bool { return strings.Contains(c.out.String(), "finished") })
		out := c.out.String()
		for _, m := range readerLine.FindAllStringSubmatch(out, -1) {
			o, _ := strconv.Atoi(m[1])
			fl, _ := strconv.Atoi(m[2])
			w, _ := strconv.Atoi(m[3])
			k, _ := strconv.Atoi(m[4])
			if kernelOK {
				if k > 0 {
					t.Logf("%d reads of the kernel's own /proc/meminfo during a re-attach", k)
				}
				k = 0
			}
			ok, failed, wrong = ok+o, failed+fl, wrong+w+k
		}
		if failed > 0 || wrong > 0 {
			t.Logf("container %s:\n%s", c.cg.Name, out)
		}
	}
	return ok, failed, wrong
}

// probe reads the mount from the host every millisecond and records the
// longest read and the failures: the pause a handover makes.
type probe struct {
	stop    chan struct{}
	done    chan struct{}
	mu      sync.Mutex
	longest time.Duration
	failed  int
	reads   int
	// lastFail is when the last failed read started.
	lastFail time.Time
}

func startProbe(path string) *probe {
	p := &probe{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for {
			select {
			case <-p.stop:
				return
			default:
			}
			start := time.Now()
			_, err := os.ReadFile(path)
			took := time.Since(start)
			p.mu.Lock()
			p.reads++
			p.longest = max(p.longest, took)
			if err != nil {
				p.failed++
				p.lastFail = start
			}
			p.mu.Unlock()
			time.Sleep(time.Millisecond)
		}
	}()
	return p
}

func (p *probe) finish() (longest time.Duration, reads, failed int) {
	close(p.stop)
	<-p.done
	return p.longest, p.reads, p.failed
}

// handoverScale is how many containers and readers each: fewer under TCG.
func handoverScale() (containers, readers int) {
	if os.Getenv("CGPROCFS_VM") != "" {
		return 2, 2
	}
	return 3, 4
}

// statusPids reads server-pid and holder-pid from `cgprocfs status`.
func statusPids(t *testing.T, mp string) (server, holder int) {
	t.Helper()
	out, _ := exec.Command(binary, "status", mp).CombinedOutput()
	for l := range strings.Lines(string(out)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "server-pid: "); ok {
			server, _ = strconv.Atoi(v)
		}
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "holder-pid: "); ok {
			holder, _ = strconv.Atoi(v)
		}
	}
	return server, holder
}

// copyBinary copies the binary under test to dir/cgprocfs, which the test
// may then replace.
func copyBinary(t *testing.T, dir string) string {
	t.Helper()
	exe := filepath.Join(dir, "cgprocfs")
	installFile(t, binary, exe)
	return exe
}

// installFile puts a copy of src at dst the way an operator's package
// manager does: written aside, then renamed over (the running binary is
// never written to).
func installFile(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	tmp := dst + ".new"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		t.Fatal(err)
	}
}

// binDir is a directory every user can enter, for a binary the daemon runs.
func binDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// resendKernel tells from the holder's log whether the kernel takes
// FUSE_NOTIFY_RESEND.
func resendKernel(t *testing.T, d *daemon) bool {
	t.Helper()
	poll(t, 10*time.Second, "the holder to hold the connection", func() bool { return strings.Contains(d.logs(), "holding the FUSE connection") })
	return strings.Contains(d.logs(), "resend=true")
}

// SIGHUP with the binary replaced by a rebuilt one: a new server from the
// new binary serves, and no container's read fails, hangs or sees another's
// values.
func TestUpgradeWithoutFailedReads(t *testing.T) {
	dir := binDir(t)
	exe := copyBinary(t, dir)
	mp := filepath.Join(dir, "mp")
	d := startDaemonExe(t, exe, mp, nil, "--metrics-listen", "", "--seccomp-listener", "")
	if !resendKernel(t, d) {
		upgradeIsRestart(t, d, exe)
		return
	}
	old, holder := statusPids(t, mp)
	if old == 0 || holder != d.cmd.Process.Pid {
		t.Fatalf("status: server-pid %d holder-pid %d, want a server and the holder %d", old, holder, d.cmd.Process.Pid)
	}
	n, r := handoverScale()
	fleet := startReaderFleet(t, d, n, r)
	p := startProbe(d.Path("proc/meminfo"))
	time.Sleep(300 * time.Millisecond)
	// "Rebuilt": the same code as another file, as a package upgrade
	// leaves it.
	installFile(t, binary, exe)
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	poll(t, 20*time.Second, "the upgrade", func() bool { return strings.Contains(d.logs(), "msg=upgraded") })
	time.Sleep(300 * time.Millisecond)
	longest, reads, probeFailed := p.finish()
	ok, failed, wrong := fleet.finish(t)
	server, holder2 := statusPids(t, mp)
	t.Logf("upgrade: %d containers x %d readers: %d reads ok, %d failed, %d wrong; host probe: %d reads, %d failed, longest %v; server %d -> %d",
		n, r, ok, failed, wrong, reads, probeFailed, longest.Round(time.Microsecond), old, server)
	if failed != 0 || wrong != 0 || probeFailed != 0 {
		t.Errorf("reads failed across the upgrade: containers %d failed %d wrong, host %d failed", failed, wrong, probeFailed)
	}
	if ok == 0 {
		t.Error("the readers read nothing")
	}
	if server == old || server == 0 || holder2 != holder {
		t.Errorf("after the upgrade server-pid %d (was %d), holder-pid %d (was %d): want a new server, the same holder", server, old, holder2, holder)
	}
	if exe2, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", server)); err != nil || exe2 != exe {
		t.Errorf("the new server runs %q (%v), want %s", exe2, err, exe)
	}
	if longest > time.Second {
		t.Errorf("a read took %v across the upgrade, want well under 1 s", longest)
	}
}

// upgradeIsRestart: without FUSE_NOTIFY_RESEND, SIGHUP stops the server and
// starts the new binary, which mounts anew and re-attaches the containers;
// reads in between fail, none hangs.
func upgradeIsRestart(t *testing.T, d *daemon, exe string) {
	old, _ := statusPids(t, d.Mountpoint)
	n, r := handoverScale()
	fleet := startReaderFleet(t, d, n, r)
	p := startProbe(d.Path("proc/meminfo"))
	time.Sleep(300 * time.Millisecond)
	installFile(t, binary, exe)
	hup := time.Now()
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for _, c := range fleet.cs {
		poll(t, 20*time.Second, "every container re-attached", func() bool {
			server, _ := statusPids(t, d.Mountpoint)
			return server != 0 && server != old && c.readsLive()
		})
	}
	back := time.Since(hup)
	longest, reads, probeFailed := p.finish()
	ok, failed, wrong := fleet.finishKernel(t, true)
	t.Logf("upgrade without resend (a restart): %d containers x %d readers: %d reads ok, %d failed, %d wrong; host probe: %d reads, %d failed, longest %v; all re-attached %v after SIGHUP",
		n, r, ok, failed, wrong, reads, probeFailed, longest.Round(time.Microsecond), back.Round(time.Millisecond))
	if wrong != 0 {
		t.Errorf("%d reads saw another container's values", wrong)
	}
	if longest > time.Second+startupSlack() {
		t.Errorf("a read hung %v, want at most 1 s", longest)
	}
}

// SIGHUP with a new binary that cannot start: the running server goes on.
func TestUpgradeBrokenBinaryKeepsServing(t *testing.T) {
	dir := binDir(t)
	exe := copyBinary(t, dir)
	mp := filepath.Join(dir, "mp")
	d := startDaemonExe(t, exe, mp, nil, "--metrics-listen", "", "--seccomp-listener", "")
	// Without resend (an upgrade is a restart there) the holder runs the
	// new binary's --version before it stops the old server.
	resendKernel(t, d)
	old, _ := statusPids(t, mp)
	broken := filepath.Join(dir, "broken")
	if err := os.WriteFile(broken, []byte("#!/bin/sh\necho 'cgprocfs: broken build' >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	installFile(t, broken, exe)
	p := startProbe(d.Path("proc/meminfo"))
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	poll(t, 20*time.Second, "the upgrade to fail", func() bool { return strings.Contains(d.logs(), "upgrade failed") })
	time.Sleep(200 * time.Millisecond)
	longest, reads, failed := p.finish()
	if server, _ := statusPids(t, mp); server != old {
		t.Errorf("server-pid %d after a failed upgrade, want the old %d", server, old)
	}
	if failed != 0 {
		t.Errorf("%d of %d reads failed during the failed upgrade", failed, reads)
	}
	if _, err := os.ReadFile(d.Path("proc/meminfo")); err != nil {
		t.Errorf("reading after the failed upgrade: %v", err)
	}
	if !strings.Contains(d.logs(), "exit status 3") || !strings.Contains(d.logs(), "broken build") {
		t.Errorf("the log does not say why the upgrade failed:\n%s", d.logs())
	}
	t.Logf("failed upgrade: %d reads, 0 failed, longest %v", reads, longest.Round(time.Microsecond))
}

// SIGKILL of the serving process only: the holder starts a next server,
// which adopts the connection; with FUSE_NOTIFY_RESEND no read fails, and
// reads go on within 1 s.
func TestServerKillWithoutFailedReads(t *testing.T) {
	d := startDaemon(t, "--metrics-listen", "", "--seccomp-listener", "")
	if !resendKernel(t, d) {
		t.Skip("this kernel has no FUSE_NOTIFY_RESEND (Linux 6.9+): TestServerKillWithoutResend covers it")
	}
	old, _ := statusPids(t, d.Mountpoint)
	n, r := handoverScale()
	fleet := startReaderFleet(t, d, n, r)
	p := startProbe(d.Path("proc/meminfo"))
	time.Sleep(300 * time.Millisecond)
	killed := time.Now()
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var server int
	poll(t, 10*time.Second, "a new server", func() bool {
		server, _ = statusPids(t, d.Mountpoint)
		return server != 0 && server != old
	})
	// Reads resume: a host read that starts now succeeds.
	if _, err := os.ReadFile(d.Path("proc/meminfo")); err != nil {
		t.Fatalf("reading after the restart: %v", err)
	}
	resumed := time.Since(killed)
	time.Sleep(300 * time.Millisecond)
	longest, reads, probeFailed := p.finish()
	ok, failed, wrong := fleet.finish(t)
	t.Logf("server kill: %d containers x %d readers: %d reads ok, %d failed, %d wrong; host probe: %d reads, %d failed, longest %v; reads resumed %v after the kill; server %d -> %d",
		n, r, ok, failed, wrong, reads, probeFailed, longest.Round(time.Microsecond), resumed.Round(time.Millisecond), old, server)
	if failed != 0 || wrong != 0 || probeFailed != 0 {
		t.Errorf("reads failed across the server's kill: containers %d failed %d wrong, host %d failed", failed, wrong, probeFailed)
	}
	if longest > time.Second {
		t.Errorf("a read waited %v across the kill, want reads back within 1 s", longest)
	}
	if d.cmd.ProcessState != nil {
		t.Error("the holder exited")
	}
}

// On a kernel without FUSE_NOTIFY_RESEND (the v2 VM's 6.1), SIGKILL of the
// server: the holder aborts the connection (what the dead server had read
// would wait for ever), a fresh server mounts and re-attaches the
// containers. Reads in flight fail once; none hangs for more than 1 s; every
// container reads its own values again.
func TestServerKillWithoutResend(t *testing.T) {
	d := startDaemon(t, "--metrics-listen", "", "--seccomp-listener", "")
	if resendKernel(t, d) {
		t.Skip("this kernel resends: TestServerKillWithoutFailedReads covers it")
	}
	old, _ := statusPids(t, d.Mountpoint)
	n, r := handoverScale()
	fleet := startReaderFleet(t, d, n, r)
	p := startProbe(d.Path("proc/meminfo"))
	time.Sleep(300 * time.Millisecond)
	killed := time.Now()
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for _, c := range fleet.cs {
		poll(t, 10*time.Second, "every container re-attached", func() bool {
			server, _ := statusPids(t, d.Mountpoint)
			return server != 0 && server != old && c.readsLive()
		})
	}
	back := time.Since(killed)
	time.Sleep(300 * time.Millisecond)
	longest, reads, probeFailed := p.finish()
	ok, failed, wrong := fleet.finishKernel(t, true)
	t.Logf("server kill without resend: %d containers x %d readers: %d reads ok, %d failed, %d wrong; host probe: %d reads, %d failed, longest %v; all re-attached %v after the kill",
		n, r, ok, failed, wrong, reads, probeFailed, longest.Round(time.Microsecond), back.Round(time.Millisecond))
	if wrong != 0 {
		t.Errorf("%d reads saw another container's values", wrong)
	}
	if longest > time.Second+startupSlack() {
		t.Errorf("a read hung %v, want at most 1 s", longest)
	}
	if !strings.Contains(d.logs(), "aborting the connection") {
		t.Errorf("the holder did not say it aborted the connection:\n%s", d.logs())
	}
}

// Files below a per-caller directory (sys/devices/system/cpu/cpuN) are
// nodes a server makes at lookup; one held open across a server's kill is
// found again by the next server, as its reader sees the directory.
func TestServerKillKeepsPerCallerFilesOpen(t *testing.T) {
	d := startDaemon(t, "--metrics-listen", "", "--seccomp-listener", "")
	if !resendKernel(t, d) {
		t.Skip("this kernel has no FUSE_NOTIFY_RESEND (Linux 6.9+): the connection is aborted, see TestServerKillWithoutResend")
	}
	old, _ := statusPids(t, d.Mountpoint)
	cg := newCgroup(t, "percaller", nil)
	marker := filepath.Join(t.TempDir(), "killed")
	script := `exec 3< /sys/devices/system/cpu/cpu0/topology/core_id
read a <&3
echo "before=$a"
while [ ! -e ` + marker + ` ]; do sleep 0.05; done
exec 4< /sys/devices/system/cpu/online
read b <&4 || echo "reopen failed"
echo "after=$b"
# The open from before the kill, read again from its start.
cat /proc/self/fd/3 >/dev/null && echo "kept=ok" || echo "kept=failed"
echo finished`
	out := &syncWriter{w: &bytes.Buffer{}}
	cmd := d.command(context.Background(), cg, script)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for end := time.Now().Add(20 * time.Second); !strings.Contains(out.String(), "before="); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("no first read from the reader:\n%s", out)
		}
	}
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	poll(t, 10*time.Second, "a new server", func() bool {
		server, _ := statusPids(t, d.Mountpoint)
		return server != 0 && server != old
	})
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	poll(t, 20*time.Second, "the reader to finish", func() bool { return strings.Contains(out.String(), "finished") })
	t.Logf("reader:\n%s", out)
	if !strings.Contains(out.String(), "kept=ok") || strings.Contains(out.String(), "failed") {
		t.Errorf("a per-caller file held open across the server's kill failed:\n%s\n%s", out, d.logs())
	}
}
