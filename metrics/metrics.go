package metrics

import (
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sys/unix"

	"github.com/cgprocfs/cgprocfs/fs"
)

// RequestBuckets are the request duration histogram's buckets, in seconds:
// 10 µs (a snapshot of a tiny file) to 100 ms (a request that waited out a
// CFS period of a throttled daemon).
var RequestBuckets = []float64{10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3}

// loadRoundBuckets span a round of a few idle cgroups (100 µs) to one of
// thousands (6.5 s, past the 5 s period).
var loadRoundBuckets = prometheus.ExponentialBuckets(100e-6, 4, 9)

// Metrics is the daemon's registry and the metrics it updates. It is an
// fs.Observer and a provider.Observer.
type Metrics struct {
	reg *prometheus.Registry

	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	inFlight      atomic.Int64
	resolveErrors prometheus.Counter
	hostFallback  *prometheus.CounterVec
	loadRound     prometheus.Histogram
	reattached    prometheus.Counter
	openRefused   prometheus.Counter
}

// New makes the registry with the daemon's metrics, the Go runtime's and
// the process's. version is the daemon's, for cgprocfs_build_info.
func New(version string) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cgprocfs_requests_total",
			Help: "Requests that built a served file's content (an open, or a read at offset 0 after the first), by file and result: ok, or the errno the reader got.",
		}, []string{"file", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cgprocfs_request_duration_seconds",
			Help:    "Time to build a served file's content for a request, by file.",
			Buckets: RequestBuckets,
		}, []string{"file"}),
		resolveErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cgprocfs_caller_resolve_errors_total",
			Help: "Requests whose caller's container could not be found (the caller gone, its /proc files unreadable); the reader got EIO.",
		}),
		hostFallback: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cgprocfs_host_fallback_total",
			Help: "Requests in which a container got the host's figures because its cgroup could not say, by file and reason.",
		}, []string{"file", "reason"}),
		loadRound: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cgprocfs_loadavg_round_duration_seconds",
			Help:    "Time one round of the load average sampler (every 5 s) took over every tracked container.",
			Buckets: loadRoundBuckets,
		}),
		reattached: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cgprocfs_reattached_total",
			Help: "Binds of a dead cgprocfs mount in containers replaced with binds of this daemon's.",
		}),
		openRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cgprocfs_open_refused_total",
			Help: "Opens refused with EMFILE because the container was at its cap of open files or snapshot bytes.",
		}),
	}
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "cgprocfs_build_info",
		Help:        "Always 1; the labels say which cgprocfs and Go built the daemon.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()},
	})
	buildInfo.Set(1)
	inFlight := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "cgprocfs_requests_in_flight",
		Help: "Requests building a served file's content now.",
	}, func() float64 { return float64(m.inFlight.Load()) })
	m.reg.MustRegister(m.requests, m.duration, m.resolveErrors, m.hostFallback, m.loadRound, m.reattached, m.openRefused,
		buildInfo, inFlight,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry is the registry all of the daemon's metrics are in.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus text (or OpenMetrics)
// format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// File is fs.Observer's: the pre-resolved series of one served file.
func (m *Metrics) File(path string) fs.FileObserver {
	return &fileMetrics{
		m:        m,
		file:     path,
		ok:       m.requests.WithLabelValues(path, "ok"),
		duration: m.duration.WithLabelValues(path),
	}
}

// OpenRefused is fs.Observer's.
func (m *Metrics) OpenRefused() { m.openRefused.Inc() }

// ResolveFailed is provider.Observer's.
func (m *Metrics) ResolveFailed() { m.resolveErrors.Inc() }

// HostFallback is provider.Observer's.
func (m *Metrics) HostFallback(file, reason string) {
	m.hostFallback.WithLabelValues(file, reason).Inc()
}

// LoadRound is provider.Observer's.
func (m *Metrics) LoadRound(took time.Duration) { m.loadRound.Observe(took.Seconds()) }

// Reattached counts n binds replaced at start.
func (m *Metrics) Reattached(n int) { m.reattached.Add(float64(n)) }

// fileMetrics records one served file's requests without a lookup by label
// for a successful one; an error's counter is looked up once per errno.
type fileMetrics struct {
	m        *Metrics
	file     string
	ok       prometheus.Counter
	duration prometheus.Observer
	errnos   sync.Map // syscall.Errno -> prometheus.Counter
}

func (f *fileMetrics) Begin() { f.m.inFlight.Add(1) }

func (f *fileMetrics) End(took time.Duration, errno syscall.Errno) {
	f.m.inFlight.Add(-1)
	f.duration.Observe(took.Seconds())
	if errno == 0 {
		f.ok.Inc()
		return
	}
	c, ok := f.errnos.Load(errno)
	if !ok {
		c, _ = f.errnos.LoadOrStore(errno, f.m.requests.WithLabelValues(f.file, ErrnoName(errno)))
	}
	c.(prometheus.Counter).Inc()
}

// ErrnoName is the result label of an errno: its C name (EIO, EMFILE), or
// errno_N for one the table lacks.
func ErrnoName(errno syscall.Errno) string {
	if n := unix.ErrnoName(errno); n != "" {
		return n
	}
	return "errno_" + strconv.Itoa(int(errno))
}
