package seccompagent

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/cgprocfs/cgprocfs/procfiles"
)

// These tests run the agent on real seccomp listeners: a filter installed
// on one locked thread of the test process sends that thread's sysinfo and
// getpid to a listener, which is handed to the agent over its socket as
// runc hands it. No root needed (a thread may filter itself after
// PR_SET_NO_NEW_PRIVS), only a kernel with seccomp user notification.

// fakeSource answers every pid with one struct, or an error, and records
// who asked.
type fakeSource struct {
	mu   sync.Mutex
	b    []byte
	err  error
	pids []int
}

func (s *fakeSource) Sysinfo(pid int) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pids = append(s.pids, pid)
	return s.b, s.err
}

func (s *fakeSource) set(b []byte, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b, s.err = b, err
}

func (s *fakeSource) asked() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.pids...)
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// startAgent runs an agent on a socket in a temporary directory until the
// test ends.
func startAgent(t *testing.T, src Source) *Agent {
	t.Helper()
	if err := checkKernelSizes(); err != nil {
		t.Skip(err)
	}
	a, err := Listen(filepath.Join(t.TempDir(), "seccomp.sock"), src, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Serve(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return 5 s after its context ended")
		}
	})
	return a
}

// filteredThread is a locked OS thread whose seccomp filter sends the
// system calls it was made with to a listener; calls run on it with do.
type filteredThread struct {
	tid  int
	fns  chan func()
	done chan struct{}
}

// newFilteredThread starts the thread and returns it with its listener
// The main goroutine keeps the main thread: a filtered thread's goroutine
// ends locked to its thread so that the thread exits and the filter loses
// its last task, but the Go runtime never ends the main thread, it wedges
// it, and the filter would then never see its tasks gone.
func init() { runtime.LockOSThread() }

// fd. The thread ends (and the filter with it) when the test does.
func newFilteredThread(t *testing.T, nrs ...uint32) (*filteredThread, int) {
	t.Helper()
	th := &filteredThread{fns: make(chan func()), done: make(chan struct{})}
	type result struct {
		tid, fd int
		err     error
	}
	res := make(chan result, 1)
	go func() {
		defer close(th.done)
		// Never unlocked: the thread exits with the goroutine, so its
		// filter never runs Go code elsewhere.
		runtime.LockOSThread()
		fd, err := installFilter(nrs)
		res <- result{unix.Gettid(), fd, err}
		if err != nil {
			return
		}
		for fn := range th.fns {
			fn()
		}
	}()
	r := <-res
	if r.err != nil {
		t.Skipf("installing a seccomp filter with a listener: %v", r.err)
	}
	th.tid = r.tid
	t.Cleanup(func() { close(th.fns); <-th.done })
	return th, r.fd
}

// do runs fn on the thread, failing the test after 10 s.
func (th *filteredThread) do(t *testing.T, fn func()) {
	t.Helper()
	finished := make(chan struct{})
	th.fns <- func() { fn(); close(finished) }
	select {
	case <-finished:
	case <-time.After(10 * time.Second):
		t.Fatal("a filtered call got no answer within 10 s")
	}
}

// installFilter filters the calling thread: the native ABI's calls nrs go
// to a new listener, whose fd it returns; everything else is allowed.
func installFilter(nrs []uint32) (int, error) {
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return -1, err
	}
	n := uint8(len(nrs))
	prog := []unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 4}, // arch
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: nativeArch(), Jf: 1 + n},
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 0}, // nr
	}
	for i, nr := range nrs {
		prog = append(prog, unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: nr, Jt: n - uint8(i)})
	}
	prog = append(prog,
		unix.SockFilter{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW},
		unix.SockFilter{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_USER_NOTIF})
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	fd, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_NEW_LISTENER, uintptr(unsafe.Pointer(&fprog)))
	if errno != 0 {
		return -1, errno
	}
	return int(fd), nil
}

// handOver sends the listener to the agent as runc does (one message: the
// JSON state with the fd as SCM_RIGHTS; the connection stays open, as runc
// keeps it until it exits) and closes the test's copy of the fd.
func handOver(t *testing.T, a *Agent, fd int) {
	t.Helper()
	defer unix.Close(fd)
	state := specs.ContainerProcessState{
		Version: specs.Version, Fds: []string{specs.SeccompFdName}, Pid: os.Getpid(),
		State: specs.State{Version: specs.Version, ID: "test", Status: specs.StateCreating, Pid: os.Getpid()},
	}
	msg, err := json.Marshal(state)
	if err != nil {
		t.Fatal(err)
	}
	c := sendRaw(t, a, msg, unix.UnixRights(fd))
	t.Cleanup(func() { c.Close() })
}

