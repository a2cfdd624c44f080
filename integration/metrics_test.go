package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The metrics tests scrape the daemon with a real Prometheus (Debian's
// prometheus package, which hack/deps.sh installs for make test) on
// loopback. The cgroup v2 VM has no Prometheus: there the same checks read
// the daemon's /metrics directly.

// freeLoopback is a loopback address with a port free a moment ago.
func freeLoopback(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// httpGet fetches u within 10 s.
func httpGet(t *testing.T, u string) ([]byte, error) {
	t.Helper()
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s: %s", u, resp.Status, body)
	}
	return body, err
}

// scrape reads the daemon's metrics as text and parsed.
func scrape(t *testing.T, addr string) (string, map[string]*dto.MetricFamily) {
	t.Helper()
	body, err := httpGet(t, "http://"+addr+"/metrics")
	if err != nil {
		t.Fatalf("scraping the daemon: %v", err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parsing the daemon's metrics: %v\n%s", err, body)
	}
	return string(body), fams
}

// sample is the value of the series of name whose labels include want, and
// whether there is one.
func sample(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
	var sum float64
	found := false
next:
	for _, m := range f.GetMetric() {
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		found = true
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		}
	}
	return sum, found
}

// prometheus is a Prometheus server scraping one target every second.
type prometheus struct {
	addr string
	cmd  *exec.Cmd
	log  *syncWriter
}

// startPrometheus starts Prometheus on a free loopback port with a
// temporary data directory, scraping target (HOST:PORT) every second and
// evaluating the repository's alert rules; it stops when the test ends.
func startPrometheus(t *testing.T, target string) *prometheus {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		return nil
	}
	dir := t.TempDir()
	rules, err := filepath.Abs("../deploy/prometheus/cgprocfs-rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	config := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: cgprocfs
    static_configs:
      - targets: [%q]
`, rules, target)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &prometheus{addr: freeLoopback(t), log: &syncWriter{w: &bytes.Buffer{}}}
	p.cmd = exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+p.addr)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting prometheus: %v", err)
	}
	exited := make(chan struct{})
	go func() { p.cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			p.cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("prometheus log:\n%s", p.log.String())
		}
	})
	poll(t, 30*time.Second, "prometheus to be ready", func() bool {
		select {
		case <-exited:
			t.Fatalf("prometheus exited: %s", p.log.String())
		default:
		}
		_, err := httpGet(t, "http://"+p.addr+"/-/ready")
		return err == nil
	})
	return p
}

// query runs an instant PromQL query and returns the value of its single
// series, if there is one.
func (p *prometheus) query(t *testing.T, q string) (float64, bool) {
	t.Helper()
	body, err := httpGet(t, "http://"+p.addr+"/api/v1/query?query="+url.QueryEscape(q))
	if err != nil {
		t.Fatalf("query %s: %v", q, err)
	}
	var r struct {
		Status string `json:"status"`
		Data   struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil || r.Status != "success" {
		t.Fatalf("query %s: %v: %s", q, err, body)
	}
	if len(r.Data.Result) == 0 {
		return 0, false
	}
	if len(r.Data.Result) > 1 {
		t.Fatalf("query %s: %d series, want one: %s", q, len(r.Data.Result), body)
	}
	s, _ := r.Data.Result[0].Value[1].(string)
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("query %s: value %q: %v", q, s, err)
	}
	return v, true
}

// metricsReader reads a metric's current value: through Prometheus when
// there is one, else from the daemon's /metrics.
type metricsReader struct {
	t      *testing.T
	daemon string
	prom   *prometheus
}

// value is the sum of the series of name with the given label values.
func (r metricsReader) value(name string, labels map[string]string) (float64, bool) {
	if r.prom == nil {
		_, fams := scrape(r.t, r.daemon)
		return sample(fams, name, labels)
	}
	var sel []string
	for k, v := range labels {
		sel = append(sel, fmt.Sprintf("%s=%q", k, v))
	}
	return r.prom.query(r.t, fmt.Sprintf("sum(%s{%s})", name, strings.Join(sel, ",")))
}

// firstField is the first field of a loadavg line as a number.
func firstField(t *testing.T, line string) float64 {
	t.Helper()
	f := strings.Fields(line)
	if len(f) == 0 {
		t.Fatalf("empty loadavg")
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		t.Fatalf("loadavg %q: %v", line, err)
	}
	return v
}

// TestMetricsPrometheus: a busy and an idle container, each read once
// through the mount, get their load, memory and CPU series; Prometheus's
// values match what their files show; the request counter counts exactly
// the reads made; promtool finds nothing wrong in the metrics or the rules.
func TestMetricsPrometheus(t *testing.T) {
	needRoot(t)
	metricsAddr := freeLoopback(t)
	d := startDaemon(t, "--metrics-listen", metricsAddr, "--log-format", "json")

	// JSON logs: every line the daemon wrote so far parses.
	poll(t, 10*time.Second, "the daemon to log that it serves metrics", func() bool {
		return strings.Contains(d.logs(), `"msg":"serving metrics"`)
	})
	for _, line := range strings.Split(strings.TrimSpace(d.logs()), "\n") {
		var v map[string]any
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Errorf("--log-format json wrote a line that is not JSON: %q", line)
		}
	}

	const busyLimit, idleLimit = 200 << 20, 300 << 20
	busy, idle := newCgroup(t, "busy", nil), newCgroup(t, "idle", nil)
	busy.SetMemoryLimit(t, busyLimit)
	idle.SetMemoryLimit(t, idleLimit)
	d.start(t, busy, "cat /proc/loadavg >/dev/null; sh -c 'while :; do :; done' & sh -c 'while :; do :; done' & wait")
	d.start(t, idle, "cat /proc/loadavg >/dev/null; exec sleep 600")
	busyL, idleL := map[string]string{"cgroup": "/" + busy.Name}, map[string]string{"cgroup": "/" + idle.Name}

	prom := startPrometheus(t, metricsAddr)
	if prom == nil {
		if os.Getenv("CGPROCFS_VM") == "" {
			t.Fatal("prometheus is not installed (hack/deps.sh test installs it)")
		}
		t.Log("no Prometheus in the cgroup v2 VM: checking the daemon's /metrics directly instead of through Prometheus")
	}
	m := metricsReader{t: t, daemon: metricsAddr, prom: prom}

	// Both are tracked, with their limits, as soon as they were read.
	poll(t, 30*time.Second, "both containers' memory series", func() bool {
		_, a := m.value("cgprocfs_container_memory_total_bytes", busyL)
		_, b := m.value("cgprocfs_container_memory_total_bytes", idleL)
		return a && b
	})
	if v, _ := m.value("cgprocfs_container_memory_total_bytes", busyL); v != busyLimit {
		t.Errorf("busy memory_total_bytes %v, want its limit %d", v, busyLimit)
	}
	if v, _ := m.value("cgprocfs_container_memory_total_bytes", idleL); v != idleLimit {
		t.Errorf("idle memory_total_bytes %v, want its limit %d", v, idleLimit)
	}
	if v, ok := m.value("cgprocfs_container_memory_available_bytes", busyL); !ok || v <= 0 || v > busyLimit {
		t.Errorf("busy memory_available_bytes %v (%v), want in (0, limit]", v, ok)
	}
	if v, ok := m.value("cgprocfs_container_cpus", busyL); !ok || v < 1 {
		t.Errorf("busy cpus %v (%v)", v, ok)
	}

	// The load builds up over ~30 s; then Prometheus's value matches the
	// file's first field read at nearly the same time (the sampler moves
	// every 5 s, Prometheus scrapes every 1 s: retry until both saw the
	// same sample).
	var fileLoad, promLoad float64
	poll(t, 90*time.Second, "the busy container's load to build up", func() bool {
		fileLoad = firstField(t, d.run(t, busy, "cat /proc/loadavg"))
		return fileLoad >= 0.5
	})
	poll(t, 60*time.Second, "the load metric to match the busy container's /proc/loadavg", func() bool {
		var ok bool
		promLoad, ok = m.value("cgprocfs_container_load1", busyL)
		fileLoad = firstField(t, d.run(t, busy, "cat /proc/loadavg"))
		t.Logf("busy: metric %.3f, file %.2f", promLoad, fileLoad)
		return ok && math.Abs(promLoad-fileLoad) <= 0.01+1e-9
	})
	if v, ok := m.value("cgprocfs_container_load1", idleL); !ok || v > 0.05 {
		t.Errorf("idle container's load1 %v (%v), want about 0", v, ok)
	}
	if v, ok := m.value("cgprocfs_container_cpu_steal_seconds_total", busyL); !ok || v < 0 {
		t.Errorf("busy steal %v (%v)", v, ok)
	}
	if v, ok := m.value("cgprocfs_tracked_containers", nil); !ok || v < 2 {
		t.Errorf("tracked containers %v (%v), want at least the two", v, ok)
	}

	// The request counter counts exactly the reads made: wait until the
	// series is still, then read a file the test alone reads.
	const reads = 25
	file := "proc/uptime"
	fl := map[string]string{"file": file}
	_, fams := scrape(t, metricsAddr)
	before, _ := sample(fams, "cgprocfs_requests_total", fl)
	poll(t, 10*time.Second, "the reader to see the current request count", func() bool {
		v, _ := m.value("cgprocfs_requests_total", fl)
		return v == before
	})
	for range reads {
		if _, err := os.ReadFile(d.Path(file)); err != nil {
			t.Fatal(err)
		}
	}
	poll(t, 10*time.Second, "the request count to grow by the reads made", func() bool {
		v, _ := m.value("cgprocfs_requests_total", fl)
		if v > before+reads {
			t.Fatalf("requests_total{file=%q} grew by %v, more than the %d reads made", file, v-before, reads)
		}
		return v == before+reads
	})
	if v, _ := m.value("cgprocfs_requests_total", map[string]string{"file": file, "result": "ok"}); v < reads {
		t.Errorf("requests_total{result=ok} %v", v)
	}

	text, fams := scrape(t, metricsAddr)
	for _, name := range []string{"cgprocfs_build_info", "cgprocfs_request_duration_seconds", "cgprocfs_requests_in_flight",
		"cgprocfs_caller_resolve_errors_total", "cgprocfs_loadavg_round_duration_seconds", "cgprocfs_reattached_total",
		"cgprocfs_open_refused_total", "cgprocfs_container_load5", "cgprocfs_container_load15"} {
		if fams[name] == nil {
			t.Errorf("no %s in the daemon's metrics", name)
		}
	}
	if h := fams["cgprocfs_loadavg_round_duration_seconds"]; h != nil && h.GetMetric()[0].GetHistogram().GetSampleCount() == 0 {
		t.Errorf("no loadavg round observed")
	}
	promtoolChecks(t, text, prom)
}

// promtoolChecks lints the scraped metrics and the rules file, and checks
// that Prometheus evaluates the rules without error.
func promtoolChecks(t *testing.T, metrics string, prom *prometheus) {
	t.Helper()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CGPROCFS_VM") == "" {
			t.Fatal("promtool is not installed (hack/deps.sh test installs it)")
		}
		t.Log("no promtool in the cgroup v2 VM: not linting")
		return
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(metrics)
	if out, err := cmd.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
	if out, err := exec.Command(promtool, "check", "rules", "../deploy/prometheus/cgprocfs-rules.yml").CombinedOutput(); err != nil {
		t.Errorf("promtool check rules: %v\n%s", err, out)
	}
	if prom == nil {
		return
	}
	poll(t, 20*time.Second, "prometheus to evaluate both alert rules", func() bool {
		body, err := httpGet(t, "http://"+prom.addr+"/api/v1/rules")
		if err != nil {
			t.Fatal(err)
		}
		var r struct {
			Data struct {
				Groups []struct {
					Rules []struct {
						Name, Health, LastError string
					} `json:"rules"`
				} `json:"groups"`
			} `json:"data"`
		}
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatal(err)
		}
		ok := 0
		for _, g := range r.Data.Groups {
			for _, rule := range g.Rules {
				if rule.Health == "err" {
					t.Fatalf("rule %s fails: %s", rule.Name, rule.LastError)
				}
				if rule.Health == "ok" {
					ok++
				}
			}
		}
		return ok == 2
	})
}

// TestMetricsContainerGoneLeavesNoSeries: once a tracked container's
// cgroup is removed, its series go with the first scrape that reads the
// containers again (at most a second later).
func TestMetricsContainerGoneLeavesNoSeries(t *testing.T) {
	needRoot(t)
	addr := freeLoopback(t)
	d := startDaemon(t, "--metrics-listen", addr)
	cg := newCgroup(t, "gone", nil)
	cg.SetMemoryLimit(t, 100<<20)
	d.run(t, cg, "cat /proc/meminfo >/dev/null")
	l := map[string]string{"cgroup": "/" + cg.Name}
	_, fams := scrape(t, addr)
	if v, ok := sample(fams, "cgprocfs_container_memory_total_bytes", l); !ok || v != 100<<20 {
		t.Fatalf("memory_total_bytes of a read container: %v (%v)", v, ok)
	}
	cg.remove(t)
	var left string
	poll(t, 5*time.Second, "the removed cgroup's series to go", func() bool {
		_, fams = scrape(t, addr)
		left = ""
		for name := range fams {
			if _, ok := sample(fams, name, l); ok {
				left = name
			}
		}
		return left == ""
	})
}

// TestMetricsUnixSocket serves metrics on a Unix socket, and none with an
// empty --metrics-listen.
func TestMetricsUnixSocket(t *testing.T) {
	needRoot(t)
	sock := filepath.Join(t.TempDir(), "metrics.sock")
	startDaemon(t, "--metrics-listen", "unix:"+sock)
	c := http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	resp, err := c.Get("http://cgprocfs/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "cgprocfs_build_info{") {
		t.Errorf("no build info on the socket:\n%s", body)
	}

	off := startDaemon(t, "--metrics-listen", "")
	if strings.Contains(off.logs(), "serving metrics") {
		t.Errorf("--metrics-listen '' still serves metrics: %s", off.logs())
	}
}

// TestShow: `cgprocfs show` prints what a process's container sees, from
// the host, with no daemon running.
func TestShow(t *testing.T) {
	needRoot(t)
	cg := newCgroup(t, "show", nil)
	cg.SetMemoryLimit(t, 200<<20)
	pid := startIn(t, cg)

	show := func(args ...string) (string, string, error) {
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(binary, append([]string{"show"}, args...)...)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return stdout.String(), stderr.String(), err
	}
	out, errOut, err := show("--pid", strconv.Itoa(pid), "proc/meminfo")
	if err != nil || !hasExactLine(out, "MemTotal:         204800 kB") {
		t.Errorf("show --pid of a process in a 200 MiB cgroup: %v %s\n%s", err, errOut, out)
	}
	out, _, err = show("--cgroup", "/"+cg.Name, "/proc/meminfo")
	if err != nil || !hasExactLine(out, "MemTotal:         204800 kB") {
		t.Errorf("show --cgroup of a 200 MiB cgroup: %v\n%s", err, out)
	}
	out, _, err = show("--pid", strconv.Itoa(pid), "--explain", "proc/meminfo", "proc/cpuinfo")
	for _, want := range []string{"==> proc/meminfo <==", "limit: 209715200 B", "MemTotal: 204800 kB = min(host MemTotal", "==> proc/cpuinfo <==", "shown: host CPUs"} {
		if err != nil || !strings.Contains(out, want) {
			t.Errorf("show --explain lacks %q (%v):\n%s", want, err, out)
		}
	}

	// A host process in the root cgroup sees the host's files.
	root := startIn(t, nil)
	out, _, err = show("--pid", strconv.Itoa(root), "proc/cpuinfo", "proc/meminfo")
	hostCPU, _ := os.ReadFile("/proc/cpuinfo")
	hostMem, _ := os.ReadFile("/proc/meminfo")
	shownCPU, _, _ := strings.Cut(strings.TrimPrefix(out, "==> proc/cpuinfo <==\n"), "\n==> proc/meminfo <==")
	if err != nil || withoutMHz(shownCPU) != withoutMHz(string(hostCPU)) {
		t.Errorf("show of a root-cgroup process: cpuinfo is not the host's (%v):\n%.400s", err, out)
	}
	if memTotal := strings.SplitN(string(hostMem), "\n", 2)[0]; !hasExactLine(out, memTotal) {
		t.Errorf("show of a root-cgroup process: no host %q:\n%.400s", memTotal, out)
	}

	// A gone pid: one clear line, exit 1.
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	_, errOut, err = show("--pid", strconv.Itoa(gone.Process.Pid), "proc/meminfo")
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(errOut, fmt.Sprintf("no process %d", gone.Process.Pid)) {
		t.Errorf("show of a gone pid: %v, stderr %q; want exit 1 saying no process", err, errOut)
	}
	if _, errOut, err = show("--pid", strconv.Itoa(pid), "proc/nothing"); err == nil || !strings.Contains(errOut, "not a served file") {
		t.Errorf("show of an unknown file: %v %q", err, errOut)
	}
}

// startIn starts a sleeping process in cg (nil: the root cgroup of every
// hierarchy) and kills it when the test ends.
func startIn(t *testing.T, cg *testCgroup) int {
	t.Helper()
	var procs []string
	if cg != nil {
		procs = cg.procsFiles()
	} else if unified {
		procs = []string{filepath.Join(cgroupRoot, "cgroup.procs")}
	} else {
		for _, c := range v1Controllers {
			procs = append(procs, filepath.Join(cgroupRoot, c, "cgroup.procs"))
		}
	}
	script := ""
	for _, f := range procs {
		script += fmt.Sprintf("echo $$ > %s && ", f)
	}
	cmd := exec.Command("/bin/sh", "-c", script+"exec sleep 600")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	pid := cmd.Process.Pid
	poll(t, 10*time.Second, "the process to join its cgroup and exec sleep", func() bool {
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		return strings.TrimSpace(string(comm)) == "sleep"
	})
	return pid
}

func withoutMHz(s string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(s, "\n") {
		if !strings.HasPrefix(l, "cpu MHz") {
			b.WriteString(l)
		}
	}
	return b.String()
}

// TestStatusReadsThroughTheMount: status reads a served file and says so;
// with the daemon stopped it exits 1.
func TestStatusReadsThroughTheMount(t *testing.T) {
	d := startDaemon(t, "--metrics-listen", "")
	out, err := exec.Command(binary, "status", d.Mountpoint).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "read: ok (proc/meminfo in ") {
		t.Errorf("status of a live daemon: %v\n%s", err, out)
	}
	if err := syscall.Kill(d.serverPid(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(d.serverPid(), syscall.SIGCONT)
	start := time.Now()
	out, err = exec.Command(binary, "status", d.Mountpoint).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "live: no") {
		t.Errorf("status of a stopped daemon: %v\n%s", err, out)
	}
	t.Logf("status of a stopped daemon took %v:\n%s", time.Since(start).Round(time.Millisecond), out)
}

// hasExactLine tells whether s has line as one of its lines.
func hasExactLine(s, line string) bool {
	for _, l := range strings.Split(s, "\n") {
		if l == line {
			return true
		}
	}
	return false
}

// The server runs its Go code on one P unless --gomaxprocs says otherwise
// (mount.go, setMaxProcs): the Go collector's go_sched_gomaxprocs_threads
// tells, from the server behind the holder.
func TestGoMaxProcs(t *testing.T) {
	needRoot(t)
	for _, c := range []struct {
		args []string
		want float64
	}{{nil, 1}, {[]string{"--gomaxprocs", "3"}, 3}} {
		addr := freeLoopback(t)
		startDaemon(t, append([]string{"--metrics-listen", addr}, c.args...)...)
		poll(t, 10*time.Second, "the daemon to serve metrics", func() bool {
			body, err := httpGet(t, "http://"+addr+"/metrics")
			return err == nil && len(body) > 0
		})
		_, fams := scrape(t, addr)
		got, ok := sample(fams, "go_sched_gomaxprocs_threads", nil)
		if !ok || got != c.want {
			t.Errorf("mount %q: go_sched_gomaxprocs_threads %v (found %v), want %v", c.args, got, ok, c.want)
		}
	}
}
