package main

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"

	"github.com/cgprocfs/cgprocfs/seccompagent"
)

// DefaultSeccompListener is where runtimes reach the seccomp agent (a
// seccomp profile's listenerPath).
const DefaultSeccompListener = "/run/cgprocfs/seccomp.sock"

// startSeccompAgent answers containers' sysinfo(2) on path until the
// returned stop is called. An agent that cannot start is logged and the
// daemon serves its files without it: a listener another daemon holds is
// that daemon's to answer.
func startSeccompAgent(path string, src seccompagent.Source, log *slog.Logger) (stop func()) {
	a, err := seccompagent.Listen(path, src, log)
	if err != nil {
		level := slog.LevelError
		if errors.Is(err, seccompagent.ErrInUse) {
			level = slog.LevelWarn
		}
		log.Log(context.Background(), level, "seccomp agent off: containers whose profile names this listener get the kernel's sysinfo or fail to start", "listener", path, "err", err)
		return func() {}
	}
	log.Info("seccomp agent listening", "listener", path)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Serve(ctx); close(done) }()
	return func() { cancel(); <-done }
}

// validListener accepts "" (off) or an absolute path that fits a unix
// socket address (sun_path is 108 bytes with its NUL).
func validListener(path string) bool {
	return path == "" || (filepath.IsAbs(path) && len(path) < 108)
}
