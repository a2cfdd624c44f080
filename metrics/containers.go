package metrics

import (
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cgprocfs/cgprocfs/provider"
)

// ContainerSource lists the tracked containers' figures, read now:
// provider.Provider.Containers in the daemon.
type ContainerSource func() []provider.ContainerStats

// ContainerMaxAge is how long one reading of every container's figures
// serves the scrapes that follow it: a reading costs about 0.7 ms per
// container (its cgroup files), so scrapes more frequent than this share
// one instead of taking CPU from the readers of the files.
const ContainerMaxAge = time.Second

// WatchContainers exports the per-container metrics of the containers src
// lists, read at a scrape at most maxAge after the previous reading: a
// container src no longer lists has no series from then on.
func (m *Metrics) WatchContainers(src ContainerSource, maxAge time.Duration) {
	m.reg.MustRegister(newContainerCollector(src, maxAge))
}

var containerLabels = []string{"cgroup", "container_id"}

// containerCollector turns src's figures into const metrics at each scrape;
// it keeps only the last reading, for maxAge, so no series outlives its
// container by more than that.
type containerCollector struct {
	src                    ContainerSource
	maxAge                 time.Duration
	mu                     sync.Mutex
	last                   []provider.ContainerStats
	read                   time.Time
	tracked                *prometheus.Desc
	load1, load5, load15   *prometheus.Desc
	memTotal, memAvailable *prometheus.Desc
	steal, cpus            *prometheus.Desc
}

func newContainerCollector(src ContainerSource, maxAge time.Duration) *containerCollector {
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, containerLabels, nil)
	}
	return &containerCollector{
		src:          src,
		maxAge:       maxAge,
		tracked:      prometheus.NewDesc("cgprocfs_tracked_containers", "Containers the per-container metrics cover: those whose files were read lately (all cgroups with --metrics-all-cgroups).", nil, nil),
		load1:        desc("cgprocfs_container_load1", "The container's 1-minute load average, as its /proc/loadavg shows it."),
		load5:        desc("cgprocfs_container_load5", "The container's 5-minute load average, as its /proc/loadavg shows it."),
		load15:       desc("cgprocfs_container_load15", "The container's 15-minute load average, as its /proc/loadavg shows it."),
		memTotal:     desc("cgprocfs_container_memory_total_bytes", "MemTotal of the container's /proc/meminfo: its memory limit, at most the host's memory."),
		memAvailable: desc("cgprocfs_container_memory_available_bytes", "MemAvailable of the container's /proc/meminfo."),
		steal:        desc("cgprocfs_container_cpu_steal_seconds_total", "Steal time of the container's /proc/stat: time its threads waited for a CPU (its quota's throttling included)."),
		cpus:         desc("cgprocfs_container_cpus", "CPUs the container's /proc/cpuinfo, /proc/stat and sys/devices/system/cpu/online show."),
	}
}

func (c *containerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.tracked, c.load1, c.load5, c.load15, c.memTotal, c.memAvailable, c.steal, c.cpus} {
		ch <- d
	}
}

// stats is src's reading, taken now unless the last is younger than maxAge.
func (c *containerCollector) stats() []provider.ContainerStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last == nil || time.Since(c.read) >= c.maxAge {
		c.last, c.read = c.src(), time.Now()
	}
	return c.last
}

func (c *containerCollector) Collect(ch chan<- prometheus.Metric) {
	stats := c.stats()
	ch <- prometheus.MustNewConstMetric(c.tracked, prometheus.GaugeValue, float64(len(stats)))
	for _, s := range stats {
		cgroup, id := ContainerLabels(s.Cgroup)
		gauge := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, cgroup, id)
		}
		gauge(c.cpus, float64(s.CPUs))
		if s.Load != nil {
			gauge(c.load1, s.Load[0])
			gauge(c.load5, s.Load[1])
			gauge(c.load15, s.Load[2])
		}
		if s.Memory != nil {
			gauge(c.memTotal, float64(s.Memory.Total))
			gauge(c.memAvailable, float64(s.Memory.Available))
		}
		if s.StealSeconds != nil {
			ch <- prometheus.MustNewConstMetric(c.steal, prometheus.CounterValue, *s.StealSeconds, cgroup, id)
		}
	}
}

// ContainerLabels are the cgroup and container_id label values of a cgroup
// path. A cgroup name may hold any byte but '/', and a label value must be
// UTF-8 (the registry refuses, and a Must* constructor panics on, anything
// else), so invalid bytes become U+FFFD.
func ContainerLabels(path string) (cgroup, containerID string) {
	cgroup = strings.ToValidUTF8(path, "\uFFFD")
	return cgroup, ContainerID(cgroup)
}

// ContainerID finds the container id in a cgroup path: the last run of
// exactly 64 lowercase hex digits that makes up a path element or a part of
// one between '-', '.', ':' or '_' ("/docker/ID",
// "/system.slice/docker-ID.scope", "/kubepods.slice/.../cri-containerd-ID.scope",
// "/kubepods/besteffort/podUID/ID", "crio-ID.scope",
// "/machine.slice/libpod-ID.scope/container"), or "" when there is none.
func ContainerID(path string) string {
	end := len(path)
	for end > 0 {
		// Back over separators, then over a run of other bytes.
		for end > 0 && isSep(path[end-1]) {
			end--
		}
		start := end
		for start > 0 && !isSep(path[start-1]) {
			start--
		}
		if tok := path[start:end]; len(tok) == 64 && isHex(tok) {
			return tok
		}
		end = start
	}
	return ""
}

func isSep(b byte) bool {
	return b == '/' || b == '-' || b == '.' || b == ':' || b == '_'
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
