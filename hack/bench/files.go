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
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The files benchmark: open + read until EOF + close of every file cgprocfs
// serves, in a loop, by 1 and by 8 parallel readers (each on its own OS
// thread), against cgprocfs, LXCFS, a FUSE floor and the host's own file.
// The readers run inside a cgroup set up as a small container would be (a
// memory limit, half a CPU of quota, sleeping processes, some I/O of its
// own), so that the container paths run as a user's reads run them: the
// thread scans behind stat, the quota behind the CPU count, the per-disk
// counters behind diskstats. Every cycle's latency is kept.
func init() {
	register(benchmark{
		Name:  "files",
		Doc:   "open+read+close of every served file from a limited cgroup, 1 and 8 readers",
		Run:   runFiles,
		Child: filesChild,
	})
}

const (
	// benchLimit is the benchmark cgroup's memory limit: far below the
	// host's memory, so the check below tells a container view from the
	// host's.
	benchLimit = 300 << 20
	// Half a CPU of CFS quota, which cgprocfs shows as one CPU: the
	// readers are throttled as a small container's would be.
	benchQuotaUs  = 50000
	benchPeriodUs = 100000
	// benchSleepers idle processes give the thread scans (stat's
	// procs_running, loadavg's TOTAL) something to walk.
	benchSleepers = 10
)

// Target names, in the order each file's targets take their turns.
const (
	targetCgprocfs = "cgprocfs"
	targetBaseline = "baseline"
	targetURing    = "io_uring"
	targetLxcfs    = "lxcfs"
	targetFloor    = "C floor"
	targetGoRaw    = "Go raw"
	targetGoTree   = "Go tree"
	targetHost     = "host"
)

var readerCounts = []int{1, 8}

// servedFile is one file cgprocfs serves.
type servedFile struct {
	// Name is what -files takes.
	Name string
	// Path is the file under a daemon's mount point and, from /, the
	// host's own; DISK stands for the benchmarked disk.
	Path string
	// Lxcfs tells whether lxcfs serves it, at the same path.
	Lxcfs bool
}

// servedFiles lists every file, in the order they are measured.
func servedFiles() []servedFile {
	return []servedFile{
		{Name: "meminfo", Path: "proc/meminfo", Lxcfs: true},
		{Name: "swaps", Path: "proc/swaps", Lxcfs: true},
		{Name: "cpuinfo", Path: "proc/cpuinfo", Lxcfs: true},
		{Name: "stat", Path: "proc/stat", Lxcfs: true},
		{Name: "loadavg", Path: "proc/loadavg", Lxcfs: true},
		{Name: "uptime", Path: "proc/uptime", Lxcfs: true},
		{Name: "diskstats", Path: "proc/diskstats", Lxcfs: true},
		{Name: "cpu-online", Path: "sys/devices/system/cpu/online", Lxcfs: true},
		// A file below cpuN: its walk looks cpu0 up as the caller.
		{Name: "cpu-siblings", Path: "sys/devices/system/cpu/cpu0/topology/thread_siblings_list", Lxcfs: true},
		{Name: "block-stat", Path: "sys/block/DISK/stat"},
	}
}

// fileNames is the -files choices, for usage and errors.
func fileNames() string {
	var names []string
	for _, f := range servedFiles() {
		names = append(names, f.Name)
	}
	return strings.Join(names, ", ")
}

// pickFiles parses -files: comma-separated names, measured in servedFiles'
// order; empty means all.
func pickFiles(list string) ([]servedFile, error) {
	all := servedFiles()
	if list == "" {
		return all, nil
	}
	want := map[string]bool{}
	for _, n := range strings.Split(list, ",") {
		n = strings.TrimSpace(n)
		if !slices.ContainsFunc(all, func(f servedFile) bool { return f.Name == n }) {
			return nil, fmt.Errorf("no file %q (have %s)", n, fileNames())
		}
		want[n] = true
	}
	return slices.DeleteFunc(all, func(f servedFile) bool { return !want[f.Name] }), nil
}

// fileSpec is one file as the child reads it: where each target serves it.
type fileSpec struct {
	Name    string
	Path    string // under a mount point
	Targets []fileTarget
}

type fileTarget struct {
	Name string
	Path string
	// Pid is the daemon serving it, whose CPU time the turns add up; 0
	// for none (the host) or this bench itself (the Go floor).
	Pid int
}

// checkRead is one target's file as read once from inside the cgroup.
type checkRead struct {
	File    string
	Target  string
	Content []byte
	Err     string
}

