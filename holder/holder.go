package holder

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cgprocfs/cgprocfs/fs"
	"github.com/cgprocfs/cgprocfs/seccompagent"
)

// GoneSignal is what a server gets when its holder dies. Not SIGKILL: a
// server killed while one of its own threads waits for an answer from its
// own mount (go-fuse's poll check at mount time, the read that tells it
// serves, a walk of the tree for attach) never finishes dying, since that
// thread waits for a reply that only the dead process could have written,
// and the process's /dev/fuse descriptor, which would end the connection,
// is released only after that thread; the mount then hangs instead of
// answering ENOTCONN (for ever on kernels without a FUSE request timeout).
// The server aborts its connection first, then exits.
const GoneSignal = syscall.SIGUSR2

// The environment through which the holder tells a server what it is.
const (
	// envLink names the server's end of the control socket (fd 3).
	envLink = "CGPROCFS_HOLDER_LINK"
	// envAdopt carries the connection's INIT (fs.EncodeInit); the
	// connection's descriptor is then fd 4.
	envAdopt = "CGPROCFS_ADOPT_INIT"
	// envPredecessor is the pid of a server still serving the connection
	// (an upgrade): side services wait for it to be gone.
	envPredecessor = "CGPROCFS_PREDECESSOR"
	// envKeepsNotify says the holder keeps seccomp listener fds (notify.go).
	// A server run by an older holder (which stays the old binary across
	// an upgrade) must not hand it any: it would hold them unread, and a
	// container's calls would wait on them for ever after the next crash.
	envKeepsNotify = "CGPROCFS_HOLDER_KEEPS_NOTIFY"
)

// Messages from a server to its holder, one per datagram.
const (
	msgMounted = "mounted" // + " " + fs.EncodeInit, with the descriptor
	msgReady   = "ready"
	// msgKeep: + " " + the container, with its seccomp listener fd and
	// slot (see notify.go).
	msgKeep = "keep"
	// msgHeldAsk asks for the kept listener fds, answered with a msgHeld
	// per fd and msgHeldEnd.
	msgHeldAsk = "held?"
	// msgDrop: + " " + a slot's inode: the server stopped answering on
	// that fd for a reason of its own; the holder closes its copies.
	msgDrop = "drop"
	// msgDrained answers msgDrain: the server receives no notification
	// any more and has answered all it received.
	msgDrained = "drained"
)

// Messages from the holder to a server.
const (
	msgHeld    = "held" // + " " + the container, with the fd and its slot
	msgHeldEnd = "held-end"
	msgDrain   = "drain"
)

// DrainTimeout bounds how long an upgrade waits for the old server to
// answer the seccomp notifications it received; what it has not answered
// by then the holder answers with CONTINUE once it is gone.
const DrainTimeout = 5 * time.Second

// ReadyTimeout is how long a new server may take to serve before the holder
// gives up on it (an upgrade keeps the old server; a restart kills it and
// tries again).
const ReadyTimeout = 20 * time.Second

// Config is what the holder runs.
type Config struct {
	// Exe is the binary the servers run, read again at each start.
	Exe string
	// Args are the server's arguments (without argv[0]).
	Args       []string
	Mountpoint string
	Log        *slog.Logger
}

// errStopped: the server stopped by itself (SIGTERM sent to it rather than
// to the holder) and the mount is gone.
var errStopped = errors.New("the server stopped")

// server is one serving child.
type server struct {
	cmd *exec.Cmd
	pid int
	// link is the holder's end of the control socket.
	link   *net.UnixConn
	events chan string
	// heldAsk receives the server's msgHeldAsk.
	heldAsk chan struct{}
	// conn arrives with msgMounted.
	conn   chan *fs.Conn
	exited chan struct{}
	err    error
}

// Run holds the mount until SIGINT or SIGTERM (passed to the server, which
// unmounts) or until the mount goes away. A server that dies is replaced.
func Run(cfg Config) error {
	// Pdeathsig is the thread's, not the process's: the children are
	// started from this locked thread, which lives as long as Run.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	h := &holder{Config: cfg, notify: newNotifyKeep()}
	defer h.notify.closeAll()
	return h.run(sigs)
}

