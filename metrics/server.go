package metrics

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// Path is where the metrics are served.
const Path = "/metrics"

// CheckAddress refuses a --metrics-listen value that cannot be listened on
// whatever the host: "unix:" with no path, or a host:port that does not
// parse. "" (metrics off) is fine.
func CheckAddress(addr string) error {
	if addr == "" {
		return nil
	}
	if p, ok := strings.CutPrefix(addr, "unix:"); ok {
		if p == "" {
			return errors.New("unix: needs a socket path, as in unix:/run/cgprocfs/metrics.sock")
		}
		return nil
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("want HOST:PORT or unix:PATH: %w", err)
	}
	return nil
}

// Listen listens on addr: "unix:PATH" for a Unix socket (a stale socket
// left at PATH is replaced, any other file is not), else a TCP HOST:PORT.
func Listen(addr string) (net.Listener, error) {
	if err := CheckAddress(addr); err != nil {
		return nil, err
	}
	if p, ok := strings.CutPrefix(addr, "unix:"); ok {
		if st, err := os.Lstat(p); err == nil {
			if st.Mode().Type() != fs.ModeSocket {
				return nil, fmt.Errorf("metrics socket %s: a file that is not a socket is there", p)
			}
			// A live daemon's socket answers; only a dead one's goes.
			if c, err := net.DialTimeout("unix", p, time.Second); err == nil {
				c.Close()
				return nil, fmt.Errorf("metrics socket %s: another process listens on it", p)
			}
			if err := os.Remove(p); err != nil {
				return nil, fmt.Errorf("removing stale metrics socket: %w", err)
			}
		}
		ln, err := net.Listen("unix", p)
		if err != nil {
			return nil, fmt.Errorf("metrics socket: %w", err)
		}
		return ln, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listener: %w", err)
	}
	return ln, nil
}

// Serve serves m at Path on ln until ctx ends, then shuts the server down
// and closes ln (a Unix socket's file goes with it).
func (m *Metrics) Serve(ctx context.Context, ln net.Listener, log *slog.Logger) error {
	mux := http.NewServeMux()
	mux.Handle(Path, m.Handler())
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, "cgprocfs: metrics at %s\n", Path)
	})
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		// A scrape of many containers reads their cgroups; give it
		// room, but not forever.
		WriteTimeout: time.Minute,
		ErrorLog:     slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serving metrics: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving metrics: %w", err)
	}
	return nil
}
