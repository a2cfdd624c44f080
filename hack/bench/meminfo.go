package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The meminfo benchmark: open + read until EOF + close of proc/meminfo in a
// loop, from inside a memory-limited cgroup, by 1 and by 8 parallel readers
// (each on its own OS thread), against cgprocfs, LXCFS and the host's own
// /proc/meminfo. Every cycle's latency is kept.
func init() {
	register(benchmark{
		Name:  "meminfo",
		Doc:   "open+read+close of proc/meminfo from a memory-limited cgroup, 1 and 8 readers",
		Run:   runMeminfo,
		Child: meminfoChild,
	})
}

// Targets of the spec: at least 5x LXCFS's reads/s with one reader, and a
// p99 under 1 ms with 8 readers.
const (
	targetRatio = 5.0
	targetP99   = time.Millisecond
	// benchLimit is the benchmark cgroup's memory limit: far below the
	// host's memory, so the check below tells a container view from the
	// host's.
	benchLimit = 256 << 20
)

var readerCounts = []int{1, 8}

// meminfoTarget is a file to read and whether it must show the cgroup's
// MemTotal.
type meminfoTarget struct {
	Name    string
	Path    string
	Virtual bool
}

type meminfoCheck struct {
	Target     string
	MemTotalKB uint64
	Err        string
}

type meminfoResult struct {
	Checks  []meminfoCheck
	Results []summary
}

func runMeminfo(e *env) error {
	d, err := e.startCgprocfs()
	if err != nil {
		return err
	}
	targets := []meminfoTarget{{Name: "cgprocfs", Path: filepath.Join(d.mountpoint, "proc/meminfo"), Virtual: true}}
	lx, err := e.startLxcfs()
	if err != nil {
		fmt.Printf("warning: lxcfs left out: %v\n", err)
	} else if lx != nil {
		targets = append(targets, meminfoTarget{Name: "lxcfs", Path: filepath.Join(lx.mountpoint, "proc/meminfo"), Virtual: true})
	}
	// The FUSE floor: cgprocfs's own tree (same mount options, direct I/O)
	// serving fixed bytes of meminfo's size from this process, with no work
	// per open. What cgprocfs costs above this row is its own; the row
	// itself is what any FUSE daemon pays in round trips on this machine.
	floor, err := mountFloor(e)
	if err != nil {
		return err
	}
	targets = append(targets,
		meminfoTarget{Name: "FUSE floor", Path: floor},
		meminfoTarget{Name: "host /proc", Path: "/proc/meminfo"})

	cg, err := e.newCgroup("meminfo", benchLimit)
	if err != nil {
		return err
	}
	spec, _ := json.Marshal(targets)
	out, err := e.runChild("meminfo", cg,
		"-duration", (e.duration / time.Duration(e.rounds)).String(),
		"-rounds", strconv.Itoa(e.rounds),
		"-targets", string(spec))
	if err != nil {
		return err
	}
	var res meminfoResult
	if err := json.Unmarshal(out, &res); err != nil {
		return fmt.Errorf("child output: %w", err)
	}

	fmt.Printf("cgroup memory limit %d kB; MemTotal seen from inside:", benchLimit/1024)
	for _, c := range res.Checks {
		if c.Err != "" {
			fmt.Printf(" %s: %s;", c.Target, c.Err)
		} else {
			fmt.Printf(" %s %d kB;", c.Target, c.MemTotalKB)
		}
	}
	fmt.Println()
	for _, c := range res.Checks {
		bad := c.Err != "" || c.MemTotalKB != benchLimit/1024
		if c.Target == "cgprocfs" && bad {
			return fmt.Errorf("cgprocfs does not show the cgroup's MemTotal (%d kB): %+v", benchLimit/1024, c)
		}
		if c.Target == "lxcfs" && bad {
			fmt.Println("warning: lxcfs does not show the cgroup's MemTotal; its figures are not comparable")
		}
	}
	fmt.Println()
	printTable(os.Stdout, res.Results)
	fmt.Println()

	find := func(target string, readers int) (summary, bool) {
		for _, r := range res.Results {
			if r.Target == target && r.Readers == readers {
				return r, true
			}
		}
		return summary{}, false
	}
	met := func(ok bool) string {
		if ok {
			return "met"
		}
		return "NOT met"
	}
	cg1, _ := find("cgprocfs", 1)
	if lx1, ok := find("lxcfs", 1); ok && lx1.PerSecond() > 0 {
		r := cg1.PerSecond() / lx1.PerSecond()
		fmt.Printf("cgprocfs/lxcfs reads/s, 1 reader:  %.1fx  (target >= %.0fx: %s)\n", r, targetRatio, met(r >= targetRatio))
	} else {
		fmt.Println("cgprocfs/lxcfs reads/s, 1 reader:  n/a (no lxcfs)")
	}
	if host1, ok := find("host /proc", 1); ok && host1.PerSecond() > 0 {
		fmt.Printf("cgprocfs/host reads/s, 1 reader:   %.2fx\n", cg1.PerSecond()/host1.PerSecond())
	}
	if fl1, ok := find("FUSE floor", 1); ok && fl1.PerSecond() > 0 {
		fmt.Printf("cgprocfs/FUSE floor reads/s, 1 reader: %.2fx\n", cg1.PerSecond()/fl1.PerSecond())
		if lx1, ok := find("lxcfs", 1); ok && lx1.PerSecond() > 0 {
			fmt.Printf("FUSE floor/lxcfs reads/s, 1 reader:    %.1fx (the most any FUSE daemon could reach here)\n", fl1.PerSecond()/lx1.PerSecond())
		}
	}
	cg8, _ := find("cgprocfs", 8)
	fmt.Printf("cgprocfs p99, 8 readers:           %s  (target < %s: %s)\n", ms(cg8.P99), ms(targetP99), met(cg8.Reads > 0 && cg8.P99 < targetP99))
	if lx8, ok := find("lxcfs", 8); ok {
		fmt.Printf("lxcfs p99, 8 readers:              %s\n", ms(lx8.P99))
	}
	return nil
}

