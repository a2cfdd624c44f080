package metrics

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cgprocfs/cgprocfs/provider"
)

const id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestContainerID(t *testing.T) {
	for _, tc := range []struct{ path, want string }{
		{"/docker/" + id, id},
		{"/system.slice/docker-" + id + ".scope", id},
		{"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234_5678.slice/cri-containerd-" + id + ".scope", id},
		{"/kubepods/besteffort/pod0f0e4a3c-1111-2222-3333-444455556666/" + id, id},
		{"/machine.slice/libpod-" + id + ".scope/container", id},
		{"/crio-" + id + ".scope", id},
		{"/lxc.payload.web", ""},
		{"/", ""},
		{"", ""},
		{"/system.slice/sshd.service", ""},
		// 63 and 65 digits, upper case: no id.
		{"/docker/" + id[1:], ""},
		{"/docker/" + id + "0", ""},
		{"/docker/" + strings.ToUpper(id), ""},
		// Not hex.
		{"/docker/" + strings.Repeat("g", 64), ""},
		// The deepest wins.
		{"/docker/" + id + "/" + strings.Repeat("1", 64), strings.Repeat("1", 64)},
	} {
		if got := ContainerID(tc.path); got != tc.want {
			t.Errorf("ContainerID(%q) = %q, want %q", tc.path, got, tc.want)
		}
	}
}

func TestContainerLabelsMakeInvalidUTF8Valid(t *testing.T) {
	cg, cid := ContainerLabels("/bad\xff-" + id + ".scope")
	if cg != "/bad\uFFFD-"+id+".scope" || cid != id {
		t.Errorf("got %q, %q", cg, cid)
	}
	// The registry takes it: a scrape with such a cgroup neither fails
	// nor panics.
	m := New("test")
	m.WatchContainers(func() []provider.ContainerStats {
		return []provider.ContainerStats{{Cgroup: "/bad\xff", CPUs: 1}}
	}, 0)
	if _, err := m.Registry().Gather(); err != nil {
		t.Fatal(err)
	}
}

func TestCollectorDropsGoneContainers(t *testing.T) {
	var mu sync.Mutex
	load := [3]float64{1.5, 1, 0.5}
	steal := 2.5
	stats := []provider.ContainerStats{
		{Cgroup: "/docker/" + id, Load: &load, Memory: &provider.MemoryStats{Total: 200 << 20, Available: 150 << 20}, StealSeconds: &steal, CPUs: 2},
		{Cgroup: "/other", CPUs: 4},
	}
	m := New("test")
	m.WatchContainers(func() []provider.ContainerStats {
		mu.Lock()
		defer mu.Unlock()
		return stats
	}, 0)
	want := `
# HELP cgprocfs_container_load1 The container's 1-minute load average, as its /proc/loadavg shows it.
# TYPE cgprocfs_container_load1 gauge
cgprocfs_container_load1{cgroup="/docker/` + id + `",container_id="` + id + `"} 1.5
# HELP cgprocfs_container_memory_total_bytes MemTotal of the container's /proc/meminfo: its memory limit, at most the host's memory.
# TYPE cgprocfs_container_memory_total_bytes gauge
cgprocfs_container_memory_total_bytes{cgroup="/docker/` + id + `",container_id="` + id + `"} 2.097152e+08
# HELP cgprocfs_container_cpus CPUs the container's /proc/cpuinfo, /proc/stat and sys/devices/system/cpu/online show.
# TYPE cgprocfs_container_cpus gauge
cgprocfs_container_cpus{cgroup="/docker/` + id + `",container_id="` + id + `"} 2
cgprocfs_container_cpus{cgroup="/other",container_id=""} 4
# HELP cgprocfs_container_cpu_steal_seconds_total Steal time of the container's /proc/stat: time its threads waited for a CPU (its quota's throttling included).
# TYPE cgprocfs_container_cpu_steal_seconds_total counter
cgprocfs_container_cpu_steal_seconds_total{cgroup="/docker/` + id + `",container_id="` + id + `"} 2.5
# HELP cgprocfs_tracked_containers Containers the per-container metrics cover: those whose files were read lately (all cgroups with --metrics-all-cgroups).
# TYPE cgprocfs_tracked_containers gauge
cgprocfs_tracked_containers 2
`
	names := []string{"cgprocfs_container_load1", "cgprocfs_container_memory_total_bytes", "cgprocfs_container_cpus", "cgprocfs_container_cpu_steal_seconds_total", "cgprocfs_tracked_containers"}
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}
	// The first container goes: none of its series stay.
	mu.Lock()
	stats = stats[1:]
	mu.Unlock()
	n, err := testutil.GatherAndCount(m.Registry(), "cgprocfs_container_load1", "cgprocfs_container_load5", "cgprocfs_container_load15",
		"cgprocfs_container_memory_total_bytes", "cgprocfs_container_memory_available_bytes", "cgprocfs_container_cpu_steal_seconds_total")
	if err != nil || n != 0 {
		t.Fatalf("%d series left of a gone container (err %v)", n, err)
	}
	if n, _ := testutil.GatherAndCount(m.Registry(), "cgprocfs_container_cpus"); n != 1 {
		t.Errorf("%d cpus series, want the other container's only", n)
	}
}