type holder struct {
	Config
	conn   *fs.Conn
	connID string
	// mounted: a server of this holder has mounted once.
	mounted bool
	// notify are the seccomp listener fds the servers answer on.
	notify *notifyKeep
}

// ServerExit is Run's error when the first server exits before it mounts:
// it has logged why; the holder exits with its status.
type ServerExit struct{ Code int }

func (e *ServerExit) Error() string { return fmt.Sprintf("the server exited with status %d", e.Code) }

func (h *holder) run(sigs chan os.Signal) error {
	cur, err := h.start(false, 0)
	if err != nil {
		return err
	}
	failures := 0
	for {
		select {
		case c := <-cur.conn:
			h.conn, h.mounted = c, true
			id, err := fs.ConnectionID(h.Mountpoint)
			if err != nil {
				h.Log.Warn("the holder cannot name the connection; a server crash will end it", "err", err)
			}
			h.connID = id
			h.Log.Info("holding the FUSE connection", "holder-pid", os.Getpid(), "server-pid", cur.cmd.Process.Pid, "connection", id, "resend", fs.CanResend(c.Init))
		case ev := <-cur.events:
			if ev == msgReady {
				failures = 0
			}
		case <-cur.heldAsk:
			h.handHeld(cur)
		case s := <-sigs:
			if s == syscall.SIGHUP {
				cur = h.upgrade(cur)
				continue
			}
			h.Log.Info("stopping the server", "signal", s.String())
			cur.cmd.Process.Signal(syscall.SIGTERM)
			<-cur.exited
			h.closeConn()
			return cur.err
		case <-cur.exited:
			if !h.mounted {
				// The first server could not mount (a bad flag, a
				// live mount there, no cgroups): it said why; the
				// holder ends with its status.
				return &ServerExit{Code: cur.cmd.ProcessState.ExitCode()}
			}
			failures++
			next, err := h.replace(cur, failures)
			if errors.Is(err, errStopped) {
				h.Log.Info("the server stopped and unmounted")
				h.closeConn()
				return nil
			}
			if err != nil {
				h.closeConn()
				return err
			}
			cur = next
		}
	}
}

// replace starts the server that follows cur, which died.
func (h *holder) replace(cur *server, failures int) (*server, error) {
	h.Log.Warn("the server died", "server-pid", cur.cmd.Process.Pid, "err", cur.err)
	h.settleNotify(cur)
	if failures > 5 {
		return nil, fmt.Errorf("the server died %d times in a row without serving; last: %w", failures-1, cur.err)
	}
	if failures > 1 {
		time.Sleep(time.Duration(failures) * 100 * time.Millisecond)
	}
	if h.conn == nil {
		return h.start(false, 0)
	}
	if id, err := fs.ConnectionID(h.Mountpoint); err != nil || id != h.connID || fs.ConnEnded(h.conn.File) {
		// Unmounted, or aborted (by the kernel's request timeout, say):
		// nothing to hand over. A supervisor starts cgprocfs again,
		// which re-attaches the containers.
		if cur.err == nil {
			return nil, errStopped
		}
		return nil, fmt.Errorf("the mount at %s went away", h.Mountpoint)
	}
	if !fs.CanResend(h.conn.Init) {
		// The requests the dead server had read would wait for ever:
		// end the connection, and start afresh; the new server
		// re-attaches the containers (their reads in flight fail once).
		h.Log.Warn("this kernel cannot resend the dead server's requests (FUSE_NOTIFY_RESEND, Linux 6.9+): aborting the connection and mounting anew", "connection", h.connID)
		if err := fs.AbortConnection(h.connID); err != nil {
			h.Log.Error("aborting the connection", "err", err)
		}
		h.closeConn()
		return h.start(false, 0)
	}
	// Back to the queue with them: the next server reads them when it
	// serves. Until then readers wait; none fails.
	if err := fs.Resend(h.conn.File); err != nil {
		h.Log.Error("resending the dead server's requests", "err", err)
	}
	next, err := h.start(true, 0)
	if err != nil {
		return nil, err
	}
	h.Log.Info("a new server adopts the connection", "server-pid", next.cmd.Process.Pid)
	return next, nil
}

