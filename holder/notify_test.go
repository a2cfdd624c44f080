package holder

import (
	"context"
	"log/slog"

	"syscall"
	"testing"
	"time"

	"github.com/cgprocfs/cgprocfs/seccompagent"
)

// fakeFds is a pair of pipe fds standing for a listener fd and its slot.
func fakeFds(t *testing.T) (int, int) {
	t.Helper()
	var p [2]int
	if err := syscall.Pipe2(p[:], syscall.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	return p[0], p[1]
}

func isOpen(fd int) bool {
	var st syscall.Stat_t
	return syscall.Fstat(fd, &st) == nil
}

func sameFile(t *testing.T, a, b int) bool {
	t.Helper()
	var sa, sb syscall.Stat_t
	if err := syscall.Fstat(a, &sa); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Fstat(b, &sb); err != nil {
		t.Fatal(err)
	}
	return sa.Ino == sb.Ino && sa.Dev == sb.Dev
}

// The keep drops the fds of ended containers, answers what a dead server
// left on the live ones, hands a server only the fds it does not watch
// already, and closes everything at the end.
func TestNotifyKeepBookkeeping(t *testing.T) {
	ended := map[int]bool{}
	left := map[int]bool{}
	k := &notifyKeep{
		gone:       func(fd int) bool { return ended[fd] },
		answerLeft: func(fd, _ int) (bool, error) { ok := left[fd]; delete(left, fd); return ok, nil },
	}
	a1, a2 := fakeFds(t)
	b1, b2 := fakeFds(t)
	c1, c2 := fakeFds(t)
	k.add(100, "a", a1, a2)
	k.add(100, "b", b1, b2)
	k.add(200, "c", c1, c2)

	// a's container ended: dropped and closed with the next call.
	ended[a1] = true
	left[b1], left[c1] = true, true
	if n := k.settle(slog.New(slog.DiscardHandler)); n != 2 {
		t.Fatalf("settle answered %d, want 2", n)
	}
	if isOpen(a1) || isOpen(a2) {
		t.Fatal("an ended container's fds are still open")
	}
	if n := k.settle(slog.New(slog.DiscardHandler)); n != 0 {
		t.Fatalf("a second settle answered %d, want 0", n)
	}

	// Server 200 kept c itself: it gets b only; a next server both.
	got := k.handTo(200)
	if len(got) != 1 || got[0].container != "b" {
		t.Fatalf("server 200 got %+v, want b only", got)
	}
	if got := k.handTo(200); len(got) != 0 {
		t.Fatalf("server 200 got %+v again", got)
	}
	if got := k.handTo(300); len(got) != 2 {
		t.Fatalf("server 300 got %+v, want b and c", got)
	}

	// A server that stops answering on b for a reason of its own has
	// the holder drop it, so that the kernel fails b's calls (ENOSYS)
	// rather than leave them waiting.
	var st syscall.Stat_t
	if err := syscall.Fstat(b2, &st); err != nil {
		t.Fatal(err)
	}
	if err := k.drop(st.Ino); err != nil {
		t.Fatal(err)
	}
	if isOpen(b1) || isOpen(b2) {
		t.Fatal("a dropped listener's fds are still open")
	}
	if got := k.handTo(400); len(got) != 1 || got[0].container != "c" {
		t.Fatalf("after the drop server 400 got %+v, want c only", got)
	}
	if err := k.drop(st.Ino); err == nil {
		t.Fatal("dropping an unknown slot did not fail")
	}

	k.closeAll()
	for _, fd := range []int{c1, c2} {
		if isOpen(fd) {
			t.Fatalf("fd %d open after closeAll", fd)
		}
	}
}

// A server's Keep reaches the holder with the fds; the holder hands them
// to the next server, which gets the same open files; a drain request runs
// the server's drain and is answered.
func TestKeptListenersGoToTheNextServer(t *testing.T) {
	h := &holder{Config: Config{Log: slog.New(slog.DiscardHandler)}, notify: &notifyKeep{
		gone:       func(int) bool { return false },
		answerLeft: func(int, int) (bool, error) { return false, nil },
	}}
	defer h.notify.closeAll()
	ours1, theirs1 := unixPair(t)
	s1 := &server{pid: 1, link: ours1, events: make(chan string, 4), heldAsk: make(chan struct{}, 1), exited: make(chan struct{})}
	go h.listen(ours1, s1)
	l1 := &Link{conn: theirs1, held: make(chan []seccompagent.Held, 1)}
	go l1.read()

	n, slot := fakeFds(t)
	defer syscall.Close(n)
	defer syscall.Close(slot)
	if err := l1.Keep("ctr", n, slot); err != nil {
		t.Fatal(err)
	}
	poll(t, "the holder keeps the fds", func() bool { return len(h.notify.handTo(0)) == 1 })

	drained := make(chan struct{})
	l1.OnDrain(func() { close(drained) })
	done := make(chan struct{})
	go func() { h.drain(s1); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("drain did not return")
	}
	select {
	case <-drained:
	default:
		t.Fatal("the drain returned before the server drained")
	}

	ours2, theirs2 := unixPair(t)
	s2 := &server{pid: 2, link: ours2, events: make(chan string, 4), heldAsk: make(chan struct{}, 1), exited: make(chan struct{})}
	go h.listen(ours2, s2)
	l2 := &Link{conn: theirs2, held: make(chan []seccompagent.Held, 1)}
	go l2.read()
	got := make(chan []seccompagent.Held, 1)
	go func() {
		held, err := l2.Held(context.Background())
		if err != nil {
			t.Error(err)
		}
		got <- held
	}()
	select {
	case <-s2.heldAsk:
	case <-time.After(5 * time.Second):
		t.Fatal("the ask did not reach the holder")
	}
	h.handHeld(s2)
	held := <-got
	if len(held) != 1 || held[0].Container != "ctr" {
		t.Fatalf("the next server got %+v", held)
	}
	defer syscall.Close(held[0].Notify)
	defer syscall.Close(held[0].Slot)
	if !sameFile(t, held[0].Notify, n) || !sameFile(t, held[0].Slot, slot) {
		t.Fatal("the next server got other files")
	}
}

func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 5 s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
