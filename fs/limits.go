package fs

import (
	"context"
	"log/slog"
	"runtime/debug"
	"sync"
	"syscall"
	"time"
)

// What one container may hold: every open of a served file keeps a snapshot
// of its content in the daemon until the reader closes it, so without a cap
// one container could make the node's daemon as large as it likes.
const (
	// DefaultMaxOpenPerOwner is how many served files one container may
	// hold open at once.
	DefaultMaxOpenPerOwner = 4096
	// DefaultMaxBytesPerOwner is how many bytes of snapshots it may hold.
	DefaultMaxBytesPerOwner = 16 << 20
	// warnEvery rate-limits the log line of a container over its cap.
	warnEvery = time.Minute
	// reclaimEvery is how often memory freed by closed opens is handed
	// back to the kernel, once reclaimAfterOpens opens or
	// reclaimAfterBytes bytes of snapshots were let go: each open costs
	// the daemon about 6 KB besides its snapshot (go-fuse's handle and
	// request state), measured with 4,096 opens of cpuinfo.
	reclaimEvery      = 5 * time.Second
	reclaimAfterOpens = 512
	reclaimAfterBytes = 16 << 20
)

type ownerKey struct{}

// ownerSlot carries, through a ContentFunc's context, whom the open is
// charged to.
type ownerSlot struct{ owner string }

// SetOwner names, from inside a ContentFunc, the container an open is
// charged to: its open files and snapshot bytes count against that
// container's caps. An open that names no one is charged to "".
func SetOwner(ctx context.Context, owner string) {
	if s, ok := ctx.Value(ownerKey{}).(*ownerSlot); ok {
		s.owner = owner
	}
}

// limiter counts open snapshots and their bytes per owner.
type limiter struct {
	maxOpen  int   // <= 0: none
	maxBytes int64 // <= 0: none
	log      *slog.Logger
	// refused is told of each open refused on a cap.
	refused func()

	mu     sync.Mutex
	owners map[string]*usage
	// total is every owner's bytes, and open every owner's opens; the
	// highs are their highest since the last reclaim.
	total, high    int64
	open, highOpen int
}

type usage struct {
	open   int
	bytes  int64
	warned time.Time
}

func newLimiter(maxOpen int, maxBytes int64, log *slog.Logger) *limiter {
	switch {
	case maxOpen == 0:
		maxOpen = DefaultMaxOpenPerOwner
	case maxOpen < 0:
		maxOpen = 0
	}
	switch {
	case maxBytes == 0:
		maxBytes = DefaultMaxBytesPerOwner
	case maxBytes < 0:
		maxBytes = 0
	}
	return &limiter{maxOpen: maxOpen, maxBytes: maxBytes, log: log, refused: func() {}, owners: map[string]*usage{}}
}

// acquire charges an open of n bytes to owner, or refuses it with EMFILE
// when the owner is at a cap, as a process at its descriptor limit is.
func (l *limiter) acquire(owner string, n int) syscall.Errno {
	l.mu.Lock()
	defer l.mu.Unlock()
	u := l.owners[owner]
	if u == nil {
		u = &usage{}
		l.owners[owner] = u
	}
	if l.maxOpen > 0 && u.open >= l.maxOpen || l.maxBytes > 0 && u.bytes+int64(n) > l.maxBytes {
		if now := time.Now(); now.Sub(u.warned) >= warnEvery {
			u.warned = now
			l.log.Warn("container over its cap of open files; opens fail with EMFILE until it closes some",
				"cgroup", owner, "open", u.open, "bytes", u.bytes, "max-open", l.maxOpen, "max-bytes", l.maxBytes)
		}
		l.refused()
		return syscall.EMFILE
	}
	u.open++
	l.open++
	l.highOpen = max(l.highOpen, l.open)
	l.add(u, int64(n))
	return 0
}

// resize charges a rebuilt snapshot's new size; a rebuild is never refused
// (the reader holds the open already), only counted.
func (l *limiter) resize(owner string, old, n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if u := l.owners[owner]; u != nil {
		l.add(u, int64(n-old))
	}
}

// release ends an open of n bytes.
func (l *limiter) release(owner string, n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	u := l.owners[owner]
	if u == nil {
		return
	}
	u.open--
	l.open--
	l.add(u, -int64(n))
	if u.open == 0 && time.Since(u.warned) >= warnEvery {
		delete(l.owners, owner)
	}
}

func (l *limiter) add(u *usage, n int64) {
	u.bytes += n
	l.total += n
	l.high = max(l.high, l.total)
}

// reclaim hands memory of closed opens back to the kernel until stop is
// closed. The Go runtime returns freed heap to the kernel only slowly (a
// 400 MB peak of open snapshots took about 15 minutes to go), so once many
// opens were let go it frees their memory at once.
func (l *limiter) reclaim(stop <-chan struct{}) {
	t := time.NewTicker(reclaimEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		l.mu.Lock()
		due := l.high-l.total >= reclaimAfterBytes || l.highOpen-l.open >= reclaimAfterOpens
		if due {
			l.high, l.highOpen = l.total, l.open
		}
		l.mu.Unlock()
		if due {
			debug.FreeOSMemory()
		}
	}
}
