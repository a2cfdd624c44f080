package loadavg

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Period is the kernel's LOAD_FREQ: one sample every 5 s.
const Period = 5 * time.Second

// Snapshot is a tracked cgroup's state after its latest sample. It is never
// changed once published, so readers use it without a lock.
type Snapshot struct {
	Avg Avg
	// Counts of the cgroup and its descendants at the latest sample.
	Counts Counts
	// Dirs is the cgroup's directory and its descendants' at the latest
	// sample (just the cgroup before the first).
	Dirs []string
	// Samples is how many samples were folded in.
	Samples uint64
	// Seeded is set, before the first sample, once a reader has listed
	// the cgroup's threads into Counts (Seed).
	Seeded bool
}

// Tracker keeps a load average for every cgroup that was read lately. Run
// samples all of them on one fixed grid; Touch is the read path: a map
// lookup and an atomic load, never I/O and never a wait on a sample.
type Tracker struct {
	counter Counter
	idle    time.Duration
	period  time.Duration
	log     *slog.Logger
	epoch   time.Time

	mu      sync.RWMutex
	entries map[string]*entry

	// Rounds counts completed sampling rounds, for tests.
	rounds atomic.Uint64
	// onRound is told of each round: how many cgroups and how long.
	onRound func(cgroups int, took time.Duration)
}

type entry struct {
	dir      string
	lastRead atomic.Int64 // nanoseconds since the tracker's epoch (monotonic)
	snap     atomic.Pointer[Snapshot]
	// failing is set while samples fail, so a lasting error is logged
	// once rather than every 5 s; only the sampler touches it.
	failing bool
}

// NewTracker makes a tracker that counts with counter and forgets cgroups
// not read for idle (0: never).
func NewTracker(counter Counter, idle time.Duration, log *slog.Logger) *Tracker {
	if log == nil {
		log = slog.Default()
	}
	return &Tracker{counter: counter, idle: idle, period: Period, log: log, epoch: time.Now(), entries: map[string]*entry{},
		onRound: func(int, time.Duration) {}}
}

// OnRound has f told, after each sampling round, how many cgroups it
// sampled and how long it took. It must be called before Run.
func (t *Tracker) OnRound(f func(cgroups int, took time.Duration)) { t.onRound = f }

func (t *Tracker) since() int64 { return int64(time.Since(t.epoch)) }

// Touch marks dir (an absolute cgroup directory) as read, starts tracking it
// if it is new, and returns its latest snapshot.
func (t *Tracker) Touch(dir string) *Snapshot {
	t.mu.RLock()
	e := t.entries[dir]
	t.mu.RUnlock()
	if e == nil {
		t.mu.Lock()
		if e = t.entries[dir]; e == nil {
			e = &entry{dir: dir}
			e.snap.Store(&Snapshot{Dirs: []string{dir}})
			t.entries[dir] = e
		}
		t.mu.Unlock()
	}
	e.lastRead.Store(t.since())
	return e.snap.Load()
}

// Seed gives a tracked cgroup that has no sample yet the counts a reader
// listed, so that readers until the first sample (up to a period later)
// need not list its threads again. It does nothing once a sample landed.
func (t *Tracker) Seed(dir string, c Counts) {
	t.mu.RLock()
	e := t.entries[dir]
	t.mu.RUnlock()
	if e == nil {
		return
	}
	old := e.snap.Load()
	if old.Samples == 0 {
		e.snap.CompareAndSwap(old, &Snapshot{Counts: c, Dirs: old.Dirs, Seeded: true})
	}
}

// Len is the number of tracked cgroups.
func (t *Tracker) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.entries)
}

// Rounds is the number of completed sampling rounds.
func (t *Tracker) Rounds() uint64 { return t.rounds.Load() }

// Run samples every tracked cgroup at start + n×5 s until ctx ends. The grid
// is fixed, so the time a round takes does not shift the next; a round that
// ends past one or more grid points (a stalled host) folds the missed periods
// in at once with the kernel's calc_load_n, as the kernel does for a CPU that
// slept through ticks.
func (t *Tracker) Run(ctx context.Context) {
	start := time.Now()
	var k int64
	timer := time.NewTimer(t.period)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		due := int64(time.Since(start) / t.period)
		n := uint64(1)
		if due > k+1 {
			n = uint64(due - k)
			t.log.Warn("loadavg sampler fell behind", "missed_periods", n-1)
		}
		if due < k+1 {
			due = k + 1 // woke a hair early: count it as the due point
		}
		k = due
		t.SampleAll(n)
		timer.Reset(time.Until(start.Add(time.Duration(k+1) * t.period)))
	}
}

