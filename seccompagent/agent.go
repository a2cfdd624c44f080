package seccompagent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"sync"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Source gives the struct sysinfo a calling thread should get: the
// encoded bytes, or nil (no error) when the kernel's own answer is right
// for it.
type Source interface {
	Sysinfo(pid int) ([]byte, error)
}

// errEmpty is a connection closed without a message: Listen's check for a
// live agent makes one.
var errEmpty = errors.New("closed without sending a state")

// ErrInUse is returned by Listen when a live agent already answers on the
// path.
var ErrInUse = errors.New("another seccomp agent listens there")

const (
	// stateTimeout bounds how long a runtime may take to send its state
	// once connected; runc sends it in one message and closes.
	stateTimeout = 5 * time.Second
	// maxState bounds the state message: a container's state with its
	// annotations is a few KiB.
	maxState = 1 << 20
	// maxFds is how many descriptors one message may carry; runc sends
	// one, the spec allows a list.
	maxFds = 16
)

// Agent receives seccomp listener fds from container runtimes and answers
// the notifications their containers' filters send.
type Agent struct {
	path string
	src  Source
	log  *slog.Logger
	ln   *net.UnixListener
	// ino is the socket file's inode, so that Close removes only the
	// file it made, not one a later agent made at the same path.
	ino uint64

	mu sync.Mutex
	// keeper, when set, holds copies of the listener fds (see Keeper).
	keeper Keeper
	closed bool
	// draining: no notification is received any more (Drain).
	draining bool
	// files are the listener fds being watched, stopped by Drain.
	files map[*os.File]struct{}
	wg    sync.WaitGroup
	// watchers are the goroutines answering notifications.
	watchers sync.WaitGroup
}

// SetKeeper makes k hold a copy of every listener fd the agent receives
// from now on.
func (a *Agent) SetKeeper(k Keeper) {
	a.mu.Lock()
	a.keeper = k
	a.mu.Unlock()
}

func (a *Agent) currentKeeper() Keeper {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.keeper
}

// Resume watches the listener fds a previous agent watched; the fds are
// the agent's from then on (closed on error). Call it before Serve.
func (a *Agent) Resume(held []Held) {
	for _, h := range held {
		f, err := a.adopt(h.Notify)
		if err != nil {
			unix.Close(h.Slot)
			a.log.Warn("seccomp agent: not resuming a container", "id", h.Container, "err", err)
			continue
		}
		sl, err := mapSlot(h.Slot)
		if err != nil {
			unix.Close(h.Slot)
			a.forget(f)
			a.log.Warn("seccomp agent: not resuming a container", "id", h.Container, "err", err)
			continue
		}
		// The holder answered what the slot held before handing it
		// over; RECV wants it zero.
		sl.clear()
		a.startWatch(f, sl, h.Container)
	}
}

// Drain stops receiving notifications, and returns once every one
// received is answered: what follows waits in the kernel for the next
// agent (the keeper holds the fds). The socket still accepts: new
// containers' fds go to the keeper, for the next agent to watch.
func (a *Agent) Drain() {
	a.mu.Lock()
	a.draining = true
	for f := range a.files {
		a.stopWatching(f)
	}
	a.mu.Unlock()
	a.watchers.Wait()
}

// stopWatching ends f's watcher after the answer at hand: a deadline in
// the past ends its wait for the next notification.
func (a *Agent) stopWatching(f *os.File) {
	if err := f.SetReadDeadline(time.Unix(1, 0)); err != nil {
		f.Close()
	}
}

// forget closes a listener fd that is not watched.
func (a *Agent) forget(f *os.File) {
	a.mu.Lock()
	delete(a.files, f)
	a.mu.Unlock()
	f.Close()
}

// startWatch answers f's notifications (receiving them into sl, when not
// nil) in a goroutine, unless the agent drains.
func (a *Agent) startWatch(f *os.File, sl *slot, id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.draining || a.closed {
		delete(a.files, f)
		f.Close()
		if sl != nil {
			sl.close()
		}
		return
	}
	a.watchers.Go(func() { a.watch(f, sl, id) })
}

