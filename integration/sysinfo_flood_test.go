package integration

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/cgprocfs/cgprocfs/procfiles"
)

// floodEnv makes this test binary, started inside a container, run
// sysinfoFlood instead of the tests: its value is the duration, floodWant
// the totalram each answer must have.
const (
	floodEnv  = "CGPROCFS_SYSINFO_FLOOD"
	floodWant = "CGPROCFS_SYSINFO_FLOOD_WANT"
)

const floodThreads = 8

// floodResult is what the flood prints: one JSON line.
type floodResult struct {
	Sysinfo, SysinfoErrors, SysinfoWrong int
	// Getpid is routed to the agent too (which leaves it to the kernel);
	// Reads are of the container's /proc/meminfo, served by the daemon.
	Getpid, GetpidWrong, Reads, ReadErrors int
	FirstError                             string
	Seconds                                float64
}

func init() {
	d, err := time.ParseDuration(os.Getenv(floodEnv))
	if err != nil {
		return
	}
	want, _ := strconv.ParseUint(os.Getenv(floodWant), 10, 64)
	json.NewEncoder(os.Stdout).Encode(sysinfoFlood(d, want))
	os.Exit(0)
}

// sysinfoFlood runs floodThreads threads, each calling sysinfo in a loop
// with getpid after each call and a read of /proc/meminfo every 16th,
// for d.
func sysinfoFlood(d time.Duration, want uint64) floodResult {
	var si, siErr, siWrong, gp, gpWrong, reads, readErr atomic.Int64
	var firstMu sync.Mutex
	var first string
	fail := func(s string) {
		firstMu.Lock()
		if first == "" {
			first = s
		}
		firstMu.Unlock()
	}
	pid := os.Getpid()
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for range floodThreads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			var buf [procfiles.SysinfoSize]byte
			for i := 0; time.Now().Before(deadline); i++ {
				_, _, errno := unix.Syscall(unix.SYS_SYSINFO, uintptr(unsafe.Pointer(&buf)), 0, 0)
				si.Add(1)
				if errno != 0 {
					siErr.Add(1)
					fail("sysinfo: " + errno.Error())
				} else if s, unit := procfiles.DecodeSysinfo(buf); s.TotalRAM*uint64(unit) != want {
					siWrong.Add(1)
					fail("sysinfo totalram " + strconv.FormatUint(s.TotalRAM, 10))
				}
				r, _, errno := unix.Syscall(unix.SYS_GETPID, 0, 0, 0)
				gp.Add(1)
				if errno != 0 || int(r) != pid {
					gpWrong.Add(1)
					fail("getpid " + strconv.Itoa(int(r)) + " " + errno.Error())
				}
				if i%16 == 0 {
					data, err := os.ReadFile("/proc/meminfo")
					reads.Add(1)
					if err != nil || !strings.HasPrefix(string(data), "MemTotal:") {
						readErr.Add(1)
						fail("reading /proc/meminfo: " + strconv.Quote(string(data)) + " " + errString(err))
					}
				}
			}
		}()
	}
	wg.Wait()
	return floodResult{
		Sysinfo: int(si.Load()), SysinfoErrors: int(siErr.Load()), SysinfoWrong: int(siWrong.Load()),
		Getpid: int(gp.Load()), GetpidWrong: int(gpWrong.Load()), Reads: int(reads.Load()), ReadErrors: int(readErr.Load()),
		FirstError: first, Seconds: time.Since(start).Seconds(),
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestSysinfoFlood: 8 threads of a container call sysinfo in a loop for
// 10 s (2 s in the VM), each call followed by getpid (also sent to the
// agent, which leaves it to the kernel) and every 16th by a read of the
// container's /proc/meminfo: every sysinfo gets the container's totalram,
// every getpid the caller's pid, every read the file, and the container
// ends on time.
func TestSysinfoFlood(t *testing.T) {
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		t.Skip("the agent answers sysinfo on amd64 and arm64 only")
	}
	d, sock := sysinfoDaemon(t)
	dur := 10 * time.Second
	if os.Getenv("CGPROCFS_VM") != "" {
		dur = 2 * time.Second
	}
	c := newSysinfoBundle(t, d, 200*mib, sock, "/probe")
	c.setEnv(t, floodEnv+"="+dur.String(), floodWant+"="+strconv.Itoa(200*mib))
	cmd := exec.Command(c.runc, "--root", c.state, "run", "--bundle", c.bundle, c.id)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("runc run: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
		}
	case <-time.After(dur + 60*time.Second):
		// The bundle's clean-up deletes the container (runc delete
		// --force kills it).
		t.Fatalf("the flooding container did not end within %v of its %v; stdout: %s", 60*time.Second, dur, stdout.String())
	}
	out := stdout.String()
	var r floodResult
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &r); err != nil {
		t.Fatalf("flood output %q: %v", out, err)
	}
	t.Logf("%d threads for %.1f s: %d sysinfo (%.0f/s), %d getpid, %d reads of /proc/meminfo", floodThreads, r.Seconds,
		r.Sysinfo, float64(r.Sysinfo)/r.Seconds, r.Getpid, r.Reads)
	if r.SysinfoErrors+r.SysinfoWrong+r.GetpidWrong+r.ReadErrors > 0 {
		t.Errorf("failures: %d sysinfo errors, %d wrong sysinfo, %d wrong getpid, %d failed reads; first: %s",
			r.SysinfoErrors, r.SysinfoWrong, r.GetpidWrong, r.ReadErrors, r.FirstError)
	}
	if r.Sysinfo < floodThreads || r.Reads < floodThreads {
		t.Errorf("the flood made %d sysinfo calls and %d reads, want at least one per thread", r.Sysinfo, r.Reads)
	}
}

// setEnv replaces the bundle's probe environment by env.
func (c runcBundle) setEnv(t *testing.T, env ...string) {
	t.Helper()
	c.editSpec(t, func(s *specs.Spec) {
		s.Process.Env = slices.DeleteFunc(s.Process.Env, func(e string) bool { return strings.HasPrefix(e, probeEnv+"=") })
		s.Process.Env = append(s.Process.Env, env...)
	})
}