// fileResult is one file's summary for one target and reader count.
type fileResult struct {
	File string
	summary
	// FirstErr is the first failed cycle's error, if any failed.
	FirstErr string
	// CPU is the serving daemon's CPU time (utime+stime) over the turns,
	// in seconds; 0 when the target has no daemon of its own.
	CPU float64
}

func runFiles(e *env) error {
	d, err := e.startCgprocfs()
	if err != nil {
		return err
	}
	lx, err := e.startLxcfs()
	if err != nil {
		fmt.Printf("warning: lxcfs left out: %v\n", err)
		lx = nil
	}
	base, err := e.startBaseline()
	if err != nil {
		return err
	}
	uring, err := e.startURing()
	if err != nil {
		return err
	}
	disk := ""
	if slices.ContainsFunc(e.files, func(f servedFile) bool { return strings.Contains(f.Path, "DISK") || f.Name == "diskstats" }) {
		if disk, err = pickDisk(d.mountpoint); err != nil {
			return err
		}
	}
	specs := make([]fileSpec, 0, len(e.files))
	for _, f := range e.files {
		rel := strings.ReplaceAll(f.Path, "DISK", disk)
		s := fileSpec{Name: f.Name, Path: rel}
		s.Targets = append(s.Targets, fileTarget{targetCgprocfs, filepath.Join(d.mountpoint, rel), d.cmd.Process.Pid})
		if base != nil {
			s.Targets = append(s.Targets, fileTarget{targetBaseline, filepath.Join(base.mountpoint, rel), base.cmd.Process.Pid})
		}
		if uring != nil {
			s.Targets = append(s.Targets, fileTarget{targetURing, filepath.Join(uring.mountpoint, rel), uring.cmd.Process.Pid})
		}
		if lx != nil && f.Lxcfs {
			s.Targets = append(s.Targets, fileTarget{targetLxcfs, filepath.Join(lx.mountpoint, rel), lx.cmd.Process.Pid})
		}
		s.Targets = append(s.Targets, fileTarget{targetHost, "/" + rel, 0})
		specs = append(specs, s)
	}

	cg, err := e.newCgroup("files", benchLimit)
	if err != nil {
		return err
	}
	if err := cg.limitCPU(benchQuotaUs, benchPeriodUs); err != nil {
		return err
	}
	dev := ""
	if disk != "" {
		if dev, err = cg.allowDiskIO(disk, e.tmp); err != nil {
			return err
		}
	}
	if err := e.startSleepers(cg, benchSleepers); err != nil {
		return err
	}
	fmt.Printf("benchmark cgroup: memory limit %d kB, CPU quota %d of %d µs, %d sleeping processes",
		benchLimit/1024, benchQuotaUs, benchPeriodUs, benchSleepers)
	switch {
	case dev != "":
		fmt.Printf(", 1 MiB written and read on %s with direct I/O", disk)
	case disk != "":
		fmt.Printf(", no I/O of its own (%s is not on %s), so diskstats may be empty", e.tmp, disk)
	}
	fmt.Println()

	// A first read of each file from inside the cgroup checks that the
	// daemons answer for it, and gives the floor its content.
	spec, err := json.Marshal(specs)
	if err != nil {
		return err
	}
	out, err := e.runChild("files", cg, "check", "-io", dev, "-specs", string(spec))
	if err != nil {
		return err
	}
	var checks []checkRead
	if err := json.Unmarshal(out, &checks); err != nil {
		return fmt.Errorf("check child output: %w", err)
	}
	read := map[[2]string]checkRead{}
	for _, c := range checks {
		read[[2]string{c.File, c.Target}] = c
	}
	if err := reportChecks(specs, read); err != nil {
		return err
	}
	// A target that failed its check read is left out of that file.
	for i := range specs {
		specs[i].Targets = slices.DeleteFunc(specs[i].Targets, func(t fileTarget) bool {
			return read[[2]string{specs[i].Name, t.Name}].Err != ""
		})
	}

	// The floors serve, with no work per open, the bytes cgprocfs gave
	// the check, each from a process of its own. The C floor
	// (floor/floor.c, libfuse's low-level API) is what any FUSE daemon
	// pays in round trips here; the Go raw floor (go-fuse's raw API) what
	// any daemon on go-fuse pays; the Go tree floor (cgprocfs's own tree)
	// what cgprocfs's serving path adds before any content is built
	// (gofloor.go).
	var contents [][]byte
	var paths []string
	for _, s := range specs {
		contents = append(contents, read[[2]string{s.Name, targetCgprocfs}].Content)
		paths = append(paths, s.Path)
	}
	cfloor, err := startCFloor(e, "cfloor", contents)
	if err != nil {
		return err
	}
	var goraw, gotree *daemon
	if e.goFloors {
		if goraw, err = startGoFloor(e, "goraw", floorRaw, paths, contents); err != nil {
			return err
		}
		if gotree, err = startGoFloor(e, "gotree", floorTree, paths, contents); err != nil {
			return err
		}
	}
	for i, s := range specs {
		at := slices.IndexFunc(s.Targets, func(t fileTarget) bool { return t.Name == targetHost })
		floors := []fileTarget{{targetFloor, filepath.Join(cfloor.mountpoint, strconv.Itoa(i)), cfloor.cmd.Process.Pid}}
		if e.goFloors {
			floors = append(floors,
				fileTarget{targetGoRaw, filepath.Join(goraw.mountpoint, strconv.Itoa(i)), goraw.cmd.Process.Pid},
				fileTarget{targetGoTree, filepath.Join(gotree.mountpoint, s.Path), gotree.cmd.Process.Pid})
		}
		specs[i].Targets = slices.Insert(s.Targets, at, floors...)
	}

	spec, err = json.Marshal(specs)
	if err != nil {
		return err
	}
	var res []fileResult
	if err := e.runRounds(&res, "files", cg, "measure", "-specs", string(spec)); err != nil {
		return err
	}
	targets := []string{targetCgprocfs}
	if base != nil {
		targets = append(targets, targetBaseline)
	}
	if uring != nil {
		targets = append(targets, targetURing)
	}
	if lx != nil {
		targets = append(targets, targetLxcfs)
	}
	targets = append(targets, targetFloor)
	if e.goFloors {
		targets = append(targets, targetGoRaw, targetGoTree)
	}
	targets = append(targets, targetHost)
	for _, s := range specs {
		var sizes []string
		for _, t := range targets {
			if c, ok := read[[2]string{s.Name, t}]; ok && c.Err == "" {
				sizes = append(sizes, fmt.Sprintf("%s %d", t, len(c.Content)))
			} else if t != targetFloor && t != targetGoRaw && t != targetGoTree {
				sizes = append(sizes, t+" -")
			}
		}
		fmt.Printf("%s: bytes read from inside: %s\n", s.Path, strings.Join(sizes, ", "))
	}
	for _, r := range res {
		if r.FirstErr != "" {
			fmt.Printf("warning: %s through %s, %d readers: %d failed reads, first: %s\n", r.File, r.Target, r.Readers, r.Errors, r.FirstErr)
		}
	}
	fmt.Println()
	printFilesTable(os.Stdout, specs, targets, res)
	fmt.Println()
	if e.goFloors {
		printFloorsTable(os.Stdout, specs, res)
		fmt.Println()
	}
	printCPUTable(os.Stdout, specs, res, lx != nil)
	if uring != nil {
		fmt.Println()
		printURingTable(os.Stdout, specs, res)
	}
	return nil
}

