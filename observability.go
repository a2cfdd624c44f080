package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/cgprocfs/cgprocfs/metrics"
)

// DefaultMetricsListen is where metrics are served unless told otherwise:
// loopback only, as they name every container on the host.
const DefaultMetricsListen = "127.0.0.1:9750"

// observabilityFlags are mount's flags for metrics and logs.
func observabilityFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "metrics-listen", Value: DefaultMetricsListen, Usage: "serve Prometheus metrics at /metrics on this HOST:PORT or unix:PATH (\"\": no metrics)"},
		&cli.BoolFlag{Name: "metrics-all-cgroups", Usage: "export per-container metrics for every cgroup of the hierarchy, not only those whose files were read lately (each is then load-tracked too)"},
		&cli.StringFlag{Name: "log-format", Value: "text", Usage: "text or json"},
	}
}

// checkObservabilityFlags refuses values of those flags the daemon cannot
// use.
func checkObservabilityFlags(c *cli.Context) error {
	if err := metrics.CheckAddress(c.String("metrics-listen")); err != nil {
		return fmt.Errorf("--metrics-listen %q: %w", c.String("metrics-listen"), err)
	}
	if _, ok := logHandler(io.Discard, c.String("log-format"), slog.LevelInfo); !ok {
		return fmt.Errorf("--log-format must be text or json, not %q", c.String("log-format"))
	}
	return nil
}

// logHandler makes the daemon's log handler for a --log-format.
func logHandler(w io.Writer, format string, level slog.Level) (slog.Handler, bool) {
	o := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(format) {
	case "text":
		return slog.NewTextHandler(w, o), true
	case "json":
		return slog.NewJSONHandler(w, o), true
	}
	return nil, false
}

// startMetrics listens on addr and serves a new registry there until stop
// is called; with addr "" it does nothing and returns a nil registry. When
// addr is the default (not asked for), failing to listen (another daemon
// on the port) is logged and the daemon runs without metrics: the files
// matter more than their metrics.
func startMetrics(addr string, asked bool, log *slog.Logger, predecessorGone <-chan struct{}) (m *metrics.Metrics, stop func(), err error) {
	if addr == "" {
		return nil, func() {}, nil
	}
	if predecessorGone != nil {
		// An upgrade: the old server listens on addr until it is gone.
		m = metrics.New(version)
		return m, after(predecessorGone, func() func() {
			ln, err := metrics.Listen(addr)
			if err != nil {
				log.Error("no metrics after the upgrade", "err", err)
				return func() {}
			}
			return serveMetrics(m, ln, log)
		}), nil
	}
	ln, err := metrics.Listen(addr)
	if err != nil && !asked {
		log.Warn("no metrics: the default metrics address is taken; give --metrics-listen another", "err", err)
		return nil, func() {}, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("--metrics-listen: %w", err)
	}
	m = metrics.New(version)
	return m, serveMetrics(m, ln, log), nil
}

func serveMetrics(m *metrics.Metrics, ln net.Listener, log *slog.Logger) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := m.Serve(ctx, ln, log); err != nil {
			log.Error("metrics server stopped; the mount is still served", "err", err)
		}
	}()
	log.Info("serving metrics", "address", ln.Addr().String(), "path", metrics.Path)
	return func() { cancel(); <-done }
}
