package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	cgfs "github.com/cgprocfs/cgprocfs/fs"
)

const cgroupRoot = "/sys/fs/cgroup"

// env is what benchmarks share. Daemons start on first use and stay up for
// the whole run; everything made is undone by cleanup, in reverse order.
type env struct {
	bin        string
	duration   time.Duration
	rounds     int
	wantLxcfs  bool
	cpuprofile string
	// files are what the files benchmark reads (-files).
	files   []servedFile
	unified bool
	tmp     string

	mu       sync.Mutex
	cleanups []func()
	cleaned  bool

	cgprocfs *daemon
	// baselineBin, when set, is a second cgprocfs binary measured beside
	// the first (an earlier build, to show a change is no slower).
	baselineBin string
	baseline    *daemon
	// wantURing adds cgprocfs --io-uring to the files benchmark where
	// the kernel has FUSE over io_uring (off with -no-io-uring).
	wantURing bool
	uring     *daemon
	lxcfs     *daemon
	// goFloors adds the Go floors to the files benchmark (off with
	// -no-go-floors).
	goFloors bool
	lxcfsErr error
	lxcfsSet bool
}

// daemon is a FUSE daemon serving a mount point.
type daemon struct {
	name       string
	mountpoint string
	cmd        *exec.Cmd
	log        *syncWriter // its stdout and stderr
	exited     chan struct{}
}

func newEnv(bin string, duration time.Duration, rounds int, wantLxcfs bool, cpuprofile string) (*env, error) {
	abs, err := filepath.Abs(bin)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("cgprocfs binary: %w (run make build)", err)
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return nil, fmt.Errorf("/dev/fuse: %w", err)
	}
	e := &env{bin: abs, duration: duration, rounds: rounds, wantLxcfs: wantLxcfs, cpuprofile: cpuprofile}
	// Layout check, as cgprocfs itself does it: a v2 tree has
	// cgroup.controllers at its root, v1 has a directory per controller.
	if _, err := os.Stat(filepath.Join(cgroupRoot, "cgroup.controllers")); err == nil {
		e.unified = true
	} else if _, err := os.Stat(filepath.Join(cgroupRoot, "memory", "memory.limit_in_bytes")); err != nil {
		return nil, fmt.Errorf("no cgroup v2 tree nor v1 memory controller at %s", cgroupRoot)
	}
	e.tmp, err = os.MkdirTemp("", "cgprocfs-bench-")
	if err != nil {
		return nil, err
	}
	// FUSE mounts here are allow_other; let every user reach them.
	if err := os.Chmod(e.tmp, 0o755); err != nil {
		return nil, err
	}
	e.defer_(func() { os.RemoveAll(e.tmp) })
	return e, nil
}

// defer_ registers an undo step for cleanup.
func (e *env) defer_(f func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cleanups = append(e.cleanups, f)
}

// cleanup undoes everything, once, newest first; safe from a signal
// handler goroutine.
func (e *env) cleanup() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cleaned {
		return
	}
	e.cleaned = true
	for i := len(e.cleanups) - 1; i >= 0; i-- {
		e.cleanups[i]()
	}
}

func (e *env) printHeader() {
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	mode := "v1"
	if e.unified {
		mode = "v2"
	}
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("cgprocfs bench: kernel %s, %d CPUs, cgroup %s, load %s\n",
		strings.TrimSpace(string(kernel)), runtime.NumCPU(), mode, strings.Join(strings.Fields(string(load))[:3], " "))
	fmt.Printf("cgprocfs: %s (%s)\n", e.bin, e.version(e.bin, "version"))
	if e.wantLxcfs {
		if p, err := exec.LookPath("lxcfs"); err == nil {
			fmt.Printf("lxcfs: %s (%s)\n", p, e.version(p, "--version"))
		} else {
			fmt.Println("lxcfs: not installed, left out (hack/deps.sh bench installs it)")
		}
	} else {
		fmt.Println("lxcfs: left out (-no-lxcfs)")
	}
	fmt.Printf("each figure: %v of measuring in %d rounds, targets taking turns\n", e.duration, e.rounds)
}

func (e *env) version(bin, arg string) string {
	out, err := exec.Command(bin, arg).CombinedOutput()
	if err != nil {
		return "version unknown"
	}
	return strings.TrimSpace(string(out))
}

