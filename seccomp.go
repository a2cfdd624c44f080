package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/cgprocfs/cgprocfs/holder"
	"github.com/cgprocfs/cgprocfs/seccompagent"
)

// DefaultSeccompListener is where runtimes reach the seccomp agent (a
// seccomp profile's listenerPath).
const DefaultSeccompListener = "/run/cgprocfs/seccomp.sock"

// startSeccompAgent answers containers' sysinfo(2) on path until the
// returned stop is called. An agent that cannot start is logged and the
// daemon serves its files without it: a listener another daemon holds is
// that daemon's to answer. served tells the NRI plugin whether the agent
// serves (nil when it never started).
//
// With a holder (link not nil), the holder keeps a copy of every listener
// fd, and this server first takes over those a previous server answered
// (even when its own socket cannot be made, so that their containers never
// wait); the holder's drain request (an upgrade) stops the agent receiving.
func startSeccompAgent(path string, src seccompagent.Source, log *slog.Logger, link *holder.Link) (stop func(), served *agentServing) {
	a, err := seccompagent.Listen(path, src, log)
	if err != nil {
		level := slog.LevelError
		if errors.Is(err, seccompagent.ErrInUse) {
			level = slog.LevelWarn
		}
		log.Log(context.Background(), level, "seccomp agent off: containers whose profile names this listener get the kernel's sysinfo or fail to start", "listener", path, "err", err)
		if link == nil || !link.KeepsNotify {
			return func() {}, nil
		}
		a = seccompagent.WithoutSocket(src, log)
	} else {
		log.Info("seccomp agent listening", "listener", path)
		served = &agentServing{path: path}
		served.on.Store(true)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if link != nil && link.KeepsNotify {
		a.SetKeeper(link)
		link.OnDrain(a.Drain)
		go func() {
			held, err := link.Held(ctx)
			if err != nil {
				log.Warn("seccomp agent: the holder's listeners not taken over", "err", err)
				return
			}
			a.Resume(held)
			log.Info("seccomp agent: took over the holder's listeners", "listeners", len(held))
		}()
	}
	off := func() {
		if served != nil {
			served.on.Store(false)
		}
	}
	done := make(chan struct{})
	go func() { a.Serve(ctx); off(); close(done) }()
	return func() { off(); cancel(); <-done }, served
}

// agentServing is the seccomp agent as the NRI plugin asks about it
// (nriplugin.Agent).
type agentServing struct {
	path string
	on   atomic.Bool
}

func (s *agentServing) Listener() string { return s.path }

// Serving is true while the agent serves and its socket is in place (a
// socket someone removed is one runc cannot connect to).
func (s *agentServing) Serving() bool {
	if !s.on.Load() {
		return false
	}
	fi, err := os.Stat(s.path)
	return err == nil && fi.Mode()&os.ModeSocket != 0
}

// validListener accepts "" (off) or an absolute path that fits a unix
// socket address (sun_path is 108 bytes with its NUL).
func validListener(path string) bool {
	return path == "" || (filepath.IsAbs(path) && len(path) < 108)
}
