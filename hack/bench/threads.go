package main

// The threads benchmark: whether a read of proc/stat or proc/loadavg costs
// more in a container with many threads. One child in a limited cgroup
// reads both files (1 reader, through cgprocfs and lxcfs) while it holds 10
// sleeping threads of its own and then 1,000, taking turns over the rounds,
// so that the two thread counts share the noise. Nothing cgprocfs does per
// read may scale with the container's threads.

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
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
	fmt.Println("(threads: the cgroup's, the Go runtime's own included; p50 in ms; target: cgprocfs's 1,000 / 10 at about 1x)")
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
	// Each sleeper is a goroutine locked to its thread; closing its
	// channel lets it return still locked, which ends the thread.
	var sleepers []chan struct{}
	setThreads := func(want int) (int, error) {
		for len(sleepers) < want {
			c := make(chan struct{})
			ready := make(chan struct{})
			go func() {
				runtime.LockOSThread()
				close(ready)
				<-c
			}()
			<-ready
			sleepers = append(sleepers, c)
		}
		for len(sleepers) > want {
			close(sleepers[len(sleepers)-1])
			sleepers = sleepers[:len(sleepers)-1]
		}
		// Wait until the ended threads are gone.
		deadline := time.Now().Add(10 * time.Second)
		for {
			n, err := taskCount()
			if err != nil {
				return 0, err
			}
			if n >= want && n < want+runtime.NumCPU()+16 || time.Now().After(deadline) {
				return n, nil
			}
			time.Sleep(5 * time.Millisecond)
		}
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
	setThreads(0)
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

// taskCount is this process's thread count.
func taskCount() (int, error) {
	entries, err := os.ReadDir("/proc/self/task")
	return len(entries), err
}
