package main

// The threads benchmark: whether a read of proc/stat or proc/loadavg costs
// more in a container with many threads. One child in a limited cgroup
// reads both files (1 reader, through cgprocfs and lxcfs) while a helper
// process beside it holds 10 sleeping threads and then 1,000, taking turns
// over the rounds,
// so that the two thread counts share the noise. Nothing cgprocfs does per
// read may scale with the container's threads.

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"text/tabwriter"
	"time"
)

var threadCounts = []int{10, 1000}

func init() {
	register(benchmark{
		Name:  "threads",
		Doc:   "reads/s of proc/stat and proc/loadavg (1 reader) from a cgroup of 10 threads and of 1,000",
		Run:   runThreadsBench,
		Child: threadsChild,
	})
}

// threadsResult is one file and target at one thread count.
type threadsResult struct {
	File, Target string
	// Threads is the cgroup's thread count as measured (the Go
	// runtime's own included).
	Threads int
	summary
}

func runThreadsBench(e *env) error {
	d, err := e.startCgprocfs()
	if err != nil {
		return err
	}
	var targets []fileTarget
	for _, f := range []string{"stat", "loadavg"} {
		targets = append(targets, fileTarget{Name: f + " " + targetCgprocfs, Path: filepath.Join(d.mountpoint, "proc", f)})
	}
	uring, err := e.startURing()
	if err != nil {
		return err
	}
	if uring != nil {
		for _, f := range []string{"stat", "loadavg"} {
			targets = append(targets, fileTarget{Name: f + " " + targetURing, Path: filepath.Join(uring.mountpoint, "proc", f)})
		}
	}
	if lx, err := e.startLxcfs(); err == nil && lx != nil {
		for _, f := range []string{"stat", "loadavg"} {
			targets = append(targets, fileTarget{Name: f + " " + targetLxcfs, Path: filepath.Join(lx.mountpoint, "proc", f)})
		}
	}
	cg, err := e.newCgroup("threads", benchLimit)
	if err != nil {
		return err
	}
	if err := cg.limitCPU(benchQuotaUs, benchPeriodUs); err != nil {
		return err
	}
	spec, err := json.Marshal(targets)
	if err != nil {
		return err
	}
	var res []threadsResult
	if err := e.runRounds(&res, "threads", cg, "-targets", string(spec)); err != nil {
		return err
	}
	get := func(target string, i int) threadsResult {
		for _, r := range res {
			if r.Target == target && r.Threads >= threadCounts[i] && (i+1 == len(threadCounts) || r.Threads < threadCounts[i+1]) {
				return r
			}
		}
		return threadsResult{}
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "file, target\tthreads\treads/s\tp50\tthreads\treads/s\tp50\treads/s 1,000 / 10\t")
	for _, t := range targets {
		a, b := get(t.Name, 0), get(t.Name, 1)
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.3f\t%d\t%.0f\t%.3f\t%s\t\n", t.Name, a.Threads, a.PerSecond(), msf(a.P50), b.Threads, b.PerSecond(), msf(b.P50), ratio(b.PerSecond(), a.PerSecond()))
	}
	tw.Flush()
	fmt.Println("(threads: the cgroup's, a helper's sleeping ones plus the reading process's; p50 in ms; target: cgprocfs's 1,000 / 10 at about 1x)")
	return nil
}

// threadsChild holds sleeping threads in its cgroup and reads each target
// with one reader at every thread count, -rounds times over.
func threadsChild(args []string) error {
	fl := flag.NewFlagSet("threads", flag.ContinueOnError)
	duration := fl.Duration("duration", time.Second, "measuring time per turn")
	rounds := fl.Int("rounds", 3, "rounds")
	spec := fl.String("targets", "", "JSON list of targets")
	if err := fl.Parse(args); err != nil {
		return err
	}
	var targets []fileTarget
	if err := json.Unmarshal([]byte(*spec), &targets); err != nil {
		return fmt.Errorf("-targets: %w", err)
	}
	runtime.GOMAXPROCS(max(runtime.NumCPU(), 2))
	// The sleeping threads live in a helper process in the same cgroup,
	// as another process's threads in a container where top reads: a
	// reading thread in a process of 1,000 threads costs the kernel more
	// per FUSE round trip (the Go raw floor showed 55 against 75 µs per
	// cycle), which is no cost of the container's thread count.
	var holder *threadHolder
	defer func() { holder.stop() }()
	setThreads := func(want int) (int, error) {
		holder.stop()
		holder = nil
		var err error
		if holder, err = holdThreads(want); err != nil {
			return 0, err
		}
		own, err := taskCount(os.Getpid())
		if err != nil {
			return 0, err
		}
		return want + own, nil
	}
	type key struct {
		target  string
		threads int
	}
	accs := map[key]*loopResult{}
	seen := map[key]int{}
	for _, t := range targets {
		readLoop(t.Path, 1, 100*time.Millisecond)
	}
	for range *rounds {
		for _, want := range threadCounts {
			n, err := setThreads(want)
			if err != nil {
				return err
			}
			for _, t := range targets {
				k := key{t.Name, want}
				if accs[k] == nil {
					accs[k] = &loopResult{}
				}
				accs[k].add(readLoop(t.Path, 1, *duration))
				seen[k] = n
			}
		}
	}
	var res []threadsResult
	for _, t := range targets {
		for _, want := range threadCounts {
			k := key{t.Name, want}
			a := accs[k]
			if a == nil {
				return errors.New("a turn was not measured")
			}
			res = append(res, threadsResult{File: t.Name, Target: t.Name, Threads: seen[k], summary: summarize(t.Name, 1, a.lat, a.fails, a.wall)})
		}
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

// taskCount is process pid's thread count.
func taskCount(pid int) (int, error) { return procEntries(pid, "task") }

// holdThreadsFlag makes this binary a helper holding N sleeping threads
// until its standard input closes: "-hold-threads N".
const holdThreadsFlag = "-hold-threads"

// threadHolder is a running helper.
type threadHolder struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
}

// holdThreads starts a helper (in this process's cgroup) holding n
// sleeping threads, and waits until they all exist; nil for n 0.
func holdThreads(n int) (*threadHolder, error) {
	if n == 0 {
		return nil, nil
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, holdThreadsFlag, strconv.Itoa(n))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	h := &threadHolder{cmd: cmd, stdin: stdin}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := taskCount(cmd.Process.Pid)
		if err == nil && got >= n {
			return h, nil
		}
		if time.Now().After(deadline) {
			h.stop()
			return nil, fmt.Errorf("the thread holder has %d threads after 10 s, want %d: %v", got, n, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// stop ends the helper; nil does nothing.
func (h *threadHolder) stop() {
	if h == nil {
		return
	}
	h.stdin.Close()
	if h.cmd.Wait() != nil {
		h.cmd.Process.Kill()
	}
}

// holdThreadsMain is the helper: n goroutines each locked to its own
// thread, blocked until standard input closes.
func holdThreadsMain(args []string) int {
	n, err := strconv.Atoi(args[0])
	if err != nil || n < 0 {
		fmt.Fprintln(os.Stderr, "bench -hold-threads: want a count")
		return 2
	}
	done := make(chan struct{})
	for range n {
		go func() {
			runtime.LockOSThread()
			<-done
		}()
	}
	io.Copy(io.Discard, os.Stdin)
	close(done)
	return 0
}
