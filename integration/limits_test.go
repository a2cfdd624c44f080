package integration

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Environment of the open helper: this test binary run again, opening a
// served file many times from inside a cgroup.
const (
	openHelperEnv   = "CGPROCFS_TEST_OPEN_HELPER" // the file to open
	openHelperProcs = "CGPROCFS_TEST_OPEN_PROCS"  // cgroup.procs files, comma-separated
	openHelperTimes = "CGPROCFS_TEST_OPEN_TIMES"
)

func init() {
	path := os.Getenv(openHelperEnv)
	if path == "" {
		return
	}
	for _, f := range strings.Split(os.Getenv(openHelperProcs), ",") {
		if err := os.WriteFile(f, []byte(strconv.Itoa(os.Getpid())), 0); err != nil {
			fmt.Println("FAIL joining", f, err)
			os.Exit(1)
		}
	}
	times, _ := strconv.Atoi(os.Getenv(openHelperTimes))
	var held []int
	emfile, other := 0, 0
	for range times {
		fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		switch {
		case err == nil:
			held = append(held, fd)
		case errors.Is(err, syscall.EMFILE):
			emfile++
		default:
			other++
		}
	}
	fmt.Printf("opened %d emfile %d other %d\n", len(held), emfile, other)
	io.Copy(io.Discard, os.Stdin) // hold them until the test says
	for _, fd := range held {
		syscall.Close(fd)
	}
	os.Exit(0)
}

// rssKB is a process's resident set in kB.
func rssKB(t *testing.T, pid int) int {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for l := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			return n
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// A container opening 100,000 handles of cpuinfo: it holds at most its cap
// (the rest fail with EMFILE), the daemon's RSS stays bounded, another
// container's reads keep working, and the RSS comes back within 60 s of the
// close.
func TestOpenHandlesCappedPerContainer(t *testing.T) {
	maxOpen, attempts, warmups := 4096, 100000, 200
	var args []string
	if os.Getenv("CGPROCFS_VM") != "" {
		// The VM's descriptor limit is below the default cap, and each
		// open costs milliseconds under TCG.
		maxOpen, attempts, warmups = 1000, 1500, 20
		args = []string{"--max-open-per-container", strconv.Itoa(maxOpen)}
	}
	d := startDaemon(t, args...)
	pid := d.serverPid()
	flood, other := newCgroup(t, "flood", nil), newCgroup(t, "calm", nil)
	other.SetMemoryLimit(t, 100<<20)
	// Warm up: the daemon's steady size, with both containers seen.
	for range warmups {
		d.run(t, other, "cat /proc/cpuinfo > /dev/null")
	}
	start := rssKB(t, pid)

	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	h := exec.Command(self)
	h.Env = append(os.Environ(), openHelperEnv+"="+d.Path("proc/cpuinfo"), openHelperProcs+"="+strings.Join(flood.procsFiles(), ","),
		openHelperTimes+"="+strconv.Itoa(attempts))
	stdin, err := h.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := h.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Process.Kill(); h.Wait() })
	// Another container reads meanwhile.
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("open helper: %v", err)
	}
	var opened, emfile, others int
	fmt.Sscanf(line, "opened %d emfile %d other %d", &opened, &emfile, &others)
	peak := rssKB(t, pid)
	t.Logf("%d opens: %d held, %d EMFILE, %d other errors; daemon RSS %d kB before, %d kB holding them", attempts, opened, emfile, others, start, peak)
	if opened != maxOpen || others != 0 {
		t.Errorf("held %d (want the cap, %d), %d failed otherwise", opened, maxOpen, others)
	}
	out := d.run(t, other, "head -1 /proc/meminfo")
	if !strings.Contains(out, fmt.Sprintf(" %d kB", 100<<10)) {
		t.Errorf("another container's read while the first holds its cap: %q", out)
	}
	// The documented bound: what a container at its caps adds.
	if grew := peak - start; grew > 64<<10 {
		t.Errorf("the daemon grew by %d kB for one container at its cap, more than the documented 64 MiB", grew)
	}
	stdin.Close()
	h.Wait()
	closed := time.Now()
	poll(t, 60*time.Second, "the daemon's RSS to come back within 20% of its start", func() bool {
		return rssKB(t, pid) <= start*12/10
	})
	t.Logf("RSS back to %d kB %v after the close", rssKB(t, pid), time.Since(closed).Round(time.Second))
	if !strings.Contains(d.logs(), "over its cap") {
		t.Errorf("no log line about the container over its cap:\n%s", d.logs())
	}
}