// reportChecks prints what the check reads saw and fails when cgprocfs or
// the host could not serve a file, or cgprocfs does not show the cgroup's
// MemTotal; lxcfs is only warned about.
func reportChecks(specs []fileSpec, read map[[2]string]checkRead) error {
	for _, s := range specs {
		for _, t := range s.Targets {
			c := read[[2]string{s.Name, t.Name}]
			switch {
			case c.Err == "":
			case t.Name == targetLxcfs, t.Name == targetBaseline:
				// An earlier build may not serve a newer file.
				fmt.Printf("warning: %s left out of %s: %s\n", t.Name, s.Path, c.Err)
			default:
				return fmt.Errorf("%s cannot serve %s: %s", t.Name, s.Path, c.Err)
			}
		}
		switch s.Name {
		case "meminfo":
			var seen []string
			lxcfsOff := false
			for _, t := range s.Targets {
				c := read[[2]string{s.Name, t.Name}]
				if c.Err != "" {
					continue
				}
				kb, err := memTotal(c.Content)
				if err != nil {
					seen = append(seen, fmt.Sprintf("%s: %v", t.Name, err))
				} else {
					seen = append(seen, fmt.Sprintf("%s %d kB", t.Name, kb))
				}
				bad := err != nil || kb != benchLimit/1024
				if t.Name == targetCgprocfs && bad {
					return fmt.Errorf("cgprocfs does not show the cgroup's MemTotal (%d kB): %s", benchLimit/1024, seen[len(seen)-1])
				}
				lxcfsOff = lxcfsOff || t.Name == targetLxcfs && bad
			}
			fmt.Printf("MemTotal seen from inside (limit %d kB): %s\n", benchLimit/1024, strings.Join(seen, ", "))
			if lxcfsOff {
				fmt.Println("warning: lxcfs does not show the cgroup's MemTotal; its figures are not comparable")
			}
		case "cpu-online":
			var seen []string
			for _, t := range s.Targets {
				if c := read[[2]string{s.Name, t.Name}]; c.Err == "" {
					seen = append(seen, fmt.Sprintf("%s %s", t.Name, bytes.TrimSpace(c.Content)))
				}
			}
			fmt.Printf("CPUs online seen from inside: %s\n", strings.Join(seen, ", "))
		}
	}
	return nil
}

