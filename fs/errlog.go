package fs

import (
	"log/slog"
	"sync"
	"time"
)

// errorLogEvery is how often failures of one container's file are logged
// after the first.
const errorLogEvery = time.Minute

// errorLog logs failures to build content without flooding the log: the
// first failure of a container's file at once, then, once a minute while
// more come, one line with how many there were and the latest error. A
// container whose cgroup cannot be read fails every open, and a monitoring
// agent in it opens files several times a second.
type errorLog struct {
	log   *slog.Logger
	every time.Duration

	mu   sync.Mutex
	keys map[errorKey]*errorCount
}

// errorKey is one container's (owner's) file; owner is "" when the caller
// could not be resolved.
type errorKey struct{ owner, file string }

type errorCount struct {
	logged time.Time // when its last line was written
	n      int       // failures since that line
	pid    uint32    // the latest failure's
	err    error
}

func newErrorLog(log *slog.Logger, every time.Duration) *errorLog {
	return &errorLog{log: log, every: every, keys: map[errorKey]*errorCount{}}
}

// failed records a failure to build file for pid in owner's container.
func (l *errorLog) failed(owner, file string, pid uint32, err error) {
	k := errorKey{owner, file}
	l.mu.Lock()
	e := l.keys[k]
	if e != nil {
		e.n++
		e.pid, e.err = pid, err
		l.mu.Unlock()
		return
	}
	l.keys[k] = &errorCount{logged: time.Now()}
	l.mu.Unlock()
	l.log.Warn("building content failed", "file", file, "cgroup", ownerName(owner), "pid", pid, "err", err,
		"note", "further failures of this file for this cgroup are counted and logged once a minute")
}

// flush writes, for every container's file last logged at least `every`
// ago, how many more failures came since; one with none since is
// forgotten, so that its next failure is logged at once again.
func (l *errorLog) flush(now time.Time) {
	type line struct {
		k errorKey
		e errorCount
	}
	var lines []line
	l.mu.Lock()
	for k, e := range l.keys {
		if now.Sub(e.logged) < l.every {
			continue
		}
		if e.n == 0 {
			delete(l.keys, k)
			continue
		}
		lines = append(lines, line{k, *e})
		e.n, e.logged, e.err = 0, now, nil
	}
	l.mu.Unlock()
	for _, ln := range lines {
		l.log.Warn("building content failed again", "file", ln.k.file, "cgroup", ownerName(ln.k.owner),
			"times", ln.e.n, "since", ln.e.logged.Format(time.RFC3339), "last-pid", ln.e.pid, "last-err", ln.e.err)
	}
}

// run flushes until stop is closed.
func (l *errorLog) run(stop <-chan struct{}) {
	t := time.NewTicker(l.every / 6)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			l.flush(now)
		}
	}
}

func ownerName(owner string) string {
	if owner == "" {
		return "unknown (caller not resolved)"
	}
	return owner
}
