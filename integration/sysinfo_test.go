package integration

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/cgprocfs/cgprocfs/procfiles"
)

// These tests run real runc containers whose seccomp profile sends
// sysinfo(2) (and getpid, which the agent must leave to the kernel) to the
// daemon's seccomp agent, and look at what busybox free and uptime, and a
// probe calling the system calls itself, print inside.

// probeEnv makes this test binary, started inside a container, run
// sysinfoProbe instead of the tests.
const probeEnv = "CGPROCFS_SYSINFO_PROBE"

// probeResult is what the probe prints: one JSON line.
type probeResult struct {
	Errno   int               // of sysinfo
	Sysinfo procfiles.Sysinfo // memory in bytes, loads in FSHIFT fixed point
	MemUnit uint32
	// Getpid is getpid's result, ProcSelf the pid /proc/self names (no
	// system call the profile routes), GetpidErrno getpid's error.
	Getpid, ProcSelf, GetpidErrno int
	// NullErrno is sysinfo(NULL)'s error: EFAULT, as from the kernel.
	NullErrno int
}

func init() {
	if os.Getenv(probeEnv) == "" {
		return
	}
	if l := os.Getenv(loopEnv); l != "" {
		sysinfoLoop(l)
	}
	var r probeResult
	var buf [procfiles.SysinfoSize]byte
	_, _, errno := unix.Syscall(unix.SYS_SYSINFO, uintptr(unsafe.Pointer(&buf)), 0, 0)
	r.Errno = int(errno)
	r.Sysinfo, r.MemUnit = procfiles.DecodeSysinfo(buf)
	pid, _, errno := unix.Syscall(unix.SYS_GETPID, 0, 0, 0)
	r.Getpid, r.GetpidErrno = int(pid), int(errno)
	self, _ := os.Readlink("/proc/self")
	r.ProcSelf, _ = strconv.Atoi(self)
	_, _, errno = unix.Syscall(unix.SYS_SYSINFO, 0, 0, 0)
	r.NullErrno = int(errno)
	json.NewEncoder(os.Stdout).Encode(r)
	os.Exit(0)
}

// sysinfoDaemon starts the daemon with its seccomp agent on a socket of
// the test's own.
func sysinfoDaemon(t *testing.T) (*daemon, string) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "seccomp.sock")
	d := startDaemon(t, "--seccomp-listener", sock)
	poll(t, 5*time.Second, "the seccomp agent's socket", func() bool { return exists(sock) })
	return d, sock
}

// newSysinfoBundle is newRuncBundle with the probe at /probe and, when
// listener is not empty, a seccomp profile that allows everything but sends
// sysinfo and getpid to the agent at listener.
func newSysinfoBundle(t *testing.T, d *daemon, memLimit int64, listener string, args ...string) runcBundle {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	c := newRuncBundle(t, d, memLimit, args...)
	c.editSpec(t, func(spec *specs.Spec) {
		spec.Mounts = append(spec.Mounts, specs.Mount{Destination: "/probe", Type: "bind", Source: exe, Options: []string{"rbind", "ro"}})
		spec.Process.Env = append(spec.Process.Env, probeEnv+"=1")
		if listener != "" {
			spec.Linux.Seccomp = &specs.LinuxSeccomp{
				DefaultAction: specs.ActAllow,
				ListenerPath:  listener,
				Syscalls:      []specs.LinuxSyscall{{Names: []string{"sysinfo", "getpid"}, Action: specs.ActNotify}},
			}
		}
	})
	return c
}

// run runs the bundle's container to its end and returns its stdout.
func (c runcBundle) run(t *testing.T) string {
	t.Helper()
	cmd := exec.Command(c.runc, "--root", c.state, "run", "--bundle", c.bundle, c.id)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("runc run: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

func parseProbe(t *testing.T, out string) probeResult {
	t.Helper()
	var r probeResult
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &r); err != nil {
		t.Fatalf("probe output %q: %v", out, err)
	}
	return r
}

// busyboxFreeTotal is the total of busybox free's Mem: row, in KiB.
func busyboxFreeTotal(t *testing.T, out string) int64 {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "Mem:" {
			n, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatalf("busybox free: %q: %v", line, err)
			}
			return n
		}
	}
	t.Fatalf("no Mem: row in busybox free's output:\n%s", out)
	return 0
}