// SampleAll samples every tracked cgroup once and folds n periods in. Run
// calls it; tests call it to step the clock.
func (t *Tracker) SampleAll(n uint64) {
	start := time.Now()
	t.mu.RLock()
	list := make([]*entry, 0, len(t.entries))
	for _, e := range t.entries {
		list = append(list, e)
	}
	t.mu.RUnlock()
	now := t.since()
	for _, e := range list {
		// The daemon runs Go code on one P (cgprocfs mount
		// --gomaxprocs): a round over a thousand cgroups would hold it
		// while reads wait. Yielding between cgroups lets a waiting
		// read run after one cgroup's walk at most.
		runtime.Gosched()
		if t.idle > 0 && time.Duration(now-e.lastRead.Load()) > t.idle {
			t.drop(e, "not read for the idle timeout")
			continue
		}
		counts, dirs, err := t.walk(e.dir)
		if err != nil {
			if errors.Is(err, ErrGone) {
				t.drop(e, "cgroup removed")
			} else if !e.failing {
				e.failing = true
				t.log.Warn("loadavg sample failed; keeping the last averages until it works again", "cgroup", e.dir, "err", err)
			}
			continue
		}
		e.failing = false
		old := e.snap.Load()
		fold := n
		if old.Samples == 0 {
			fold = 1
		}
		e.snap.Store(&Snapshot{Avg: old.Avg.Fold(counts.Active(), fold), Counts: counts, Dirs: dirs, Samples: old.Samples + 1})
	}
	t.counter.EndRound()
	t.rounds.Add(1)
	t.onRound(len(list), time.Since(start))
}

func (t *Tracker) drop(e *entry, why string) {
	t.mu.Lock()
	// A reader may have touched it meanwhile; an idle entry that was read
	// again stays.
	if t.entries[e.dir] == e && (why != "not read for the idle timeout" || time.Duration(t.since()-e.lastRead.Load()) > t.idle) {
		delete(t.entries, e.dir)
		t.log.Debug("loadavg: stopped tracking", "cgroup", e.dir, "why", why)
	}
	t.mu.Unlock()
}

// walk counts dir and every cgroup below it. A directory's link count is 2
// plus its subdirectories (kernfs keeps it so), so leaf cgroups, the common
// case, cost no directory read.
func (t *Tracker) walk(dir string) (Counts, []string, error) {
	var total Counts
	var dirs []string
	var visit func(d string, root bool) error
	visit = func(d string, root bool) error {
		fd, err := unix.Open(d, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENODEV) {
				if root {
					return fmt.Errorf("%w: %s", ErrGone, d)
				}
				return nil // a child removed mid-walk
			}
			return fmt.Errorf("opening %s: %w", d, err)
		}
		defer unix.Close(fd)
		c, err := t.counter.Count(fd, d)
		if err != nil {
			if errors.Is(err, ErrGone) && !root {
				return nil
			}
			return err
		}
		total = total.Add(c)
		dirs = append(dirs, d)
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return fmt.Errorf("stat %s: %w", d, err)
		}
		if st.Nlink <= 2 {
			return nil
		}
		subs, err := subdirs(fd)
		if err != nil {
			return fmt.Errorf("listing %s: %w", d, err)
		}
		for _, s := range subs {
			if err := visit(d+"/"+s, false); err != nil {
				return err
			}
		}
		return nil
	}
	err := visit(dir, true)
	return total, dirs, err
}

// subdirs lists the subdirectories of the directory open at fd.
func subdirs(fd int) ([]string, error) {
	var names []string
	buf := make([]byte, 8192)
	for {
		n, err := unix.Getdents(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			return names, nil
		}
		b := buf[:n]
		for len(b) >= 19 {
			// struct linux_dirent64: ino u64, off s64, reclen u16, type u8, name.
			reclen := int(binary.NativeEndian.Uint16(b[16:]))
			if reclen < 19 || reclen > len(b) {
				return nil, errors.New("malformed directory entry")
			}
			if b[18] == unix.DT_DIR {
				name := b[19:reclen]
				for i, c := range name {
					if c == 0 {
						name = name[:i]
						break
					}
				}
				if s := string(name); s != "." && s != ".." {
					names = append(names, s)
				}
			}
			b = b[reclen:]
		}
	}
}