// Listen makes the socket runtimes connect to (mode 0600, its directory
// made if missing). A stale socket (nobody accepts) is replaced; a live
// one is left alone and ErrInUse returned; any other file is an error.
func Listen(path string, src Source, log *slog.Logger) (*Agent, error) {
	if err := checkKernelSizes(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("seccomp listener %s: %w", path, err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != os.ModeSocket {
			return nil, fmt.Errorf("seccomp listener %s: exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("seccomp listener %s: %w", path, ErrInUse)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("seccomp listener %s: removing the stale socket: %w", path, err)
		}
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("seccomp listener: %w", err)
	}
	// Removed by Close, and only if it is still ours.
	ln.SetUnlinkOnClose(false)
	var st unix.Stat_t
	err = unix.Chmod(path, 0o600)
	if err == nil {
		err = unix.Stat(path, &st)
	}
	if err != nil {
		ln.Close()
		os.Remove(path)
		return nil, fmt.Errorf("seccomp listener %s: %w", path, err)
	}
	return &Agent{path: path, src: src, log: log, ln: ln, ino: st.Ino, files: map[*os.File]struct{}{}}, nil
}

// WithoutSocket is an agent that accepts no runtime, and only answers the
// listener fds Resume gives it: those a holder kept when this server's
// socket could not be made, whose containers would wait otherwise.
func WithoutSocket(src Source, log *slog.Logger) *Agent {
	return &Agent{src: src, log: log, files: map[*os.File]struct{}{}}
}

// Serve accepts runtimes' connections and answers notifications until ctx
// ends; then it closes the socket and, once the notifications received are
// answered, every listener fd (without a Keeper holding copies the
// containers' later notified calls then fail with ENOSYS, see the README),
// and returns once all its goroutines have.
func (a *Agent) Serve(ctx context.Context) {
	stop := context.AfterFunc(ctx, func() { a.Close() })
	defer stop()
	if a.ln == nil {
		<-ctx.Done()
	}
	for a.ln != nil {
		conn, err := a.ln.AcceptUnix()
		if err != nil {
			if !a.isClosed() {
				a.log.Error("seccomp agent: accepting; no new containers will be answered", "err", err)
			}
			break
		}
		a.wg.Go(func() { a.receive(ctx, conn) })
	}
	a.Close()
	a.wg.Wait()
	a.watchers.Wait()
}

// Close stops accepting, removes the socket if it is still the one Listen
// made, and closes every listener fd once the notification it received,
// if any, is answered.
func (a *Agent) Close() {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return
	}
	a.closed = true
	// Each watcher answers what it received, then closes its fd.
	for f := range a.files {
		a.stopWatching(f)
	}
	a.mu.Unlock()
	if a.ln == nil {
		return
	}
	a.ln.Close()
	var st unix.Stat_t
	if unix.Stat(a.path, &st) == nil && st.Ino == a.ino {
		os.Remove(a.path)
	}
}

func (a *Agent) isClosed() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.closed
}

// receive reads one runtime's ContainerProcessState and the listener fd it
// carries, and starts answering that container's notifications.
func (a *Agent) receive(ctx context.Context, conn *net.UnixConn) {
	defer a.survive("reading a runtime's connection")
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()
	state, fd, err := readState(conn)
	if errors.Is(err, errEmpty) {
		a.log.Debug("seccomp agent: a connection sent nothing")
		return
	}
	if err != nil {
		a.log.Warn("seccomp agent: a runtime's connection", "err", err)
		return
	}
	f, err := a.adopt(fd)
	if err != nil {
		a.log.Warn("seccomp agent: not watching a container", "id", state.State.ID, "pid", state.Pid, "err", err)
		return
	}
	var sl *slot
	if keeper := a.currentKeeper(); keeper != nil {
		// Held before the first notification is received, so that
		// none is ever lost with this process.
		if sl, err = newSlot(); err == nil {
			if err = keeper.Keep(state.State.ID, fd, sl.fd); err != nil {
				sl.close()
				sl = nil
			}
		}
		if err != nil {
			a.log.Warn("seccomp agent: the holder does not keep this container's listener; it is answered until this server ends", "id", state.State.ID, "err", err)
		}
	}
	a.log.Debug("seccomp agent: watching a container", "id", state.State.ID, "pid", state.Pid, "kept", sl != nil)
	a.startWatch(f, sl, state.State.ID)
}

