package nriplugin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/containerd/nri/pkg/stub"
)

// Name is the plugin's name in the runtime's NRI registry.
const Name = "cgprocfs"

// DefaultSocket is where containerd and CRI-O listen for NRI plugins.
const DefaultSocket = "/var/run/nri/nri.sock"

// Index orders the plugin among others (runtimes call plugins in index
// order); late, so that plugins that place or size containers go first.
const Index = "90"

// Retry waits. A missing socket is looked for every second (containerd
// makes a new one as it restarts); a registration that fails is retried
// after one second, doubling to 30 s while it keeps failing, and a
// connection that ends after a registration is retried after one second.
const (
	socketPoll = time.Second
	minBackoff = time.Second
	maxBackoff = 30 * time.Second
)

// Run connects the plugin to the runtime at socket and serves it until ctx
// ends, connecting again whenever the runtime goes away (a containerd
// restart) and waiting for a socket that does not exist yet. It never
// returns an error: without NRI the daemon serves its mount all the same.
// It returns after the plugin's background attaches ended.
func (p *Plugin) Run(ctx context.Context, socket string) {
	defer p.Wait()
	backoff := minBackoff
	absentSaid := false
	for ctx.Err() == nil {
		if _, err := os.Stat(socket); err != nil {
			if !absentSaid {
				p.log.Warn("nri: no NRI socket; serving without NRI until it appears", "socket", socket, "err", err)
				absentSaid = true
			}
			sleep(ctx, socketPoll)
			continue
		}
		absentSaid = false
		registered, err := p.connect(ctx, socket)
		if ctx.Err() != nil {
			return
		}
		if registered {
			backoff = minBackoff
		}
		p.log.Warn("nri: connection to the runtime ended; connecting again", "socket", socket, "err", err, "in", backoff)
		sleep(ctx, backoff)
		backoff = min(2*backoff, maxBackoff)
	}
}

// connect registers on socket and serves until the connection ends;
// registered tells whether it got as far as serving.
func (p *Plugin) connect(ctx context.Context, socket string) (registered bool, err error) {
	s, err := stub.New(p,
		stub.WithPluginName(Name),
		stub.WithPluginIdx(Index),
		stub.WithSocketPath(socket),
		stub.WithLogger(nriLogger{p.log}),
	)
	if err != nil {
		return false, fmt.Errorf("making the NRI stub: %w", err)
	}
	if err := s.Start(ctx); err != nil {
		return false, fmt.Errorf("registering with the runtime: %w", err)
	}
	p.log.Info("nri: registered", "plugin", Index+"-"+Name, "socket", socket, "runtime-nri", s.RuntimeNRIVersion())
	stopped := make(chan struct{})
	go func() { s.Wait(); close(stopped) }()
	select {
	case <-stopped:
		return true, errors.New("the runtime closed the connection")
	case <-ctx.Done():
		s.Stop()
		return true, ctx.Err()
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// nriLogger sends the NRI library's log lines to slog; its chatty
// informational lines (registering, configuring, subscribing) become debug.
type nriLogger struct{ log *slog.Logger }

func (l nriLogger) Debugf(ctx context.Context, format string, args ...any) {
	l.log.DebugContext(ctx, "nri: "+fmt.Sprintf(format, args...))
}

func (l nriLogger) Infof(ctx context.Context, format string, args ...any) {
	l.log.DebugContext(ctx, "nri: "+fmt.Sprintf(format, args...))
}

func (l nriLogger) Warnf(ctx context.Context, format string, args ...any) {
	l.log.WarnContext(ctx, "nri: "+fmt.Sprintf(format, args...))
}

func (l nriLogger) Errorf(ctx context.Context, format string, args ...any) {
	l.log.ErrorContext(ctx, "nri: "+fmt.Sprintf(format, args...))
}
