package fs

import (
	"log/slog"
	"syscall"
	"testing"
)

func TestLimiterCapsEachOwner(t *testing.T) {
	l := newLimiter(3, 100, slog.Default())
	for i := range 3 {
		if errno := l.acquire("a", 10); errno != 0 {
			t.Fatalf("open %d under the cap: %v", i, errno)
		}
	}
	if errno := l.acquire("a", 10); errno != syscall.EMFILE {
		t.Fatalf("open past the open-files cap: %v, want EMFILE", errno)
	}
	if errno := l.acquire("b", 100); errno != 0 {
		t.Fatalf("another owner is capped by a's opens: %v", errno)
	}
	if errno := l.acquire("c", 101); errno != syscall.EMFILE {
		t.Fatalf("open past the bytes cap: %v, want EMFILE", errno)
	}
	l.release("a", 10)
	if errno := l.acquire("a", 10); errno != 0 {
		t.Fatalf("open after a close: %v", errno)
	}
	l.resize("a", 10, 90)
	if errno := l.acquire("a", 1); errno != syscall.EMFILE {
		t.Fatalf("a grew by a rebuild to 110 bytes, yet its next open passed")
	}
	if l.total != 210 || l.high != 210 {
		t.Errorf("total %d, high %d; want 210 and 210", l.total, l.high)
	}
	l.release("a", 10)
	l.release("a", 10)
	l.release("a", 90) // the rebuilt one, at its new size
	if u := l.owners["a"]; u != nil && (u.open != 0 || u.bytes != 0) {
		t.Errorf("after every close: %+v", u)
	}
}

func TestLimiterNone(t *testing.T) {
	l := newLimiter(-1, -1, slog.Default())
	for range 10000 {
		if errno := l.acquire("a", 1<<20); errno != 0 {
			t.Fatalf("no cap, yet refused: %v", errno)
		}
	}
	d := newLimiter(0, 0, slog.Default())
	if d.maxOpen != DefaultMaxOpenPerOwner || d.maxBytes != DefaultMaxBytesPerOwner {
		t.Errorf("0 should mean the defaults: %d, %d", d.maxOpen, d.maxBytes)
	}
}