// pickDisk is the disk whose sys/block/DISK/stat is measured: the first
// that the daemon mounted at mp serves and that is not a virtual device
// (loop, zram), or the first it serves if all are.
func pickDisk(mp string) (string, error) {
	entries, err := os.ReadDir(filepath.Join(mp, "sys", "block"))
	if err != nil {
		return "", fmt.Errorf("listing the disks cgprocfs serves: %w", err)
	}
	first := ""
	for _, e := range entries {
		if _, err := os.Stat(filepath.Join(mp, "sys", "block", e.Name(), "stat")); err != nil {
			continue
		}
		if first == "" {
			first = e.Name()
		}
		real, err := filepath.EvalSymlinks(filepath.Join("/sys/block", e.Name()))
		if err == nil && !strings.HasPrefix(real, "/sys/devices/virtual/") {
			return e.Name(), nil
		}
	}
	if first == "" {
		return "", fmt.Errorf("cgprocfs serves no sys/block/*/stat under %s", mp)
	}
	return first, nil
}

// filesChild runs inside the cgroup. "check" does the cgroup's own I/O
// (-io, a device node) and reads every target's file once; "measure" runs
// the rounds in which every reader count, file and target take a turn of
// -duration. Both write JSON to stdout.
func filesChild(args []string) error {
	if len(args) < 1 {
		return errors.New("want check or measure")
	}
	fl := flag.NewFlagSet("files "+args[0], flag.ContinueOnError)
	duration := fl.Duration("duration", time.Second, "measuring time per turn")
	rounds := fl.Int("rounds", 3, "rounds")
	ioFile := fl.String("io", "", "file to write and read with direct I/O first")
	spec := fl.String("specs", "", "JSON list of files and their targets")
	if err := fl.Parse(args[1:]); err != nil {
		return err
	}
	var specs []fileSpec
	if err := json.Unmarshal([]byte(*spec), &specs); err != nil {
		return fmt.Errorf("-specs: %w", err)
	}
	switch args[0] {
	case "check":
		if *ioFile != "" {
			if err := directIO(*ioFile); err != nil {
				return err
			}
		}
		var checks []checkRead
		for _, s := range specs {
			for _, t := range s.Targets {
				c := checkRead{File: s.Name, Target: t.Name}
				data, err := os.ReadFile(t.Path)
				if err != nil {
					c.Err = err.Error()
				}
				c.Content = data
				checks = append(checks, c)
			}
		}
		return json.NewEncoder(os.Stdout).Encode(checks)
	case "measure":
		return json.NewEncoder(os.Stdout).Encode(measure(specs, *duration, *rounds))
	}
	return fmt.Errorf("unknown mode %q", args[0])
}

// measure takes turns of d at every reader count, file and target, rounds
// times over, so that noise spreads over all of them alike.
func measure(specs []fileSpec, d time.Duration, rounds int) []fileResult {
	// Readers sit on locked OS threads; let each find a P at once when its
	// syscall returns, as a thread in C would.
	runtime.GOMAXPROCS(max(runtime.NumCPU(), readerCounts[len(readerCounts)-1]+1))

	type key struct {
		file, target string
		readers      int
	}
	accs := map[key]*loopResult{}
	// A short warm-up wakes every daemon's threads before anything counts.
	for _, s := range specs {
		for _, t := range s.Targets {
			readLoop(t.Path, readerCounts[len(readerCounts)-1], 100*time.Millisecond)
		}
	}
	for round := range rounds {
		for _, n := range readerCounts {
			for _, s := range specs {
				// Each round starts with another target: the first
				// turn after another daemon's came out slower (A/B
				// runs of one build against another gave whichever
				// went first 0.74x to 0.95x), which a fixed order
				// charged to cgprocfs in every run.
				for i := range s.Targets {
					t := s.Targets[(i+round)%len(s.Targets)]
					k := key{s.Name, t.Name, n}
					a := accs[k]
					if a == nil {
						a = &loopResult{}
						accs[k] = a
					}
					c0 := daemonCPU(t.Pid)
					a.add(readLoop(t.Path, n, d))
					a.cpu += daemonCPU(t.Pid) - c0
				}
			}
		}
	}
	var res []fileResult
	for _, s := range specs {
		for _, n := range readerCounts {
			for _, t := range s.Targets {
				a := accs[key{s.Name, t.Name, n}]
				r := fileResult{File: s.Name, summary: summarize(t.Name, n, a.lat, a.fails, a.wall), CPU: a.cpu}
				if a.first != nil {
					r.FirstErr = a.first.Error()
				}
				a.lat = nil // let the collector have it before the next sort
				res = append(res, r)
			}
		}
	}
	return res
}

