package integration

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	cgfs "github.com/cgprocfs/cgprocfs/fs"
)

// keepIOUringSwitch skips the test on a kernel without FUSE over io_uring
// and puts the fuse module's switch back as it found it when the test ends
// (the daemon turns it on).
func keepIOUringSwitch(t *testing.T) {
	t.Helper()
	was, err := os.ReadFile(cgfs.FuseURingParam)
	if err != nil {
		t.Skipf("no FUSE over io_uring on this kernel: %v", err)
	}
	t.Cleanup(func() {
		if err := cgfs.RestoreIOUringSwitch(cgfs.FuseURingParam, was); err != nil {
			t.Error(err)
		}
	})
}

// With --io-uring each request is answered over the io_uring queue of the
// CPU its reader runs on: containers reading at once from every CPU, with
// procps and cat, each see only their own figures.
func TestIOUringServesEachContainerItsOwn(t *testing.T) {
	keepIOUringSwitch(t)
	d := startDaemon(t, "--io-uring", "--holder=false")
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(d.logs(), "serving over FUSE io_uring"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the daemon does not serve over io_uring: %s", d.logs())
		}
	}
	var allowed unix.CPUSet
	if err := unix.SchedGetaffinity(0, &allowed); err != nil {
		t.Fatal(err)
	}
	var cpus []string
	for c := range 1024 {
		if allowed.IsSet(c) {
			cpus = append(cpus, strconv.Itoa(c))
		}
	}
	const n, rounds = 6, 50
	reads := rounds * len(cpus)
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range n {
		limit := int64(120+8*i) * mib
		cg := newCgroup(t, fmt.Sprintf("uring%d", i), nil)
		cg.SetMemoryLimit(t, limit)
		wg.Go(func() {
			// Each read from the next CPU, so that every queue serves
			// every container.
			script := fmt.Sprintf(`for i in $(seq %d); do for c in %s; do taskset -c $c head -n1 /proc/meminfo; done; done; /usr/bin/free -b | sed -n 2p; cat /proc/stat /proc/cpuinfo /proc/uptime /proc/loadavg > /dev/null`, rounds, strings.Join(cpus, " "))
			out, err := d.command(t.Context(), cg, script).Output()
			if err != nil {
				errs <- fmt.Errorf("cgroup %d: %v", i, err)
				return
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			if len(lines) != reads+1 {
				errs <- fmt.Errorf("cgroup %d: %d lines, want %d: %q", i, len(lines), reads+1, out)
				return
			}
			want := strconv.FormatInt(limit/1024, 10) + " kB"
			for _, l := range lines[:reads] {
				if !strings.HasPrefix(l, "MemTotal:") || !strings.HasSuffix(l, " "+want) {
					errs <- fmt.Errorf("cgroup %d with limit %s read %q", i, want, l)
					return
				}
			}
			if f := strings.Fields(lines[reads]); len(f) < 2 || f[1] != strconv.FormatInt(limit, 10) {
				errs <- fmt.Errorf("cgroup %d: free says %q, want total %d", i, lines[reads], limit)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