// survive logs a panic of the calling goroutine and lets it end. The
// agent runs in the daemon that serves every container's files: a bug in
// it must cost at most the connection or answer at hand, never the daemon.
func (a *Agent) survive(what string) {
	if p := recover(); p != nil {
		a.log.Error("seccomp agent: a bug, recovered", "while", what, "panic", p, "stack", string(debug.Stack()))
	}
}

// readState reads a runtime's message and returns the state and the fd
// named specs.SeccompFdName in its Fds; every other fd received is closed.
// runc sends the JSON state with SCM_RIGHTS in one sendmsg and keeps the
// connection open while it runs, so the message ends where the JSON value
// does, not at EOF; a stream socket may still hand it over in pieces.
func readState(conn *net.UnixConn) (specs.ContainerProcessState, int, error) {
	var state specs.ContainerProcessState
	var fds []int
	closeFds := func(keep int) {
		for _, fd := range fds {
			if fd != keep {
				unix.Close(fd)
			}
		}
	}
	if err := peerIsOwner(conn); err != nil {
		return state, -1, err
	}
	conn.SetDeadline(time.Now().Add(stateTimeout))
	var msg []byte
	buf := make([]byte, 64<<10)
	oob := make([]byte, unix.CmsgSpace(maxFds*4))
	for !json.Valid(msg) {
		n, oobn, flags, _, err := conn.ReadMsgUnix(buf, oob)
		if oobn > 0 {
			got, perr := parseRights(oob[:oobn])
			fds = append(fds, got...)
			if perr != nil {
				closeFds(-1)
				return state, -1, perr
			}
		}
		if flags&unix.MSG_CTRUNC != 0 {
			closeFds(-1)
			return state, -1, fmt.Errorf("more than %d descriptors sent", maxFds)
		}
		if n > 0 {
			msg = append(msg, buf[:n]...)
		}
		if len(msg) > maxState {
			closeFds(-1)
			return state, -1, fmt.Errorf("state longer than %d bytes", maxState)
		}
		eof := errors.Is(err, io.EOF) || (err == nil && n == 0 && oobn == 0)
		if eof && len(msg) == 0 && len(fds) == 0 {
			return state, -1, errEmpty
		}
		if eof {
			closeFds(-1)
			return state, -1, fmt.Errorf("closed after %d bytes of state", len(msg))
		}
		if err != nil {
			closeFds(-1)
			return state, -1, fmt.Errorf("reading the state (%d bytes so far): %w", len(msg), err)
		}
	}
	if err := json.Unmarshal(msg, &state); err != nil {
		closeFds(-1)
		return state, -1, fmt.Errorf("the state is not a ContainerProcessState: %w", err)
	}
	for i, name := range state.Fds {
		if name == specs.SeccompFdName && i < len(fds) {
			fd := fds[i]
			closeFds(fd)
			return state, fd, nil
		}
	}
	closeFds(-1)
	return state, -1, fmt.Errorf("container %s: no %q among %d descriptors named %q", state.State.ID, specs.SeccompFdName, len(fds), state.Fds)
}

// peerIsOwner refuses a peer that is not the agent's own user (root, in
// the daemon): the socket is its owner's only (0600), but reachable for an
// instant before its chmod.
func peerIsOwner(conn *net.UnixConn) error {
	rc, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	var cred *unix.Ucred
	var credErr error
	if err := rc.Control(func(fd uintptr) { cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) }); err != nil {
		return err
	}
	if credErr != nil {
		return fmt.Errorf("SO_PEERCRED: %w", credErr)
	}
	if int(cred.Uid) != os.Geteuid() {
		return fmt.Errorf("peer pid %d is uid %d, not %d", cred.Pid, cred.Uid, os.Geteuid())
	}
	return nil
}