// loopResult is what read loops measured: every successful cycle's
// latency, the failed cycles with the first failure, and the wall time.
type loopResult struct {
	lat   []time.Duration
	fails int
	first error
	wall  time.Duration
	// cpu is the serving daemon's CPU seconds over the turns.
	cpu float64
}

// add sums another turn into r.
func (r *loopResult) add(o loopResult) {
	r.lat = append(r.lat, o.lat...)
	r.fails += o.fails
	r.wall += o.wall
	if r.first == nil {
		r.first = o.first
	}
}

// readLoop runs n readers for d, each on its own OS thread doing
// open+read-until-EOF+close with raw syscalls. Failures are counted, not
// fatal: they show in the table.
//
// The collector is off while they read and runs after: this process sits
// in the benchmark cgroup under its CPU quota, and a collection during a
// turn (of the latencies earlier turns kept) spent the readers' quota and
// halved the reads/s of whichever targets it hit (loadavg and uptime after
// meminfo's turns, the C floor's as well). One turn allocates a few MB.
func readLoop(path string, n int, d time.Duration) loopResult {
	defer runtime.GC()
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
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
			lat := make([]time.Duration, 0, 1<<14)
			bad := 0
			var firstErr error
			<-start
			for {
				t0 := time.Now()
				if !t0.Before(deadline) {
					break
				}
				if err := readOnce(path, buf); err != nil {
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
	return loopResult{lat: all, fails: fails, first: first, wall: time.Since(t0)}
}

// readOnce is one open + read until EOF + close. An empty file is no
// failure: a container that did no I/O has an empty diskstats.
func readOnce(path string, buf []byte) error {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
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
	}
	return syscall.Close(fd)
}

// directIO writes 1 MiB to a new file and reads it back with direct I/O,
// which the kernel charges to the cgroup of the writer and reader (buffered
// writeback is charged elsewhere on v1): it gives the cgroup I/O counters of
// its own on the file's disk, so that diskstats has a line to render.
func directIO(path string) error {
	// Direct I/O needs an aligned buffer; an anonymous mapping is
	// page-aligned.
	buf, err := syscall.Mmap(-1, 0, 64<<10, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return fmt.Errorf("mapping a direct I/O buffer: %w", err)
	}
	defer syscall.Munmap(buf)
	const chunks = 16
	err = withFD(path, syscall.O_WRONLY|syscall.O_CREAT|syscall.O_EXCL, func(fd int) error {
		for i := range chunks {
			if _, err := syscall.Pwrite(fd, buf, int64(i*len(buf))); err != nil {
				return err
			}
		}
		return syscall.Fsync(fd)
	})
	if err == nil {
		err = withFD(path, syscall.O_RDONLY, func(fd int) error {
			for i := range chunks {
				if _, err := syscall.Pread(fd, buf, int64(i*len(buf))); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if rmErr := os.Remove(path); err == nil && rmErr != nil {
		err = rmErr
	}
	if err != nil {
		return fmt.Errorf("direct I/O on %s: %w", path, err)
	}
	return nil
}

// withFD opens path with direct I/O and flags, runs f on it and closes it.
func withFD(path string, flags int, f func(fd int) error) error {
	fd, err := syscall.Open(path, flags|syscall.O_DIRECT|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	err = f(fd)
	if cerr := syscall.Close(fd); err == nil {
		err = cerr
	}
	return err
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

// daemonCPU is a daemon's CPU seconds so far, 0 for no daemon (pid 0) or
// one that cannot be read (its figure then shows as 0).
func daemonCPU(pid int) float64 {
	if pid == 0 {
		return 0
	}
	s, err := cpuSeconds(pid)
	if err != nil {
		return 0
	}
	return s
}