// sendRaw sends one message on a new connection to the agent.
func sendRaw(t *testing.T, a *Agent, msg, oob []byte) *net.UnixConn {
	t.Helper()
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: a.path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.WriteMsgUnix(msg, oob, nil); err != nil {
		c.Close()
		t.Fatal(err)
	}
	return c
}

// rawSysinfo calls sysinfo(2) into a buffer.
func rawSysinfo(buf *[procfiles.SysinfoSize]byte) unix.Errno {
	_, _, errno := unix.Syscall(unix.SYS_SYSINFO, uintptr(unsafe.Pointer(buf)), 0, 0)
	return errno
}

func TestAgentAnswersSysinfoAndContinuesTheRest(t *testing.T) {
	want := procfiles.Sysinfo{Uptime: 7, Loads: procfiles.LoadAverages{2048, 1024, 0}, TotalRAM: 200 << 20, FreeRAM: 100 << 20, Procs: 3}
	enc := procfiles.EncodeSysinfo(want, 4096)
	src := &fakeSource{b: enc[:]}
	a := startAgent(t, src)
	th, fd := newFilteredThread(t, unix.SYS_SYSINFO, unix.SYS_GETPID)
	handOver(t, a, fd)

	var buf [procfiles.SysinfoSize]byte
	var errno unix.Errno
	th.do(t, func() { errno = rawSysinfo(&buf) })
	if errno != 0 {
		t.Fatalf("sysinfo: %v", errno)
	}
	if got, unit := procfiles.DecodeSysinfo(buf); got != want || unit != 1 {
		t.Fatalf("sysinfo gave %+v unit %d, want the source's %+v", got, unit, want)
	}
	if pids := src.asked(); len(pids) != 1 || pids[0] != th.tid {
		t.Fatalf("the source was asked for %v, want the calling thread %d", pids, th.tid)
	}

	// getpid reaches the agent too and runs as the kernel's.
	var pid uintptr
	th.do(t, func() { pid, _, errno = unix.Syscall(unix.SYS_GETPID, 0, 0, 0) })
	if errno != 0 || int(pid) != os.Getpid() {
		t.Fatalf("getpid through the agent = %d, %v; want %d", pid, errno, os.Getpid())
	}
	if n := len(src.asked()); n != 1 {
		t.Fatalf("getpid asked the source (%d asks)", n)
	}
}

// Whatever the source says that is not a struct, and a buffer the agent
// cannot write, leave the call to the kernel.
func TestAgentLeavesFailuresToTheKernel(t *testing.T) {
	src := &fakeSource{}
	a := startAgent(t, src)
	th, fd := newFilteredThread(t, unix.SYS_SYSINFO)
	handOver(t, a, fd)
	var host unix.Sysinfo_t
	if err := unix.Sysinfo(&host); err != nil {
		t.Fatal(err)
	}
	enc := procfiles.EncodeSysinfo(procfiles.Sysinfo{TotalRAM: 1 << 20}, 4096)
	for _, c := range []struct {
		name string
		b    []byte
		err  error
	}{
		{"host caller", nil, nil},
		{"source error", enc[:], errors.New("caller gone")},
	} {
		src.set(c.b, c.err)
		var buf [procfiles.SysinfoSize]byte
		var errno unix.Errno
		th.do(t, func() { errno = rawSysinfo(&buf) })
		got, unit := procfiles.DecodeSysinfo(buf)
		if errno != 0 || got.TotalRAM != host.Totalram*uint64(host.Unit) || unit != host.Unit {
			t.Errorf("%s: sysinfo %v, totalram %d unit %d; want the kernel's %d unit %d", c.name, errno, got.TotalRAM, unit, host.Totalram, host.Unit)
		}
	}

	// An address the agent cannot write: the kernel's EFAULT.
	src.set(enc[:], nil)
	for _, addr := range []uintptr{0, 1 << 63} {
		var errno unix.Errno
		th.do(t, func() { _, _, errno = unix.Syscall(unix.SYS_SYSINFO, addr, 0, 0) })
		if errno != unix.EFAULT {
			t.Errorf("sysinfo(%#x) = %v, want EFAULT", addr, errno)
		}
	}
}

// With the agent gone the kernel fails notified calls with ENOSYS: what a
// container sees after the daemon stops (see the README).
func TestClosedAgentLeavesENOSYS(t *testing.T) {
	a := startAgent(t, &fakeSource{})
	th, fd := newFilteredThread(t, unix.SYS_SYSINFO)
	handOver(t, a, fd)
	var buf [procfiles.SysinfoSize]byte
	var errno unix.Errno
	th.do(t, func() { errno = rawSysinfo(&buf) })
	if errno != 0 {
		t.Fatalf("sysinfo with the agent up: %v", errno)
	}
	a.Close()
	th.do(t, func() { errno = rawSysinfo(&buf) })
	if errno != unix.ENOSYS {
		t.Fatalf("sysinfo after the agent closed: %v, want ENOSYS", errno)
	}
}

