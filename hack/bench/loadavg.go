package main

// The loadavg benchmark: what tracking the load of many containers costs.
// It makes -loadavg-cgroups cgroups, each holding one process with
// -loadavg-threads sleeping threads, has every daemon track all of them (one
// read of proc/loadavg through each mount from inside each cgroup), then
// measures each daemon's CPU time (utime+stime of /proc/<pid>/stat) over
// -loadavg-duration with no reads at all: the sampler's cost alone. The
// daemons run side by side in one run, so the figures share the noise:
// cgprocfs with its default counter (auto: bpf where it loads, else
// threads), with each exact counter named (bpf, threads), on v1 with
// cgroupstats too, and lxcfs -l.

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

var (
	loadavgCgroups  = flag.Int("loadavg-cgroups", 1000, "loadavg: cgroups to track")
	loadavgThreads  = flag.Int("loadavg-threads", 10, "loadavg: sleeping threads in each cgroup")
	loadavgDuration = flag.Duration("loadavg-duration", 60*time.Second, "loadavg: how long to measure the daemons' CPU time")
)

func init() {
	register(benchmark{
		Name:  "loadavg",
		Doc:   "CPU time of tracking the load of many idle cgroups, cgprocfs (each counter) next to lxcfs -l",
		Run:   runLoadavgBench,
		Child: loadavgChild,
	})
}

// clockTicks is USER_HZ, the unit of utime and stime.
const clockTicks = 100

func runLoadavgBench(e *env) error {
	n, threads := *loadavgCgroups, *loadavgThreads
	if n < 1 || threads < 0 {
		return errors.New("-loadavg-cgroups must be at least 1 and -loadavg-threads at least 0")
	}
	var daemons []*daemon
	// The shared daemon runs with the default counter (auto); one more
	// daemon per counter measures each candidate side by side
	// (cgroupstats on v1 only: the kernel serves it for v1 directories).
	d, err := e.startCgprocfs()
	if err != nil {
		return err
	}
	d.name = "cgprocfs (default: auto)"
	daemons = append(daemons, d)
	counters := []string{"bpf", "threads"}
	if !e.unified {
		counters = append(counters, "cgroupstats")
	}
	for _, c := range counters {
		mp := filepath.Join(e.tmp, "cgprocfs-"+c)
		d, err := e.startDaemon("cgprocfs ("+c+")", mp, e.bin, "mount", "--loadavg-counter="+c, mp)
		if err != nil {
			return err
		}
		daemons = append(daemons, d)
	}
	if e.wantLxcfs {
		if p, err := exec.LookPath("lxcfs"); err == nil {
			mp := filepath.Join(e.tmp, "lxcfs-l")
			d, err := e.startDaemon("lxcfs -l", mp, p, "--foreground", "-l", "--pidfile", filepath.Join(e.tmp, "lxcfs-l.pid"), mp)
			if err != nil {
				return err
			}
			daemons = append(daemons, d)
		} else {
			fmt.Println("lxcfs: not installed, left out")
		}
	}
	// cgprocfs --io-uring, where the kernel has it, is read at the scale
	// points beside the shared daemon, and tracks the same containers.
	uring, err := e.startURing()
	if err != nil {
		return err
	}
	var files []string
	for _, d := range daemons {
		files = append(files, filepath.Join(d.mountpoint, "proc", "loadavg"))
	}
	shared := []*daemon{d}
	if uring != nil {
		files = append(files, filepath.Join(uring.mountpoint, "proc", "loadavg"))
		shared = append(shared, uring)
	}
	// Each container also reads the shared daemon's other per-cgroup
	// files once, so that its descriptor caches hold what 1,000 real
	// containers would have them hold.
	for _, sd := range shared {
		for _, f := range []string{"meminfo", "stat", "cpuinfo", "uptime", "diskstats", "vmstat"} {
			files = append(files, filepath.Join(sd.mountpoint, "proc", f))
		}
	}

	fmt.Printf("starting %d cgroups with one process of %d sleeping threads each ...\n", n, threads)
	start := time.Now()
	var holders []*exec.Cmd
	var stdins []io.Closer
	stopHolders := func() {
		for _, w := range stdins {
			w.Close()
		}
		for _, c := range holders {
			c.Process.Kill()
			c.Wait()
		}
		stdins, holders = nil, nil
	}
	defer stopHolders()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	sc, err := newScaleProbe(e, d, uring)
	if err != nil {
		return err
	}
	var sample []byte
	var cgs []*cgroup
	for i := range n {
		cg, err := e.newCgroup(fmt.Sprintf("load-%d", i), 256<<20)
		if err != nil {
			return err
		}
		cgs = append(cgs, cg)
		cmd := exec.Command(self, append([]string{childFlag, "loadavg", strings.Join(cg.procs(), ","), strconv.Itoa(threads)}, files...)...)
		cmd.Stderr = os.Stderr
		cmd.Env = append(os.Environ(), "GOMAXPROCS=1", "GOGC=off")
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		in, err := cmd.StdinPipe()
		if err != nil {
			return err
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			return err
		}
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("starting holder %d: %w", i, err)
		}
		holders, stdins = append(holders, cmd), append(stdins, in)
		// The holder prints what it read through each mount once its
		// threads sleep: from then on every daemon tracks its cgroup.
		line, err := bufio.NewReader(out).ReadString('\n')
		if err != nil {
			return fmt.Errorf("holder %d did not get ready: %w", i, err)
		}
		if i == 0 {
			sample = []byte(line)
		}
		if i+1 == scaleFew && n > scaleFew {
			if err := measureAlone(sc, scaleFew, daemons[1:]); err != nil {
				return err
			}
		}
	}
	fmt.Printf("%d cgroups tracked in %.1f s (first holder read: %s)\n", n, time.Since(start).Seconds(), strings.TrimSpace(string(sample)))
	if err := measureAlone(sc, n, daemons[1:]); err != nil {
		return err
	}
	sc.print()
	tasks, err := countThreads(e, "cgprocfs-test-bench-"+strconv.Itoa(os.Getpid())+"-load-0")
	if err == nil {
		fmt.Printf("threads in each cgroup: %d (%d sleeping ones plus the Go runtime's)\n", tasks, threads)
	}

	// Let one sampling round of each daemon pass before measuring.
	time.Sleep(6 * time.Second)
	before := make([]float64, len(daemons))
	for i, d := range daemons {
		if before[i], err = cpuSeconds(d.cmd.Process.Pid); err != nil {
			return err
		}
	}
	t0 := time.Now()
	fmt.Printf("measuring for %v with no reads ...\n", *loadavgDuration)
	time.Sleep(*loadavgDuration)
	wall := time.Since(t0).Seconds()
	fmt.Printf("\n%-24s %14s %12s %14s\n", "daemon", "CPU s/minute", "% of a core", "µs per cgroup")
	for i, d := range daemons {
		after, err := cpuSeconds(d.cmd.Process.Pid)
		if err != nil {
			return err
		}
		cpu := after - before[i]
		perRound := cpu / (wall / 5) / float64(n) * 1e6
		fmt.Printf("%-24s %14.3f %11.2f%% %14.1f\n", d.name, cpu/wall*60, cpu/wall*100, perRound)
	}
	fmt.Printf("(per cgroup: CPU time per 5 s sampling round / %d cgroups; target: cgprocfs under 1%% of a core)\n", n)

	// The containers go: what the shared daemon keeps for them must go too.
	stopHolders()
	for _, cg := range cgs {
		for _, dir := range cg.dirs {
			removeCgroup(dir)
		}
	}
	sc.gone(len(cgs))
	return nil
}