// parseRights returns the descriptors of SCM_RIGHTS messages in oob.
func parseRights(oob []byte) ([]int, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("control message: %w", err)
	}
	var fds []int
	for _, m := range msgs {
		if m.Header.Level != unix.SOL_SOCKET || m.Header.Type != unix.SCM_RIGHTS {
			continue
		}
		got, err := unix.ParseUnixRights(&m)
		if err != nil {
			return fds, fmt.Errorf("SCM_RIGHTS: %w", err)
		}
		fds = append(fds, got...)
	}
	return fds, nil
}

// adopt checks that fd is a seccomp listener and makes it an *os.File on
// Go's poller, so that waiting for notifications holds no thread and Close
// ends the wait; fd is closed on error.
func (a *Agent) adopt(fd int) (*os.File, error) {
	target, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil || target != "anon_inode:seccomp notify" {
		unix.Close(fd)
		return nil, fmt.Errorf("fd %q: %w", target, errNotNotifyFd)
	}
	unix.CloseOnExec(fd)
	// Non-blocking so that os.NewFile puts it on the poller; the RECV
	// ioctl ignores the flag, and is only called once poll says a
	// notification waits.
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("O_NONBLOCK: %w", err)
	}
	f := os.NewFile(uintptr(fd), "seccomp-notify")
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		f.Close()
		return nil, errors.New("the agent is closing")
	}
	a.files[f] = struct{}{}
	return f, nil
}

// watch answers the notifications of one listener fd until the filter has
// no task left (the container ended) or the agent drains or closes. With a
// slot, each notification is received into it and the slot cleared once
// answered.
func (a *Agent) watch(f *os.File, sl *slot, id string) {
	defer a.survive("watching a container")
	// release: this watcher stops for a reason of its own, not a drain,
	// a close or the container's end; a kept fd must then be dropped
	// from the keeper too, or the container's calls would wait for ever.
	release := true
	defer func() {
		a.forget(f)
		if sl == nil {
			return
		}
		if keeper := a.currentKeeper(); release && keeper != nil {
			if err := keeper.Drop(sl.ino); err != nil {
				a.log.Error("seccomp agent: the holder keeps a listener no server answers; its container's notified calls wait until the holder ends", "id", id, "err", err)
			}
		}
		sl.close()
	}()
	rc, err := f.SyscallConn()
	if err != nil {
		a.log.Warn("seccomp agent: listener fd", "id", id, "err", err)
		return
	}
	w := &watcher{a: a, rc: rc, id: id}
	for {
		var n seccompNotif
		into := &n
		if sl != nil {
			into = sl.notif()
		}
		var recvErr error
		hup := false
		err := rc.Read(func(fd uintptr) bool {
			ev, err := pollNow(int(fd))
			switch {
			case err != nil:
				recvErr = err
			case ev&unix.POLLIN != 0:
				if recvErr = recv(fd, into); recvErr == nil {
					n = *into
				}
			case ev&(unix.POLLHUP|unix.POLLERR|unix.POLLNVAL) != 0:
				hup = true
			default:
				return false // wait on the poller
			}
			return true
		})
		switch {
		case err != nil: // draining, or closed
			release = false
			return
		case hup:
			release = false
			a.log.Debug("seccomp agent: the container's filter has no tasks left", "id", id)
			return
		case errors.Is(recvErr, unix.ENOENT):
			// The caller was killed between the poll and the
			// receive: nothing to answer.
			continue
		case recvErr != nil:
			// Nothing else is expected; stop rather than spin. The
			// container's notified calls then fail with ENOSYS.
			a.log.Error("seccomp agent: receiving a notification; no longer answering this container", "id", id, "err", recvErr)
			return
		}
		w.answer(n)
		if sl != nil {
			sl.clear()
		}
	}
}