// meminfoChild runs inside the cgroup: a check read of every target, then
// rounds in which every reader count and target take a turn of -duration.
func meminfoChild(args []string) error {
	fl := flag.NewFlagSet("meminfo", flag.ContinueOnError)
	duration := fl.Duration("duration", time.Second, "measuring time per turn")
	rounds := fl.Int("rounds", 3, "rounds")
	spec := fl.String("targets", "", "JSON list of targets")
	if err := fl.Parse(args); err != nil {
		return err
	}
	var targets []meminfoTarget
	if err := json.Unmarshal([]byte(*spec), &targets); err != nil {
		return fmt.Errorf("-targets: %w", err)
	}
	// Readers sit on locked OS threads; let each find a P at once when its
	// syscall returns, as a thread in C would.
	runtime.GOMAXPROCS(max(runtime.NumCPU(), readerCounts[len(readerCounts)-1]+1))

	var res meminfoResult
	for _, t := range targets {
		c := meminfoCheck{Target: t.Name}
		if data, err := os.ReadFile(t.Path); err != nil {
			c.Err = err.Error()
		} else if c.MemTotalKB, err = memTotal(data); err != nil {
			c.Err = err.Error()
		}
		res.Checks = append(res.Checks, c)
	}

	type key struct {
		target  string
		readers int
	}
	lat := map[key][]time.Duration{}
	errs := map[key]int{}
	wall := map[key]time.Duration{}
	// A short warm-up wakes every daemon's threads before anything counts.
	for _, t := range targets {
		if _, _, _, err := readLoop(t.Path, readerCounts[len(readerCounts)-1], 200*time.Millisecond); err != nil {
			return err
		}
	}
	for range *rounds {
		for _, n := range readerCounts {
			for _, t := range targets {
				k := key{t.Name, n}
				l, e, w, err := readLoop(t.Path, n, *duration)
				if err != nil {
					return err
				}
				lat[k] = append(lat[k], l...)
				errs[k] += e
				wall[k] += w
			}
		}
	}
	for _, n := range readerCounts {
		for _, t := range targets {
			k := key{t.Name, n}
			res.Results = append(res.Results, summarize(t.Name, n, lat[k], errs[k], wall[k]))
		}
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

// readLoop runs n readers for d, each on its own OS thread doing
// open+read-until-EOF+close with raw syscalls, and returns every successful
// cycle's latency, the failed cycles, and the wall time. Too many failures
// are an error: the target is broken, not slow.
func readLoop(path string, n int, d time.Duration) ([]time.Duration, int, time.Duration, error) {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		all   []time.Duration
		fails int
		first error
	)
	start := make(chan struct{})
	var deadline time.Time
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			buf := make([]byte, 64<<10)
			lat := make([]time.Duration, 0, 1<<16)
			bad := 0
			var firstErr error
			<-start
			for {
				t0 := time.Now()
				if !t0.Before(deadline) {
					break
				}
				err := readOnce(path, buf)
				if err != nil {
					bad++
					if firstErr == nil {
						firstErr = err
					}
					continue
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			all = append(all, lat...)
			fails += bad
			if first == nil {
				first = firstErr
			}
			mu.Unlock()
		}()
	}
	t0 := time.Now()
	deadline = t0.Add(d)
	close(start)
	wg.Wait()
	wall := time.Since(t0)
	if fails > 0 && fails*100 > len(all) {
		return nil, 0, 0, fmt.Errorf("%s: %d of %d reads failed, first: %v", path, fails, fails+len(all), first)
	}
	return all, fails, wall, nil
}

// readOnce is one open + read until EOF + close.
func readOnce(path string, buf []byte) error {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	total := 0
	for {
		n, err := syscall.Read(fd, buf)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			syscall.Close(fd)
			return err
		}
		if n == 0 {
			break
		}
		total += n
	}
	if err := syscall.Close(fd); err != nil {
		return err
	}
	if total == 0 {
		return errors.New("empty read")
	}
	return nil
}

// memTotal takes MemTotal (kB) out of a meminfo file.
func memTotal(data []byte) (uint64, error) {
	for line := range bytes.SplitSeq(data, []byte{'\n'}) {
		if rest, ok := bytes.CutPrefix(line, []byte("MemTotal:")); ok {
			f := strings.Fields(string(rest))
			if len(f) == 0 {
				break
			}
			return strconv.ParseUint(f[0], 10, 64)
		}
	}
	return 0, errors.New("no MemTotal line")
}