// A filter whose tasks are gone hangs up its listener: the agent stops
// watching it and closes the fd.
func TestAgentDropsEndedContainers(t *testing.T) {
	a := startAgent(t, &fakeSource{})
	th, fd := newFilteredThread(t, unix.SYS_SYSINFO)
	handOver(t, a, fd)
	watched := func() int { a.mu.Lock(); defer a.mu.Unlock(); return len(a.files) }
	waitFor(t, "the agent to watch the listener", func() bool { return watched() == 1 })
	close(th.fns)
	<-th.done
	th.fns = make(chan func()) // for the cleanup's close
	waitFor(t, "the agent to drop the ended filter", func() bool { return watched() == 0 })
}

// Messages that are not a runtime's state are refused and their
// descriptors closed; the agent goes on.
func TestAgentRefusesBadStates(t *testing.T) {
	a := startAgent(t, &fakeSource{})
	fdsBefore := openFds(t)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	pipeFd := int(pr.Fd())
	good, _ := json.Marshal(specs.ContainerProcessState{Fds: []string{specs.SeccompFdName}})
	other, _ := json.Marshal(specs.ContainerProcessState{Fds: []string{"somethingElse"}})
	for _, m := range []struct {
		name string
		msg  []byte
		fds  []int
	}{
		{"garbage", []byte("not json"), []int{pipeFd}},
		{"no seccompFd", other, []int{pipeFd}},
		{"a pipe for a listener", good, []int{pipeFd}},
		{"no descriptor", good, nil},
		{"nothing", nil, nil},
	} {
		var oob []byte
		if m.fds != nil {
			oob = unix.UnixRights(m.fds...)
		}
		if m.msg == nil {
			c, err := net.Dial("unix", a.path)
			if err != nil {
				t.Fatal(err)
			}
			c.Close()
			continue
		}
		sendRaw(t, a, m.msg, oob).Close()
	}
	// The agent closes what it received: the daemon's fd count is back
	// (the test's own pipe stays open).
	waitFor(t, "the received descriptors to be closed", func() bool { return openFds(t) == fdsBefore+2 })
	// And still works.
	th, fd := newFilteredThread(t, unix.SYS_SYSINFO)
	handOver(t, a, fd)
	var buf [procfiles.SysinfoSize]byte
	var errno unix.Errno
	th.do(t, func() { errno = rawSysinfo(&buf) })
	if errno != 0 {
		t.Fatalf("sysinfo after bad states: %v", errno)
	}
}

func openFds(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A stale socket is replaced, a live agent's is not, another file is left
// alone; Close removes only the socket it made.
func TestListenSocketFile(t *testing.T) {
	if err := checkKernelSizes(); err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "s.sock")
	log := testLogger(t)

	// Stale: a socket file nobody accepts on.
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	a, err := Listen(path, &fakeSource{}, log)
	if err != nil {
		t.Fatalf("over a stale socket: %v", err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket %v mode %v, want 0600", err, fi.Mode())
	}

	// Live: refused, and the live agent keeps its socket.
	if _, err := Listen(path, &fakeSource{}, log); !errors.Is(err, ErrInUse) {
		t.Fatalf("over a live agent: %v, want ErrInUse", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the live agent's socket is gone: %v", err)
	}

	// Replaced by someone else meanwhile: Close leaves the new file.
	os.Remove(path)
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	a.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("Close removed a file it did not make: %v", err)
	}
	if _, err := Listen(path, &fakeSource{}, log); err == nil {
		t.Fatal("Listen over a regular file succeeded")
	}

	// Its own: removed.
	os.Remove(path)
	a, err = Listen(path, &fakeSource{}, log)
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Close left its socket: %v", err)
	}
}

var _ io.Writer = testWriter{}

// A state that arrives in pieces, the fd with the first, on a connection
// left open, is read to its end.
func TestAgentReadsAStateInPieces(t *testing.T) {
	a := startAgent(t, &fakeSource{})
	th, fd := newFilteredThread(t, unix.SYS_SYSINFO)
	msg, _ := json.Marshal(specs.ContainerProcessState{Fds: []string{specs.SeccompFdName}, State: specs.State{ID: "pieces"}})
	c := sendRaw(t, a, msg[:10], unix.UnixRights(fd))
	defer c.Close()
	unix.Close(fd)
	if _, err := c.Write(msg[10:]); err != nil {
		t.Fatal(err)
	}
	var buf [procfiles.SysinfoSize]byte
	var errno unix.Errno
	th.do(t, func() { errno = rawSysinfo(&buf) })
	if errno != 0 {
		t.Fatalf("sysinfo: %v", errno)
	}
}
