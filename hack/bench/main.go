// Command bench is `make bench`: it measures cgprocfs side by side with the
// host's own files and, when installed, LXCFS, in one run on one machine, so
// that the figures are ratios taken under the same noise.
//
// Usage: go run ./hack/bench -bin bin/cgprocfs [-duration 1.5s] [-rounds 3] [-only files] [-files meminfo,stat] [-no-go-floors]
//
// Layout, for whoever adds a benchmark:
//   - main.go (this file): flags, the benchmark registry, the parent/child
//     split, clean-up on exit and on Ctrl-C.
//   - env.go: what benchmarks share: the cgprocfs and lxcfs daemons on
//     temporary mount points (started once, on first use), limited cgroups
//     with sleeping processes, and runChild, which re-executes this binary
//     inside a cgroup.
//   - stats.go: latency summaries and the table.
//   - files.go: the open+read+close benchmark of every served file, with
//     the daemons' CPU time per read; floor.go and floor/floor.c: the C
//     floor (libfuse3's low-level API, built with gcc) it compares against;
//     gofloor.go: the two Go floors (go-fuse's raw API, cgprocfs's tree).
//   - threads.go: stat and loadavg from a cgroup of 10 threads and of 1,000.
//   - loadavg.go: the CPU cost of tracking the load of many cgroups, and
//     (scale.go) the read cost and RSS with 10 and with 1,000 tracked.
//
// To add one, put it in its own file with an init func that calls register
// with a benchmark: Run is the parent side (set up through env, run the
// measuring part with env.runChild, print results); Child, if any, is what
// runs inside the cgroup (args from runChild, a result written to stdout).
// Benchmarks run files first, then in name order; -only picks some. Setup
// failures return errors (exit 1); figures never make the run fail.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"
)

// benchmark is one named benchmark.
type benchmark struct {
	Name string
	// Doc is a one-line description for -h.
	Doc string
	// Run measures and prints; it returns an error only when it cannot
	// set up or run at all.
	Run func(e *env) error
	// Child is the part that runs inside the benchmark cgroup, in a
	// re-executed copy of this binary; args are those given to runChild.
	Child func(args []string) error
}

var benchmarks []benchmark

// register adds a benchmark; call it from an init func.
func register(b benchmark) {
	benchmarks = append(benchmarks, b)
	// files first, the rest by name: a later benchmark may leave load
	// behind (daemons tracking many cgroups) that would add to the noise
	// of the files' latencies.
	sort.SliceStable(benchmarks, func(i, j int) bool {
		a, b := benchmarks[i].Name, benchmarks[j].Name
		if (a == "files") != (b == "files") {
			return a == "files"
		}
		return a < b
	})
}

// childFlag marks a re-executed child: "-bench-child NAME JOINFILES ARGS...",
// JOINFILES being comma-separated cgroup.procs files.
const childFlag = "-bench-child"