// startCgprocfs starts the daemon under test once, on a temporary mount
// point, and waits until it serves proc/meminfo.
func (e *env) startCgprocfs() (*daemon, error) {
	if e.cgprocfs != nil {
		return e.cgprocfs, nil
	}
	mp := filepath.Join(e.tmp, "cgprocfs")
	args := []string{"mount"}
	if e.cpuprofile != "" {
		p, err := filepath.Abs(e.cpuprofile)
		if err != nil {
			return nil, err
		}
		args = append(args, "--cpuprofile", p)
	}
	d, err := e.startDaemon("cgprocfs", mp, e.bin, append(args, mp)...)
	if err != nil {
		return nil, err
	}
	e.cgprocfs = d
	return d, nil
}

// startBaseline starts the baseline cgprocfs once on its own temporary
// mount point; nil, nil when no baseline was asked for.
func (e *env) startBaseline() (*daemon, error) {
	if e.baselineBin == "" || e.baseline != nil {
		return e.baseline, nil
	}
	mp := filepath.Join(e.tmp, "baseline")
	d, err := e.startDaemon("baseline", mp, e.baselineBin, "mount", mp)
	if err != nil {
		return nil, err
	}
	e.baseline = d
	return d, nil
}

// startURing starts cgprocfs --io-uring once on its own temporary mount
// point, where the kernel has FUSE over io_uring; nil, nil when it is not
// wanted or the kernel lacks it. The daemon turns the fuse module's switch
// on; cleanup puts it back as it was.
func (e *env) startURing() (*daemon, error) {
	if !e.wantURing || e.uring != nil {
		return e.uring, nil
	}
	was, err := os.ReadFile(cgfs.FuseURingParam)
	if err != nil {
		fmt.Printf("io_uring: left out, this kernel has no FUSE over io_uring (%v)\n", err)
		return nil, nil
	}
	e.defer_(func() {
		if err := cgfs.RestoreIOUringSwitch(cgfs.FuseURingParam, was); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		}
	})
	mp := filepath.Join(e.tmp, "io_uring")
	d, err := e.startDaemon("io_uring", mp, e.bin, "mount", "--io-uring", "--holder=false", mp)
	if err != nil {
		return nil, err
	}
	// The daemon says how it serves once its queues are registered,
	// which can be after the mount answered the first read (through
	// /dev/fuse until then).
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(d.log.String(), "serving over FUSE io_uring") {
		if l := d.log.String(); strings.Contains(l, "/dev/fuse") || time.Now().After(deadline) {
			fmt.Printf("io_uring: left out, the daemon serves through /dev/fuse: %s\n", l)
			d.stop()
			return nil, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.uring = d
	return d, nil
}

// startLxcfs starts Debian's lxcfs once in the foreground on its own
// temporary mount point, with its own pid file so that a system lxcfs
// keeps running undisturbed. It returns nil, nil when lxcfs is not wanted
// or not installed.
func (e *env) startLxcfs() (*daemon, error) {
	if e.lxcfsSet {
		return e.lxcfs, e.lxcfsErr
	}
	e.lxcfsSet = true
	if !e.wantLxcfs {
		return nil, nil
	}
	p, err := exec.LookPath("lxcfs")
	if err != nil {
		return nil, nil
	}
	mp := filepath.Join(e.tmp, "lxcfs")
	e.lxcfs, e.lxcfsErr = e.startDaemon("lxcfs", mp, p, "--foreground", "--pidfile", filepath.Join(e.tmp, "lxcfs.pid"), mp)
	return e.lxcfs, e.lxcfsErr
}

func (e *env) startDaemon(name, mp, bin string, args ...string) (*daemon, error) {
	return e.startDaemonReady(name, mp, filepath.Join("proc", "meminfo"), bin, args...)
}

// startDaemonReady starts a daemon and waits until it serves ready, a path
// under its mount point mp.
func (e *env) startDaemonReady(name, mp, ready, bin string, args ...string) (*daemon, error) {
	if err := os.MkdirAll(mp, 0o755); err != nil {
		return nil, err
	}
	w := &syncWriter{w: &bytes.Buffer{}}
	d := &daemon{name: name, mountpoint: mp, log: w, exited: make(chan struct{})}
	d.cmd = exec.Command(bin, args...)
	d.cmd.Stdout, d.cmd.Stderr = w, w
	// If the bench dies without cleaning up, the daemon still unmounts.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := d.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	go func() { d.cmd.Wait(); close(d.exited) }()
	e.defer_(func() { d.stop() })
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := os.ReadFile(filepath.Join(mp, ready)); err == nil && isMounted(mp) {
			return d, nil
		}
		select {
		case <-d.exited:
			return nil, fmt.Errorf("%s exited before serving %s: %s", name, mp, w.String())
		default:
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s did not serve %s within 15 s: %s", name, mp, w.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop ends the daemon with SIGTERM (SIGKILL after 5 s) and makes sure its
// mount is gone.
func (d *daemon) stop() {
	select {
	case <-d.exited:
	default:
		d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.exited:
		case <-time.After(5 * time.Second):
			fmt.Fprintf(os.Stderr, "bench: %s ignored SIGTERM for 5 s, killing it\n", d.name)
			d.cmd.Process.Kill()
			<-d.exited
		}
	}
	if isMounted(d.mountpoint) {
		if err := syscall.Unmount(d.mountpoint, syscall.MNT_DETACH); err != nil {
			fmt.Fprintf(os.Stderr, "bench: unmounting %s: %v\n", d.mountpoint, err)
		}
	}
}

// isMounted tells whether mp is a mount point, from mountinfo.
func isMounted(mp string) bool {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if fields := strings.Fields(s.Text()); len(fields) > 4 && fields[4] == mp {
			return true
		}
	}
	return false
}

// cgroup is a benchmark cgroup: one directory on v2, the memory and cpu
// controllers' directories on v1.
type cgroup struct {
	unified bool
	dirs    map[string]string // controller -> directory
}

// newCgroup creates cgroup cgprocfs-test-bench-<pid>-<name> with a memory
// limit of limit bytes, removed by cleanup.
func (e *env) newCgroup(name string, limit int64) (*cgroup, error) {
	base := fmt.Sprintf("cgprocfs-test-bench-%d-%s", os.Getpid(), name)
	cg := &cgroup{unified: e.unified, dirs: map[string]string{}}
	if e.unified {
		cg.dirs[""] = filepath.Join(cgroupRoot, base)
	} else {
		// Co-mounted controllers ("cpu,cpuacct" plus symlinks) share
		// one directory.
		seen := map[string]bool{}
		for _, c := range []string{"memory", "cpu", "cpuacct", "cpuset", "blkio"} {
			real, err := filepath.EvalSymlinks(filepath.Join(cgroupRoot, c))
			if err != nil || seen[real] {
				continue
			}
			seen[real] = true
			cg.dirs[c] = filepath.Join(real, base)
		}
	}
	for c, d := range cg.dirs {
		if err := os.Mkdir(d, 0o755); err != nil {
			return nil, fmt.Errorf("creating cgroup: %w", err)
		}
		e.defer_(func() { removeCgroup(d) })
		if c == "cpuset" {
			// A v1 cpuset cgroup starts with no CPUs and no memory nodes.
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				v, err := os.ReadFile(filepath.Join(filepath.Dir(d), f))
				if err == nil {
					err = os.WriteFile(filepath.Join(d, f), v, 0)
				}
				if err != nil {
					return nil, fmt.Errorf("cgroup %s: %w", f, err)
				}
			}
		}
	}
	file := filepath.Join(cg.dirs["memory"], "memory.limit_in_bytes")
	if e.unified {
		file = filepath.Join(cg.dirs[""], "memory.max")
	}
	if err := os.WriteFile(file, []byte(strconv.FormatInt(limit, 10)), 0); err != nil {
		return nil, fmt.Errorf("setting memory limit: %w", err)
	}
	return cg, nil
}

