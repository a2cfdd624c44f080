package seccompagent

import (
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cgprocfs/cgprocfs/procfiles"
)

// fakeKeeper keeps copies of the fds as the holder does.
type fakeKeeper struct {
	mu   sync.Mutex
	held []Held
}

func (k *fakeKeeper) Keep(container string, notify, slot int) error {
	n, err := unix.FcntlInt(uintptr(notify), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return err
	}
	s, err := unix.FcntlInt(uintptr(slot), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		unix.Close(n)
		return err
	}
	k.mu.Lock()
	k.held = append(k.held, Held{Container: container, Notify: n, Slot: s})
	k.mu.Unlock()
	return nil
}

func (k *fakeKeeper) Drop(uint64) error { return nil }

func (k *fakeKeeper) take() []Held {
	k.mu.Lock()
	defer k.mu.Unlock()
	h := k.held
	k.held = nil
	return h
}

// A notification received into a slot and never answered (its agent was
// killed) is answered with CONTINUE by AnswerLeft: the call runs as the
// kernel's, and the caller does not wait for ever.
func TestAnswerLeftContinuesWhatADeadAgentReceived(t *testing.T) {
	if err := checkKernelSizes(); err != nil {
		t.Skip(err)
	}
	th, fd := newFilteredThread(t, unix.SYS_SYSINFO)
	defer unix.Close(fd)
	sl, err := newSlot()
	if err != nil {
		t.Fatal(err)
	}
	defer sl.close()
	if ok, err := AnswerLeft(fd, sl.fd); ok || err != nil {
		t.Fatalf("AnswerLeft on an empty slot: %v, %v", ok, err)
	}

	errno := make(chan unix.Errno, 1)
	var buf [procfiles.SysinfoSize]byte
	th.fns <- func() { errno <- rawSysinfo(&buf) }
	// The dead agent's part: receive into the slot, never answer.
	waitReadable(t, fd, 5*time.Second)
	if err := recv(uintptr(fd), sl.notif()); err != nil {
		t.Fatal(err)
	}
	if sl.id() == 0 {
		t.Fatal("RECV left no id in the slot")
	}
	select {
	case <-errno:
		t.Fatal("the call returned unanswered")
	case <-time.After(50 * time.Millisecond):
	}
	if ok, err := AnswerLeft(fd, sl.fd); !ok || err != nil {
		t.Fatalf("AnswerLeft: %v, %v; want it answered", ok, err)
	}
	select {
	case e := <-errno:
		if e != 0 {
			t.Fatalf("the continued sysinfo failed: %v", e)
		}
		if got, _ := procfiles.DecodeSysinfo(buf); got.TotalRAM == 0 {
			t.Fatal("the continued sysinfo gave no totalram")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the call still waits after AnswerLeft")
	}
	if ok, err := AnswerLeft(fd, sl.fd); ok || err != nil {
		t.Fatalf("AnswerLeft again: %v, %v; want nothing to answer", ok, err)
	}
}

// An agent with a keeper receives into slots the keeper holds; once
// drained it receives nothing more, and a calling thread waits until the
// next agent, resuming the kept fds, answers it.
func TestDrainedAgentsListenersResumeInTheNext(t *testing.T) {
	want := procfiles.Sysinfo{Uptime: 9, TotalRAM: 300 << 20, Procs: 2}
	enc := procfiles.EncodeSysinfo(want, 4096)
	src := &fakeSource{b: enc[:]}
	keeper := &fakeKeeper{}
	a := startAgent(t, src)
	a.SetKeeper(keeper)
	th, fd := newFilteredThread(t, unix.SYS_SYSINFO)
	handOver(t, a, fd)

	var buf [procfiles.SysinfoSize]byte
	var errno unix.Errno
	th.do(t, func() { errno = rawSysinfo(&buf) })
	if got, _ := procfiles.DecodeSysinfo(buf); errno != 0 || got != want {
		t.Fatalf("sysinfo through the first agent: %+v, %v", got, errno)
	}
	held := keeper.take()
	if len(held) != 1 || held[0].Container != "test" {
		t.Fatalf("the keeper holds %+v, want the container's fd", held)
	}

	a.Drain()
	done := make(chan unix.Errno, 1)
	buf = [procfiles.SysinfoSize]byte{}
	th.fns <- func() { done <- rawSysinfo(&buf) }
	select {
	case e := <-done:
		t.Fatalf("a drained agent answered (errno %v)", e)
	case <-time.After(200 * time.Millisecond):
	}
	for _, h := range held {
		if ok, err := AnswerLeft(h.Notify, h.Slot); ok || err != nil {
			t.Fatalf("the drained agent left a notification received: %v, %v", ok, err)
		}
	}

	want2 := procfiles.Sysinfo{Uptime: 11, TotalRAM: 400 << 20, Procs: 3}
	enc2 := procfiles.EncodeSysinfo(want2, 4096)
	b := startAgent(t, &fakeSource{b: enc2[:]})
	b.Resume(held)
	select {
	case e := <-done:
		if got, _ := procfiles.DecodeSysinfo(buf); e != 0 || got != want2 {
			t.Fatalf("sysinfo through the next agent: %+v, %v; want %+v", got, e, want2)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the next agent did not answer the waiting call")
	}
}

// waitReadable waits until fd polls readable (a notification is there),
// failing the test after timeout.
func waitReadable(t *testing.T, fd int, timeout time.Duration) {
	t.Helper()
	p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			t.Fatalf("no notification on fd %d within %v", fd, timeout)
		}
		n, err := unix.Poll(p, int(left.Milliseconds())+1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 && p[0].Revents&unix.POLLIN != 0 {
			return
		}
		if n > 0 {
			t.Fatalf("fd %d polled %#x, not readable", fd, p[0].Revents)
		}
	}
}