// upgrade starts the binary at its path as a server of the connection and,
// once it serves, ends cur; if it does not serve, cur goes on.
func (h *holder) upgrade(cur *server) *server {
	if h.conn == nil {
		h.Log.Warn("SIGHUP before the mount is up: ignored")
		return cur
	}
	if !fs.CanResend(h.conn.Init) {
		// Without resend, what the old server read when it is killed
		// would hang: an upgrade is a restart there.
		h.Log.Warn("this kernel cannot resend requests (Linux 6.9+): the upgrade restarts the server; reads in flight fail once")
		// The old server stops before the new one starts: make sure
		// the new binary runs at all first.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		out, err := exec.CommandContext(ctx, h.Exe, "--version").CombinedOutput()
		cancel()
		if err != nil {
			h.Log.Error("upgrade failed: the new binary does not run; the running server keeps serving", "exe", h.Exe, "err", err, "output", strings.TrimSpace(string(out)))
			return cur
		}
		cur.cmd.Process.Signal(syscall.SIGTERM)
		<-cur.exited
		h.settleNotify(cur)
		h.closeConn()
		next, err := h.start(false, 0)
		if err != nil {
			h.Log.Error("upgrade: starting the new server failed", "err", err)
			return cur
		}
		return next
	}
	start := time.Now()
	next, err := h.start(true, cur.cmd.Process.Pid)
	if err != nil {
		h.Log.Error("upgrade failed: the running server keeps serving", "err", err)
		return cur
	}
	timeout := time.After(ReadyTimeout)
	for ready := false; !ready; {
		select {
		case ev := <-next.events:
			ready = ev == msgReady
		case <-next.exited:
			h.Log.Error("upgrade failed: the new server exited; the running server keeps serving", "exe", h.Exe, "err", next.err)
			return cur
		case <-timeout:
			next.cmd.Process.Kill()
			<-next.exited
			h.Log.Error("upgrade failed: the new server did not serve in time; the running server keeps serving", "exe", h.Exe, "timeout", ReadyTimeout)
			return cur
		}
	}
	// Both serve now. The old one answers the seccomp notifications it
	// received and receives no more; then it is killed, and what it had
	// read of the FUSE connection goes to the new one.
	h.drain(cur)
	cur.cmd.Process.Kill()
	<-cur.exited
	h.settleNotify(cur)
	if err := fs.Resend(h.conn.File); err != nil {
		h.Log.Error("resending the old server's requests", "err", err)
	}
	h.Log.Info("upgraded", "server-pid", next.cmd.Process.Pid, "old-server-pid", cur.cmd.Process.Pid, "took", time.Since(start).Round(time.Millisecond))
	return next
}

// drain asks s to stop receiving seccomp notifications and answer those
// it has, and waits for it (DrainTimeout at most).
func (h *holder) drain(s *server) {
	if _, err := s.link.Write([]byte(msgDrain)); err != nil {
		h.Log.Warn("asking the old server to drain its seccomp notifications", "err", err)
		return
	}
	timeout := time.After(DrainTimeout)
	for {
		select {
		case ev := <-s.events:
			if ev == msgDrained {
				return
			}
		case <-s.exited:
			return
		case <-timeout:
			h.Log.Warn("the old server did not drain its seccomp notifications in time; the holder answers what is left", "timeout", DrainTimeout)
			return
		}
	}
}

// settleNotify answers what the dead server s left of the seccomp
// notifications (see notifyKeep.settle).
func (h *holder) settleNotify(s *server) {
	if n := h.notify.settle(h.Log); n > 0 {
		h.Log.Warn("answered the dead server's seccomp notifications with CONTINUE: these calls got the host's values", "calls", n, "server-pid", s.pid)
	}
}