// pollNow returns the fd's poll events without waiting.
func pollNow(fd int) (int16, error) {
	p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		_, err := unix.Poll(p, 0)
		if err == unix.EINTR {
			continue
		}
		return p[0].Revents, err
	}
}

// errCallerBuffer is a buffer the caller passed that cannot be written.
var errCallerBuffer = errors.New("the caller's buffer cannot be written")

// watcher answers one container's notifications.
type watcher struct {
	a  *Agent
	rc syscall.RawConn
	id string
	// warned is set once a failure was logged at warn level; later ones
	// are logged at debug, so a looping caller cannot flood the log.
	warned bool
}

// answer answers n: sysinfo with the container's struct when it can, every
// other call and every failure with CONTINUE, so that the kernel runs the
// real call and nothing here can break a container.
func (w *watcher) answer(n seccompNotif) {
	resp := w.response(n)
	var sendErr error
	if err := w.rc.Control(func(fd uintptr) { sendErr = send(fd, resp) }); err != nil {
		sendErr = err
	}
	if sendErr != nil && !errors.Is(sendErr, unix.ENOENT) {
		w.a.log.Debug("seccomp agent: answering", "id", w.id, "pid", n.Pid, "err", sendErr)
	}
}

// response is the answer to n; CONTINUE also when finding the answer
// panics (see survive).
func (w *watcher) response(n seccompNotif) (resp seccompNotifResp) {
	resp = continueResp(n.ID)
	defer func() {
		if p := recover(); p != nil {
			resp = continueResp(n.ID)
			w.a.log.Error("seccomp agent: a bug, recovered; the call is left to the kernel", "id", w.id, "pid", n.Pid, "panic", p, "stack", string(debug.Stack()))
		}
	}()
	if arch := nativeArch(); arch != 0 && n.Data.Arch == arch && n.Data.Nr == unix.SYS_SYSINFO {
		ok, err := w.sysinfo(n)
		switch {
		case errors.Is(err, errCallerBuffer):
			// The caller's own mistake (sysinfo(NULL)): the kernel
			// gives it EFAULT, as without the agent.
			w.a.log.Debug("seccomp agent: sysinfo left to the kernel", "id", w.id, "pid", n.Pid, "err", err)
		case err != nil:
			level := slog.LevelDebug
			if !w.warned {
				level, w.warned = slog.LevelWarn, true
			}
			w.a.log.Log(context.Background(), level, "seccomp agent: sysinfo left to the kernel", "id", w.id, "pid", n.Pid, "err", err)
		case ok:
			resp = seccompNotifResp{ID: n.ID} // returns 0
		}
	}
	return resp
}

// sysinfo writes the caller's struct sysinfo into its buffer; false (no
// error) when the caller sees the host and the kernel should answer.
func (w *watcher) sysinfo(n seccompNotif) (bool, error) {
	if n.Pid == 0 {
		return false, errors.New("the caller is outside the agent's pid namespace")
	}
	b, err := w.a.src.Sysinfo(int(n.Pid))
	if err != nil || b == nil {
		return false, err
	}
	// Opened before the id check: the file is bound to the process it was
	// opened on, and the check after it proves that process is still the
	// caller waiting in sysinfo, so a pid reused by then cannot be
	// written to (the order seccomp_unotify(2) gives).
	mem, err := os.OpenFile("/proc/"+strconv.Itoa(int(n.Pid))+"/mem", os.O_WRONLY, 0)
	if err != nil {
		return false, err
	}
	defer mem.Close()
	var validErr error
	if err := w.rc.Control(func(fd uintptr) { validErr = idValid(fd, n.ID) }); err != nil {
		return false, err
	}
	if validErr != nil {
		return false, fmt.Errorf("the caller stopped waiting: %w", validErr)
	}
	// The buffer's address is the file offset; one above 2^63 (not a
	// user address) fails here, and the kernel then reports EFAULT.
	if _, err := mem.WriteAt(b, int64(n.Data.Args[0])); err != nil {
		return false, fmt.Errorf("%w at %#x: %w", errCallerBuffer, n.Data.Args[0], err)
	}
	return true, nil
}