// limitCPU sets a CFS quota of quota µs per period µs.
func (cg *cgroup) limitCPU(quota, period int) error {
	if cg.unified {
		f := filepath.Join(cg.dirs[""], "cpu.max")
		if err := os.WriteFile(f, []byte(fmt.Sprintf("%d %d", quota, period)), 0); err != nil {
			return fmt.Errorf("setting the CPU quota (is the cpu controller in the root's cgroup.subtree_control?): %w", err)
		}
		return nil
	}
	dir, ok := cg.dirs["cpu"]
	if !ok {
		return errors.New("setting the CPU quota: no v1 cpu controller")
	}
	// The period first, so that the quota is never checked against
	// another one.
	for _, kv := range [][2]string{{"cpu.cfs_period_us", strconv.Itoa(period)}, {"cpu.cfs_quota_us", strconv.Itoa(quota)}} {
		if err := os.WriteFile(filepath.Join(dir, kv[0]), []byte(kv[1]), 0); err != nil {
			return fmt.Errorf("setting the CPU quota: %s: %w", kv[0], err)
		}
	}
	return nil
}

// allowDiskIO readies the cgroup to count I/O of its own on disk (a name in
// /sys/block) and returns a file path in dir for a reader in the cgroup to do
// that I/O on, or "" when dir is not on that disk. On v1 the throttle
// counters that cgprocfs reads count only where a rule is set, so it sets a
// read limit no disk reaches (1 TiB/s).
func (cg *cgroup) allowDiskIO(disk, dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join("/sys/block", disk, "dev"))
	if err != nil {
		return "", fmt.Errorf("disk %s: %w", disk, err)
	}
	majMin := strings.TrimSpace(string(b))
	if d, ok := cg.dirs["blkio"]; ok && !cg.unified {
		f := filepath.Join(d, "blkio.throttle.read_bps_device")
		if err := os.WriteFile(f, []byte(majMin+" 1099511627776"), 0); err != nil {
			return "", fmt.Errorf("setting a throttle rule on %s: %w", disk, err)
		}
	}
	// The directory's filesystem device is the disk or one of its
	// partitions, whose sysfs directory sits in the disk's.
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return "", fmt.Errorf("stat %s: %w", dir, err)
	}
	sys, err := filepath.EvalSymlinks(fmt.Sprintf("/sys/dev/block/%d:%d", unix.Major(st.Dev), unix.Minor(st.Dev)))
	if err != nil || (filepath.Base(sys) != disk && filepath.Base(filepath.Dir(sys)) != disk) {
		return "", nil
	}
	return filepath.Join(dir, "direct-io"), nil
}