// handHeld sends s the kept listener fds, which it answers from then on.
func (h *holder) handHeld(s *server) {
	kept := h.notify.handTo(s.pid)
	for _, n := range kept {
		if _, _, err := s.link.WriteMsgUnix([]byte(msgHeld+" "+n.container), syscall.UnixRights(n.notify, n.slot), nil); err != nil {
			h.Log.Error("handing a seccomp listener to the server", "container", n.container, "err", err)
		}
	}
	if _, err := s.link.Write([]byte(msgHeldEnd)); err != nil {
		h.Log.Error("handing the seccomp listeners to the server", "err", err)
		return
	}
	h.Log.Info("handed the kept seccomp listeners to the server", "listeners", len(kept), "server-pid", s.pid)
}

func (h *holder) closeConn() {
	if h.conn != nil {
		h.conn.File.Close()
		h.conn = nil
		h.connID = ""
	}
}

// start starts a server: adopting the held connection, or mounting anew.
// predecessor is a server still serving it.
func (h *holder) start(adopt bool, predecessor int) (*server, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_SEQPACKET|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	ours := os.NewFile(uintptr(fds[0]), "holder")
	theirs := os.NewFile(uintptr(fds[1]), "server")
	defer theirs.Close()
	c, err := net.FileConn(ours)
	ours.Close()
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	link := c.(*net.UnixConn)
	cmd := exec.Command(h.Exe, h.Args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.ExtraFiles = []*os.File{theirs}
	cmd.Env = append(os.Environ(), envLink+"=3", envKeepsNotify+"=1")
	if adopt {
		cmd.ExtraFiles = append(cmd.ExtraFiles, h.conn.File)
		cmd.Env = append(cmd.Env, envAdopt+"="+fs.EncodeInit(h.conn.Init))
	}
	if predecessor != 0 {
		cmd.Env = append(cmd.Env, envPredecessor+"="+strconv.Itoa(predecessor))
	}
	// The server must not outlive the holder: with both gone the
	// connection ends, and the next `cgprocfs mount` re-attaches.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: GoneSignal}
	if err := cmd.Start(); err != nil {
		link.Close()
		return nil, fmt.Errorf("starting the server %s: %w", h.Exe, err)
	}
	s := &server{cmd: cmd, pid: cmd.Process.Pid, link: link, events: make(chan string, 4), heldAsk: make(chan struct{}, 1), conn: make(chan *fs.Conn, 1), exited: make(chan struct{})}
	listened := make(chan struct{})
	go func() { h.listen(link, s); close(listened) }()
	go func() {
		s.err = cmd.Wait()
		// What the server sent before it died is read first (a
		// listener fd it kept, say): its end is closed now, so
		// listen ends at the last message.
		select {
		case <-listened:
		case <-time.After(time.Second):
		}
		link.Close()
		close(s.exited)
	}()
	return s, nil
}

// listen reads the server's messages until it closes the socket.
func (h *holder) listen(link *net.UnixConn, s *server) {
	readMessages(link, func(msg string, oob []byte) {
		switch {
		case strings.HasPrefix(msg, msgKeep+" "):
			fds, err := receiveFds(oob, 2)
			if err != nil {
				h.Log.Error("a seccomp listener from the server could not be received; its container's sysinfo fails with ENOSYS after a server crash", "err", err)
				return
			}
			h.notify.add(s.pid, strings.TrimPrefix(msg, msgKeep+" "), fds[0], fds[1])
		case strings.HasPrefix(msg, msgDrop+" "):
			ino, err := strconv.ParseUint(strings.TrimPrefix(msg, msgDrop+" "), 10, 64)
			if err == nil {
				err = h.notify.drop(ino)
			}
			if err != nil {
				h.Log.Error("dropping a seccomp listener", "err", err)
			}
		case msg == msgHeldAsk:
			select {
			case s.heldAsk <- struct{}{}:
			default:
			}
		case msg == msgDrained:
			s.events <- msg
		case strings.HasPrefix(msg, msgMounted+" "):
			c, err := receiveConn(strings.TrimPrefix(msg, msgMounted+" "), oob)
			if err != nil {
				h.Log.Error("the server's connection could not be received; a server crash will end it", "err", err)
				return
			}
			s.conn <- c
		case msg == msgReady:
			s.events <- msg
		}
	})
}

// readMessages calls handle with each message (one per datagram) read from
// c and the control data that came with it, until c is closed.
func readMessages(c *net.UnixConn, handle func(msg string, oob []byte)) {
	buf := make([]byte, 4096)
	// Room for the two descriptors a message carries at most.
	oob := make([]byte, syscall.CmsgSpace(2*4))
	for {
		n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
		if err != nil || n == 0 {
			return
		}
		handle(string(buf[:n]), oob[:oobn])
	}
}

func receiveConn(init string, oob []byte) (*fs.Conn, error) {
	fds, err := receiveFds(oob, 1)
	if err != nil {
		return nil, err
	}
	in, err := fs.DecodeInit(init)
	if err != nil {
		syscall.Close(fds[0])
		return nil, err
	}
	return &fs.Conn{File: os.NewFile(uintptr(fds[0]), "/dev/fuse"), Init: in}, nil
}

// receiveFds returns the want descriptors a message carried (close on
// exec); with any other number it closes them and fails.
func receiveFds(oob []byte, want int) ([]int, error) {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("no descriptor with the message: %w", err)
	}
	var fds []int
	for i := range msgs {
		got, err := syscall.ParseUnixRights(&msgs[i])
		if err == nil {
			fds = append(fds, got...)
		}
	}
	for _, fd := range fds {
		syscall.CloseOnExec(fd)
	}
	if len(fds) != want {
		for _, fd := range fds {
			syscall.Close(fd)
		}
		return nil, fmt.Errorf("%d descriptors with the message, not %d", len(fds), want)
	}
	return fds, nil
}