// countThreads counts the threads in one benchmark cgroup.
func countThreads(e *env, name string) (int, error) {
	file := filepath.Join(cgroupRoot, name, "cgroup.threads")
	if !e.unified {
		file = filepath.Join(cgroupRoot, "memory", name, "tasks")
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	return len(strings.Fields(string(data))), nil
}

// measureAlone takes the scale point with containers cgroups while the
// other daemons, there for the CPU figures, are stopped (SIGSTOP, then
// SIGCONT; nothing reads their mounts meanwhile). Running, each samples
// every cgroup every 5 s, nearly nothing with 10 and a burst of CPU with
// 1,000 (the threads counter 5% of a core, lxcfs -l 2%), which would take
// the 2 CPUs from the shared daemon's reads at one point and not at the
// other: the point is what 1,000 containers cost the shared daemon.
func measureAlone(sc *scaleProbe, containers int, others []*daemon) error {
	var stopped []int
	defer func() {
		for _, pid := range stopped {
			syscall.Kill(pid, syscall.SIGCONT)
		}
	}()
	for _, d := range others {
		for _, pid := range append([]int{d.cmd.Process.Pid}, children(d.cmd.Process.Pid)...) {
			if syscall.Kill(pid, syscall.SIGSTOP) == nil {
				stopped = append(stopped, pid)
			}
		}
	}
	return sc.measure(containers)
}

// cpuSeconds is utime+stime of a daemon: the process pid, all its threads,
// and its children's (cgprocfs's holder is the process started, the server
// that does the work its child).
func cpuSeconds(pid int) (float64, error) {
	return withChildren(pid, processCPUSeconds)
}

// withChildren adds up one figure of pid and of its live children (one that
// cannot be read counts 0: it has just exited).
func withChildren[T int | float64](pid int, of func(int) (T, error)) (T, error) {
	total, err := of(pid)
	if err != nil {
		return 0, err
	}
	for _, c := range children(pid) {
		if v, err := of(c); err == nil {
			total += v
		}
	}
	return total, nil
}

// children lists the live child processes of pid (none when they cannot be
// read).
func children(pid int) []int {
	var out []int
	tasks, _ := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	for _, t := range tasks {
		data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + t.Name() + "/children")
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(data)) {
			if c, err := strconv.Atoi(f); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}

// processCPUSeconds is utime+stime of one process, all its threads.
func processCPUSeconds(pid int) (float64, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed stat of %d", pid)
	}
	f := strings.Fields(string(data[i+1:]))
	// f[0] is field 3; utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("malformed stat of %d", pid)
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	s, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("malformed stat of %d", pid)
	}
	return float64(u+s) / clockTicks, nil
}

// loadavgChild holds the cgroup: args are the thread count and the loadavg
// files to read once. It starts the threads, each locked to its goroutine
// and asleep on a channel, reads the files, prints the first, and waits for
// stdin to close.
func loadavgChild(args []string) error {
	if len(args) < 1 {
		return errors.New("want THREADS FILE...")
	}
	threads, err := strconv.Atoi(args[0])
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	block := make(chan struct{})
	for range threads {
		wg.Add(1)
		go func() {
			runtime.LockOSThread()
			wg.Done()
			<-block
		}()
	}
	wg.Wait()
	var first string
	for i, f := range args[1:] {
		b, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("reading %s: %w", f, err)
		}
		if i == 0 {
			first = strings.TrimSpace(string(b))
		}
	}
	fmt.Println(first)
	io.Copy(io.Discard, os.Stdin)
	close(block)
	return nil
}