// startSleepers starts n sleep processes and moves them into cg; cleanup
// (or the bench's death) ends them.
func (e *env) startSleepers(cg *cgroup, n int) error {
	for range n {
		cmd := exec.Command("sleep", "infinity")
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("starting a sleeping process: %w", err)
		}
		e.defer_(func() { cmd.Process.Kill(); cmd.Wait() })
		for _, f := range cg.procs() {
			if err := os.WriteFile(f, []byte(strconv.Itoa(cmd.Process.Pid)), 0); err != nil {
				return fmt.Errorf("moving a sleeping process into %s: %w", f, err)
			}
		}
	}
	return nil
}

// procs is the cgroup.procs files a process joins the cgroup through.
func (cg *cgroup) procs() []string {
	var fs []string
	for _, d := range cg.dirs {
		fs = append(fs, filepath.Join(d, "cgroup.procs"))
	}
	return fs
}

// removeCgroup removes a cgroup directory once its processes are gone.
func removeCgroup(dir string) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := syscall.Rmdir(dir)
		if err == nil || errors.Is(err, syscall.ENOENT) {
			return
		}
		if time.Now().After(deadline) {
			fmt.Fprintf(os.Stderr, "bench: removing cgroup %s: %v\n", dir, err)
			return
		}
		// Kill what is left (a child of an interrupted run), then retry.
		if procs, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs")); len(procs) > 0 {
			for _, f := range strings.Fields(string(procs)) {
				if pid, err := strconv.Atoi(f); err == nil {
					syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// runChild re-executes this binary as benchmark name's Child inside cg and
// returns its stdout. The child dies with the bench.
func (e *env) runChild(name string, cg *cgroup, args ...string) ([]byte, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, append([]string{childFlag, name, strings.Join(cg.procs(), ",")}, args...)...)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("child %s: %w", name, err)
	}
	return stdout.Bytes(), nil
}

// runRounds runs benchmark name's Child in cg for the run's duration in its
// rounds (args come first: a subcommand, then flags) and decodes the JSON
// results it prints into res.
func (e *env) runRounds(res any, name string, cg *cgroup, args ...string) error {
	out, err := e.runChild(name, cg, append(args,
		"-duration", (e.duration/time.Duration(e.rounds)).String(),
		"-rounds", strconv.Itoa(e.rounds))...)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(out, res); err != nil {
		return fmt.Errorf("%s child output: %w", name, err)
	}
	return nil
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.String()
}