// Link is a server's side: how it talks to its holder.
type Link struct {
	conn *net.UnixConn
	// held receives the kept seccomp listeners, once asked for.
	held chan []seccompagent.Held
	mu   sync.Mutex
	// drain is what the holder's msgDrain runs (nil: nothing to drain).
	drain func()
	// Adopt is the connection to serve, when the holder hands one over.
	Adopt *fs.Conn
	// Predecessor is a server still serving the connection (0: none).
	Predecessor int
	// KeepsNotify: the holder keeps seccomp listener fds (Keep, Held).
	KeepsNotify bool
}

// FromEnv returns the link of a server started by a holder, nil for a
// process that was not.
func FromEnv() (*Link, error) {
	if os.Getenv(envLink) != "3" {
		return nil, nil
	}
	init, adopt := os.LookupEnv(envAdopt)
	pred := os.Getenv(envPredecessor)
	keepsNotify := os.Getenv(envKeepsNotify) == "1"
	for _, e := range []string{envLink, envAdopt, envPredecessor, envKeepsNotify} {
		os.Unsetenv(e)
	}
	f := os.NewFile(3, "holder")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("the holder's socket: %w", err)
	}
	l := &Link{conn: c.(*net.UnixConn), held: make(chan []seccompagent.Held, 1), KeepsNotify: keepsNotify}
	go l.read()
	if adopt {
		in, err := fs.DecodeInit(init)
		if err != nil {
			return nil, err
		}
		syscall.CloseOnExec(4)
		l.Adopt = &fs.Conn{File: os.NewFile(4, "/dev/fuse"), Init: in}
	}
	if pred != "" {
		if l.Predecessor, err = strconv.Atoi(pred); err != nil {
			return nil, fmt.Errorf("%s: %w", envPredecessor, err)
		}
	}
	return l, nil
}