func main() {
	if len(os.Args) >= 4 && os.Args[1] == childFlag {
		os.Exit(childMain(os.Args[2], os.Args[3], os.Args[4:]))
	}
	if len(os.Args) == 3 && os.Args[1] == holdThreadsFlag {
		os.Exit(holdThreadsMain(os.Args[2:]))
	}
	if len(os.Args) >= 2 && os.Args[1] == serveFloorFlag {
		os.Exit(serveFloorMain(os.Args[2:]))
	}

	var names []string
	for _, b := range benchmarks {
		names = append(names, b.Name)
	}
	bin := flag.String("bin", "bin/cgprocfs", "the cgprocfs binary to benchmark")
	// 10 files, 6 targets, 2 reader counts: 3 s each in 6 rounds makes
	// the files benchmark about 7 minutes, the whole run about 11. A
	// daemon's reads/s with 1 reader swings between 4,000 and 28,000 from
	// one 100 ms to the next here (whether the scheduler puts reader and
	// daemon on one CPU: README, Speed), where the C floor's stays within
	// 15%; 1.5 s in 3 rounds left 20 to 30% between runs.
	duration := flag.Duration("duration", 3*time.Second, "files: measuring time per file, target and reader count, split over the rounds")
	rounds := flag.Int("rounds", 6, "rounds the targets take turns in, so that noise hits all alike")
	only := flag.String("only", "", "comma-separated benchmarks to run, of: "+strings.Join(names, ", "))
	files := flag.String("files", "", "files: comma-separated files to read, of: "+fileNames()+" (default all)")
	noLxcfs := flag.Bool("no-lxcfs", false, "leave LXCFS out even when it is installed")
	baseline := flag.String("baseline", "", "files: a second cgprocfs binary (an earlier build) measured beside -bin in the same run")
	noURing := flag.Bool("no-io-uring", false, "files: leave out cgprocfs --io-uring (measured where the kernel has FUSE over io_uring; the fuse module's switch is put back after)")
	noGoFloors := flag.Bool("no-go-floors", false, "files: leave out the two Go floors (go-fuse's raw API and cgprocfs's own tree serving fixed bytes)")
	cpuprofile := flag.String("cpuprofile", "", "write the cgprocfs daemon's CPU profile to this file (needs its hidden --cpuprofile flag)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: %s [flags]\n\nbenchmarks:\n", os.Args[0])
		for _, b := range benchmarks {
			fmt.Fprintf(flag.CommandLine.Output(), "  %-10s %s\n", b.Name, b.Doc)
		}
		fmt.Fprintln(flag.CommandLine.Output(), "\nflags:")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 0 || *rounds < 1 || *duration <= 0 {
		flag.Usage()
		os.Exit(2)
	}
	run := benchmarks
	if *only != "" {
		run = nil
		for _, n := range strings.Split(*only, ",") {
			i := slices.IndexFunc(benchmarks, func(b benchmark) bool { return b.Name == n })
			if i < 0 {
				fmt.Fprintf(os.Stderr, "bench: no benchmark %q (have %s)\n", n, strings.Join(names, ", "))
				os.Exit(2)
			}
			run = append(run, benchmarks[i])
		}
	}
	picked, err := pickFiles(*files)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: -files:", err)
		os.Exit(2)
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "bench: must run as root (it mounts FUSE filesystems and creates cgroups)")
		os.Exit(1)
	}

	e, err := newEnv(*bin, *duration, *rounds, !*noLxcfs, *cpuprofile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	e.files = picked
	e.goFloors = !*noGoFloors
	e.wantURing = !*noURing
	if *baseline != "" {
		if e.baselineBin, err = filepath.Abs(*baseline); err != nil {
			fmt.Fprintln(os.Stderr, "bench: -baseline:", err)
			os.Exit(2)
		}
	}
	// Ctrl-C and SIGTERM clean up too: the daemons, mounts and cgroups
	// must not outlive the run.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		s := <-sig
		fmt.Fprintf(os.Stderr, "\nbench: %v, cleaning up\n", s)
		e.cleanup()
		os.Exit(130)
	}()

	code := 0
	e.printHeader()
	for _, b := range run {
		fmt.Printf("\n== %s: %s\n", b.Name, b.Doc)
		if err := b.Run(e); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %s: %v\n", b.Name, err)
			code = 1
			break
		}
	}
	signal.Stop(sig)
	e.cleanup()
	os.Exit(code)
}

// childMain runs in the re-executed child: it joins the cgroup through the
// given cgroup.procs files first, so that everything after, including the
// reads, is charged to and answered for that cgroup.
func childMain(name, join string, args []string) int {
	for _, f := range strings.Split(join, ",") {
		if f == "" {
			continue
		}
		if err := os.WriteFile(f, []byte(fmt.Sprint(os.Getpid())), 0); err != nil {
			fmt.Fprintf(os.Stderr, "bench child: joining %s: %v\n", f, err)
			return 1
		}
	}
	for _, b := range benchmarks {
		if b.Name == name && b.Child != nil {
			if err := b.Child(args); err != nil {
				fmt.Fprintf(os.Stderr, "bench child %s: %v\n", name, err)
				return 1
			}
			return 0
		}
	}
	fmt.Fprintf(os.Stderr, "bench child: no benchmark %q\n", name)
	return 1
}