func TestFileObserverCountsResults(t *testing.T) {
	m := New("v1.2.3")
	f := m.File("proc/meminfo")
	for range 3 {
		f.Begin()
		f.End(50*time.Microsecond, 0)
	}
	f.Begin()
	if m.inFlight.Load() != 1 {
		t.Errorf("in flight %d during a request, want 1", m.inFlight.Load())
	}
	f.End(time.Millisecond, syscall.EIO)
	f.Begin()
	f.End(time.Millisecond, syscall.EMFILE)
	m.OpenRefused()
	if m.inFlight.Load() != 0 {
		t.Errorf("in flight %d after every request ended", m.inFlight.Load())
	}
	for result, want := range map[string]float64{"ok": 3, "EIO": 1, "EMFILE": 1} {
		if got := testutil.ToFloat64(m.requests.WithLabelValues("proc/meminfo", result)); got != want {
			t.Errorf("requests{result=%q} = %v, want %v", result, got, want)
		}
	}
	if got := testutil.CollectAndCount(m.duration); got != 1 {
		t.Errorf("%d duration series, want 1", got)
	}
	if got := testutil.ToFloat64(m.openRefused); got != 1 {
		t.Errorf("open refused %v", got)
	}
	if ErrnoName(syscall.Errno(4000)) != "errno_4000" {
		t.Errorf("unknown errno named %q", ErrnoName(syscall.Errno(4000)))
	}
}

func TestBuildInfo(t *testing.T) {
	m := New("v1.2.3")
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "cgprocfs_build_info" {
			continue
		}
		got := map[string]string{}
		for _, l := range mf.GetMetric()[0].GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		if got["version"] != "v1.2.3" || !strings.HasPrefix(got["goversion"], "go") {
			t.Errorf("build info labels %v", got)
		}
		return
	}
	t.Fatal("no cgprocfs_build_info")
}

func TestCheckAddress(t *testing.T) {
	for _, ok := range []string{"", "127.0.0.1:9750", "[::1]:0", ":9750", "unix:/run/x.sock"} {
		if err := CheckAddress(ok); err != nil {
			t.Errorf("CheckAddress(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"unix:", "127.0.0.1", "localhost:9750:1", "9750"} {
		if err := CheckAddress(bad); err == nil {
			t.Errorf("CheckAddress(%q) accepted", bad)
		}
	}
}

// TestServeUnixSocket serves on a Unix socket, replaces a stale one, and
// refuses a live one.
func TestServeUnixSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "m.sock")
	stale, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close() // leaves the file, as a killed daemon does
	ln, err := Listen("unix:" + sock)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	if _, err := Listen("unix:" + sock); err == nil {
		t.Fatal("a live socket was taken over")
	}
	m := New("test")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Serve(ctx, ln, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	c := http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	resp, err := c.Get("http://cgprocfs/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "cgprocfs_build_info{") {
		t.Fatalf("status %d, body:\n%s", resp.StatusCode, body)
	}
}