// read handles the holder's messages until the socket closes.
func (l *Link) read() {
	var held []seccompagent.Held
	readMessages(l.conn, func(msg string, oob []byte) {
		switch {
		case strings.HasPrefix(msg, msgHeld+" "):
			fds, err := receiveFds(oob, 2)
			if err != nil {
				slog.Error("a seccomp listener from the holder could not be received: its container's notified calls wait until this server ends", "err", err)
				return
			}
			held = append(held, seccompagent.Held{Container: strings.TrimPrefix(msg, msgHeld+" "), Notify: fds[0], Slot: fds[1]})
		case msg == msgHeldEnd:
			select {
			case l.held <- held:
			default:
				// Nobody asked: not ours to watch.
				for _, h := range held {
					syscall.Close(h.Notify)
					syscall.Close(h.Slot)
				}
			}
			held = nil
		case msg == msgDrain:
			go func() {
				l.mu.Lock()
				drain := l.drain
				l.mu.Unlock()
				if drain != nil {
					drain()
				}
				l.conn.Write([]byte(msgDrained))
			}()
		}
	})
}

// Keep gives the holder a copy of a container's seccomp listener fd and
// its slot (seccompagent.Keeper).
func (l *Link) Keep(container string, notify, slot int) error {
	if len(container) > 1024 {
		container = container[:1024]
	}
	if _, _, err := l.conn.WriteMsgUnix([]byte(msgKeep+" "+container), syscall.UnixRights(notify, slot), nil); err != nil {
		return fmt.Errorf("handing a seccomp listener to the holder: %w", err)
	}
	return nil
}

// Drop asks the holder to close its copies of the listener fd kept with
// the slot of inode slotIno (seccompagent.Keeper).
func (l *Link) Drop(slotIno uint64) error {
	if _, err := l.conn.Write([]byte(msgDrop + " " + strconv.FormatUint(slotIno, 10))); err != nil {
		return fmt.Errorf("asking the holder to drop a seccomp listener: %w", err)
	}
	return nil
}

// Held asks the holder for the seccomp listeners it keeps, for this
// server to answer on from now on, and waits for them until ctx ends: the
// holder answers once it has settled what a dead server left, and no
// other server answers on them any more.
func (l *Link) Held(ctx context.Context) ([]seccompagent.Held, error) {
	if _, err := l.conn.Write([]byte(msgHeldAsk)); err != nil {
		return nil, fmt.Errorf("asking the holder for the seccomp listeners: %w", err)
	}
	select {
	case h := <-l.held:
		return h, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for the holder's seccomp listeners: %w", ctx.Err())
	}
}

// OnDrain sets what the holder's drain request (in an upgrade, before this
// server is stopped) runs: the seccomp agent stops receiving and answers
// what it received.
func (l *Link) OnDrain(drain func()) {
	l.mu.Lock()
	l.drain = drain
	l.mu.Unlock()
}

// Mounted gives the holder the new mount's connection.
func (l *Link) Mounted(c *fs.Conn) error {
	_, _, err := l.conn.WriteMsgUnix([]byte(msgMounted+" "+fs.EncodeInit(c.Init)), syscall.UnixRights(int(c.File.Fd())), nil)
	if err != nil {
		return fmt.Errorf("handing the connection to the holder: %w", err)
	}
	return nil
}

// Ready tells the holder that this server serves.
func (l *Link) Ready() error {
	if _, err := l.conn.Write([]byte(msgReady)); err != nil {
		return fmt.Errorf("telling the holder: %w", err)
	}
	return nil
}

// HolderPid is the holder's pid.
func (l *Link) HolderPid() int { return os.Getppid() }

// PredecessorGone is closed once the predecessor has exited (at once when
// there is none): a server that adopts a live connection in an upgrade
// starts what cannot be shared (listening sockets, the NRI plugin) then.
func (l *Link) PredecessorGone(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for l.Predecessor != 0 {
			if err := syscall.Kill(l.Predecessor, 0); errors.Is(err, syscall.ESRCH) {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return done
}
