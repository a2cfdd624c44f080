package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func init() {
	register(benchmark{
		Name:  "sysinfo",
		Doc:   "sysinfo(2) calls/s of 8 threads in a cgroup: answered by the seccomp agent (notify rule) and by the kernel (no rule)",
		Run:   runSysinfoBench,
		Child: sysinfoChild,
	})
}

const sysinfoThreads = 8

// sysinfoResult is what a child measured.
type sysinfoResult struct {
	Calls, Errors int
	// Wrong counts answers whose totalram is not the cgroup's limit (with
	// the rule) or not the host's (without).
	Wrong   int
	Seconds float64
}

func runSysinfoBench(e *env) error {
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		fmt.Println("skipped: the agent answers sysinfo on amd64 and arm64 only")
		return nil
	}
	mp := filepath.Join(e.tmp, "sysinfo")
	sock := filepath.Join(e.tmp, "seccomp.sock")
	if _, err := e.startDaemon("cgprocfs (seccomp agent)", mp, e.bin, "mount", "--seccomp-listener", sock, mp); err != nil {
		return err
	}
	cg, err := e.newCgroup("sysinfo", benchLimit)
	if err != nil {
		return err
	}
	var without, with sysinfoResult
	turn := e.duration * 2 / time.Duration(e.rounds)
	for range e.rounds {
		for _, notify := range []bool{false, true} {
			out, err := e.runChild("sysinfo", cg, "-listener", sock, "-notify="+strconv.FormatBool(notify),
				"-duration", turn.String(), "-want", strconv.Itoa(benchLimit))
			if err != nil {
				return err
			}
			var r sysinfoResult
			if err := json.Unmarshal(out, &r); err != nil {
				return fmt.Errorf("sysinfo child: %w", err)
			}
			sum := &without
			if notify {
				sum = &with
			}
			sum.Calls += r.Calls
			sum.Errors += r.Errors
			sum.Wrong += r.Wrong
			sum.Seconds += r.Seconds
		}
	}
	rate := func(r sysinfoResult) float64 {
		if r.Seconds <= 0 {
			return 0
		}
		return float64(r.Calls) / r.Seconds
	}
	fmt.Printf("\n%d threads calling sysinfo(2) in a loop, %d rounds of %s each:\n", sysinfoThreads, e.rounds, turn)
	fmt.Printf("  %-34s %12.0f calls/s  errors %d  wrong answers %d\n", "kernel (no rule):", rate(without), without.Errors, without.Wrong)
	fmt.Printf("  %-34s %12.0f calls/s  errors %d  wrong answers %d\n", "seccomp agent (SCMP_ACT_NOTIFY):", rate(with), with.Errors, with.Wrong)
	if rate(without) > 0 {
		fmt.Printf("agent / kernel: %.4f\n", rate(with)/rate(without))
	}
	return nil
}

// sysinfoChild runs in the cgroup: with -notify it filters its own
// threads (sysinfo to a new listener, handed to the agent at -listener as
// runc hands it), then 8 threads call sysinfo for -duration; it writes a
// sysinfoResult.
func sysinfoChild(args []string) error {
	fl := flag.NewFlagSet("sysinfo", flag.ContinueOnError)
	listener := fl.String("listener", "", "the agent's socket")
	notify := fl.Bool("notify", false, "send sysinfo to the agent")
	duration := fl.Duration("duration", time.Second, "measuring time")
	want := fl.Uint64("want", 0, "the cgroup's memory limit: the agent's totalram")
	if err := fl.Parse(args); err != nil {
		return err
	}
	var host unix.Sysinfo_t
	if err := unix.Sysinfo(&host); err != nil {
		return err
	}
	expect := host.Totalram * uint64(host.Unit)
	if *notify {
		conn, err := filterSysinfo(*listener)
		if err != nil {
			return err
		}
		defer conn.Close()
		expect = *want
	}
	var calls, errs, wrong atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	start := time.Now()
	for range sysinfoThreads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			var s unix.Sysinfo_t
			for !stop.Load() {
				if err := unix.Sysinfo(&s); err != nil {
					errs.Add(1)
				} else if s.Totalram*uint64(s.Unit) != expect {
					wrong.Add(1)
				}
				calls.Add(1)
			}
		}()
	}
	time.Sleep(*duration)
	stop.Store(true)
	wg.Wait()
	return json.NewEncoder(os.Stdout).Encode(sysinfoResult{
		Calls: int(calls.Load()), Errors: int(errs.Load()), Wrong: int(wrong.Load()),
		Seconds: time.Since(start).Seconds(),
	})
}

// filterSysinfo installs, on every thread of the process, a filter that
// sends the native sysinfo(2) to a new listener, and hands the listener to
// the agent at path with the state message runc sends. The connection
// stays open, as runc keeps it while it runs.
func filterSysinfo(path string) (*net.UnixConn, error) {
	arch := uint32(unix.AUDIT_ARCH_X86_64)
	if runtime.GOARCH == "arm64" {
		arch = unix.AUDIT_ARCH_AARCH64
	}
	prog := []unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 4}, // arch
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: arch, Jf: 2},
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 0}, // nr
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: unix.SYS_SYSINFO, Jt: 1},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_USER_NOTIF},
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	// TSYNC puts the filter on every thread, as a container's filter
	// covers all its threads; with a listener it needs TSYNC_ESRCH (5.7).
	flags := uintptr(unix.SECCOMP_FILTER_FLAG_NEW_LISTENER | unix.SECCOMP_FILTER_FLAG_TSYNC | unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH)
	fd, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, flags, uintptr(unsafe.Pointer(&fprog)))
	if errno != 0 {
		return nil, fmt.Errorf("installing the filter: %w", errno)
	}
	defer unix.Close(int(fd))
	state := specs.ContainerProcessState{
		Version: specs.Version, Fds: []string{specs.SeccompFdName}, Pid: os.Getpid(),
		State: specs.State{Version: specs.Version, ID: "bench-sysinfo", Status: specs.StateCreating, Pid: os.Getpid()},
	}
	msg, err := json.Marshal(state)
	if err != nil {
		return nil, err
	}
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("connecting to the agent: %w", err)
	}
	if _, _, err := c.WriteMsgUnix(msg, unix.UnixRights(int(fd)), nil); err != nil {
		c.Close()
		return nil, fmt.Errorf("handing the listener over: %w", err)
	}
	// The agent answers once it took the fd; wait for a first answer so
	// that the measured loop does not start while the hand-over is on its
	// way (a notified call waits for it meanwhile, which is no error).
	var s unix.Sysinfo_t
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := unix.Sysinfo(&s); err == nil {
			return c, nil
		} else if time.Now().After(deadline) {
			c.Close()
			return nil, errors.New("no sysinfo answer within 10 s of the hand-over")
		}
	}
}