// uptimeMinutes reads the "up ..." part of busybox uptime: "up N min",
// "up H:MM", with "D day(s), " before either.
func uptimeMinutes(t *testing.T, out string) int {
	t.Helper()
	m := regexp.MustCompile(`up +(?:(\d+) days?, +)?(?:(\d+):(\d\d)|(\d+) min)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no uptime in %q", out)
	}
	n := func(s string) int { v, _ := strconv.Atoi(s); return v }
	return n(m[1])*24*60 + n(m[2])*60 + n(m[3]) + n(m[4])
}

func hostSysinfo(t *testing.T) unix.Sysinfo_t {
	t.Helper()
	var s unix.Sysinfo_t
	if err := unix.Sysinfo(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSysinfoContainerSeesItsOwn(t *testing.T) {
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		t.Skip("the agent answers sysinfo on amd64 and arm64 only")
	}
	d, sock := sysinfoDaemon(t)
	c := newSysinfoBundle(t, d, 200*mib, sock, "/bin/sh", "-c", "/bin/busybox free; echo @@; /bin/busybox uptime; echo @@; /probe")
	out := c.run(t)
	host := hostSysinfo(t)
	parts := strings.Split(out, "@@\n")
	if len(parts) != 3 {
		t.Fatalf("container output:\n%s", out)
	}
	t.Logf("busybox free in the container:\n%sbusybox uptime in the container:\n%sprobe: %s", parts[0], parts[1], parts[2])
	hostFree, _ := exec.Command("busybox", "free").Output()
	hostUptime, _ := exec.Command("busybox", "uptime").Output()
	t.Logf("on the host:\n%s%s", hostFree, hostUptime)

	if total := busyboxFreeTotal(t, parts[0]); total != 204800 {
		t.Errorf("busybox free total %d KiB in a container limited to 200 MiB, want 204800", total)
	}
	if up := uptimeMinutes(t, parts[1]); up > 1 {
		t.Errorf("busybox uptime says the container is up %d min: %q", up, parts[1])
	}
	if host.Uptime > 300 && uptimeMinutes(t, string(hostUptime)) < 5 {
		t.Errorf("the host's busybox uptime %q should show the host's %d s", hostUptime, host.Uptime)
	}

	r := parseProbe(t, parts[2])
	s := r.Sysinfo
	if r.Errno != 0 || r.MemUnit != 1 || s.TotalRAM != 200*mib || s.FreeRAM == 0 || s.FreeRAM > s.TotalRAM {
		t.Errorf("sysinfo in the container: errno %d, mem_unit %d, totalram %d, freeram %d; want 0, 1, %d and 0 < freeram <= totalram",
			r.Errno, r.MemUnit, s.TotalRAM, s.FreeRAM, 200*mib)
	}
	if s.Uptime < 1 || s.Uptime > 30 || (host.Uptime > 60 && s.Uptime >= host.Uptime) {
		t.Errorf("sysinfo uptime %d s, want the container's (1 to 30 s; the host's is %d s)", s.Uptime, host.Uptime)
	}
	// sh and the probe (a few Go threads): far fewer than the host's.
	if s.Procs < 2 || s.Procs > 64 || s.Procs >= uint64(host.Procs) {
		t.Errorf("sysinfo procs %d, want the container's threads (2 to 64; the host has %d)", s.Procs, host.Procs)
	}
	// At most a sample of a few runnable threads.
	if s.Loads[0] >= 4<<11 {
		t.Errorf("sysinfo loads %v, want the container's (below 4.0)", s.Loads)
	}
	// getpid went to the agent too, which left it to the kernel.
	if r.GetpidErrno != 0 || r.Getpid != r.ProcSelf {
		t.Errorf("getpid in the container: %d (errno %d), /proc/self is %d", r.Getpid, r.GetpidErrno, r.ProcSelf)
	}
	if r.NullErrno != int(unix.EFAULT) {
		t.Errorf("sysinfo(NULL) in the container: errno %d, want EFAULT", r.NullErrno)
	}
}

// A container without the profile runs as ever and sees the host's
// sysinfo, with the agent running.
func TestSysinfoWithoutProfile(t *testing.T) {
	d, _ := sysinfoDaemon(t)
	c := newSysinfoBundle(t, d, 200*mib, "", "/bin/sh", "-c", "/bin/busybox free; echo @@; /probe")
	out := c.run(t)
	host := hostSysinfo(t)
	parts := strings.Split(out, "@@\n")
	if len(parts) != 2 {
		t.Fatalf("container output:\n%s", out)
	}
	hostKiB := int64(host.Totalram * uint64(host.Unit) / 1024)
	if total := busyboxFreeTotal(t, parts[0]); total != hostKiB {
		t.Errorf("busybox free total %d KiB without the profile, want the host's %d", total, hostKiB)
	}
	r := parseProbe(t, parts[1])
	if r.Errno != 0 || r.Sysinfo.TotalRAM != host.Totalram*uint64(host.Unit) || r.Getpid != r.ProcSelf {
		t.Errorf("probe without the profile: %+v", r)
	}
}

// runc connects to the listener while it creates the container, and a
// failed connection fails the start: with no agent on listenerPath the
// container never runs.
func TestSysinfoNoListenerFailsTheStart(t *testing.T) {
	needRoot(t)
	sock := filepath.Join(t.TempDir(), "nobody-listens.sock")
	c := newSysinfoBundle(t, nil, 200*mib, sock, "/bin/sh", "-c", "echo ran")
	cmd := exec.Command(c.runc, "--root", c.state, "run", "--bundle", c.bundle, c.id)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	t.Logf("runc run without a listener: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	if err == nil || strings.Contains(stdout.String(), "ran") {
		t.Fatalf("the container ran with no agent on its listenerPath")
	}
	if !strings.Contains(stderr.String(), "seccomp agent") {
		t.Errorf("runc's error does not name the seccomp agent: %s", stderr.String())
	}
	// Nothing is left running: runc has no such container, or a stopped
	// one.
	st, err := exec.Command(c.runc, "--root", c.state, "state", c.id).CombinedOutput()
	if err == nil && !strings.Contains(string(st), `"stopped"`) {
		t.Errorf("runc state after the failed start:\n%s", st)
	}
}

// liveContainer is a runc container that runs the probe (or busybox free)
// each time it reads a line.
type liveContainer struct {
	stdin io.WriteCloser
	lines chan string
	done  chan error
}

func startLiveContainer(t *testing.T, c runcBundle) *liveContainer {
	t.Helper()
	cmd := exec.Command(c.runc, "--root", c.state, "run", "--bundle", c.bundle, c.id)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncWriter
	stderr.w = &bytes.Buffer{}
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lc := &liveContainer{stdin: stdin, lines: make(chan string, 64), done: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lc.lines <- sc.Text()
		}
		close(lc.lines)
	}()
	go func() { lc.done <- cmd.Wait() }()
	t.Cleanup(func() {
		stdin.Close()
		select {
		case <-lc.done:
		case <-time.After(10 * time.Second):
			exec.Command(c.runc, "--root", c.state, "kill", c.id, "KILL").Run()
			<-lc.done
		}
		if t.Failed() {
			t.Logf("runc stderr: %s", stderr.String())
		}
	})
	return lc
}

// ask sends cmd and returns what it printed (to the line "@@" the loop
// prints after it, on a line of its own even when cmd's last line is cut).
func (lc *liveContainer) ask(t *testing.T, cmd string) string {
	t.Helper()
	if _, err := fmt.Fprintln(lc.stdin, cmd); err != nil {
		t.Fatalf("writing to the container: %v", err)
	}
	var out []string
	timeout := time.After(15 * time.Second)
	for {
		select {
		case l, ok := <-lc.lines:
			if !ok {
				t.Fatalf("the container ended; it printed %q", out)
			}
			if l == "@@" {
				return strings.TrimSpace(strings.Join(out, "\n"))
			}
			out = append(out, l)
		case <-timeout:
			t.Fatalf("no answer to %q within 15 s; got %q", cmd, out)
		}
	}
}

// When the daemon stops, the listener fd dies with it and the kernel fails
// the container's notified calls with ENOSYS, sysinfo and getpid alike,
// for the rest of the container's life: a new daemon cannot get the fd
// back. New containers get the new daemon's answers.
func TestSysinfoAfterTheDaemonStops(t *testing.T) {
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		t.Skip("the agent answers sysinfo on amd64 and arm64 only")
	}
	d, sock := sysinfoDaemon(t)
	c := newSysinfoBundle(t, d, 200*mib, sock, "/bin/sh", "-c", `while read cmd; do $cmd; echo; echo @@; done`)
	lc := startLiveContainer(t, c)
	if r := parseProbe(t, lc.ask(t, "/probe")); r.Errno != 0 || r.Sysinfo.TotalRAM != 200*mib {
		t.Fatalf("with the daemon up: %+v", r)
	}

	d.stop(t)
	if exists(sock) {
		t.Errorf("the stopped daemon left its socket %s", sock)
	}
	r := parseProbe(t, lc.ask(t, "/probe"))
	if r.Errno != int(unix.ENOSYS) || r.GetpidErrno != int(unix.ENOSYS) {
		t.Errorf("with the daemon stopped: sysinfo errno %d, getpid errno %d; want ENOSYS (%d) for both", r.Errno, r.GetpidErrno, unix.ENOSYS)
	}
	t.Logf("busybox free with the daemon stopped (its /proc/meminfo bind is dead too):\n%s", lc.ask(t, "/bin/busybox free"))

	// Restarted at the same mount point, the daemon mends the container's
	// binds, but not its seccomp listener.
	d2 := startDaemonAt(t, d.Mountpoint, "--seccomp-listener", sock)
	poll(t, 5*time.Second, "the new agent's socket", func() bool { return exists(sock) })
	if r := parseProbe(t, lc.ask(t, "/probe")); r.Errno != int(unix.ENOSYS) {
		t.Errorf("a running container after a daemon restart: sysinfo errno %d, want ENOSYS (the listener is gone for good)", r.Errno)
	}
	t.Logf("busybox free after the restart (binds mended, sysinfo ENOSYS):\n%s", lc.ask(t, "/bin/busybox free"))
	t.Logf("busybox uptime after the restart:\n%s", lc.ask(t, "/bin/busybox uptime"))

	// A container started now is answered by the new daemon.
	out := newSysinfoBundle(t, d2, 100*mib, sock, "/probe").run(t)
	if r := parseProbe(t, out); r.Errno != 0 || r.Sysinfo.TotalRAM != 100*mib {
		t.Errorf("a new container with the restarted daemon: %+v", r)
	}
}
