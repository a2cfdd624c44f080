package main

// The 1,000-container figure, taken inside the loadavg benchmark while it
// grows the host to -loadavg-cgroups tracked cgroups: reads/s of meminfo,
// stat and loadavg through the shared cgprocfs (1 and 8 readers) with 10
// tracked cgroups and with all of them, and the daemon's RSS at each. The
// two points cannot take turns (the cgroups only grow), so the C floor is
// read beside each as the noise reference: what counts is cgprocfs's
// reads/s over the floor's at each point. The other daemons of the
// loadavg benchmark are stopped while a point is taken (measureAlone).

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// scaleFew is the small case the large one is compared with.
const scaleFew = 10

var scaleFiles = []string{"meminfo", "stat", "loadavg"}

type scalePoint struct {
	containers int
	rssKiB     int
	fds        int
	res        []fileResult
	// uringRSSKiB is cgprocfs --io-uring's RSS, when it is read too.
	uringRSSKiB int
}

type scaleProbe struct {
	e      *env
	d      *daemon
	uring  *daemon // nil without io_uring
	cg     *cgroup
	specs  []fileSpec
	points []scalePoint
	// targets are the daemons read at each point: cgprocfs, and
	// cgprocfs --io-uring where the kernel has it.
	targets []string
}

// newScaleProbe readies the reading cgroup and a C floor serving what
// cgprocfs serves it.
func newScaleProbe(e *env, d, uring *daemon) (*scaleProbe, error) {
	cg, err := e.newCgroup("scale", benchLimit)
	if err != nil {
		return nil, err
	}
	if err := cg.limitCPU(benchQuotaUs, benchPeriodUs); err != nil {
		return nil, err
	}
	var contents [][]byte
	for _, f := range scaleFiles {
		b, err := os.ReadFile(filepath.Join(d.mountpoint, "proc", f))
		if err != nil {
			return nil, err
		}
		contents = append(contents, b)
	}
	fl, err := startCFloor(e, "cfloor-scale", contents)
	if err != nil {
		return nil, err
	}
	p := &scaleProbe{e: e, d: d, uring: uring, cg: cg, targets: []string{targetCgprocfs}}
	if uring != nil {
		p.targets = append(p.targets, targetURing)
	}
	for i, f := range scaleFiles {
		ts := []fileTarget{{targetCgprocfs, filepath.Join(d.mountpoint, "proc", f), 0}}
		if uring != nil {
			ts = append(ts, fileTarget{targetURing, filepath.Join(uring.mountpoint, "proc", f), 0})
		}
		ts = append(ts, fileTarget{targetFloor, filepath.Join(fl.mountpoint, strconv.Itoa(i)), 0})
		p.specs = append(p.specs, fileSpec{Name: f, Path: "proc/" + f, Targets: ts})
	}
	return p, nil
}

// measure reads the files with containers cgroups tracked.
func (p *scaleProbe) measure(containers int) error {
	fmt.Printf("measuring reads with %d cgroups tracked ...\n", containers)
	spec, err := json.Marshal(p.specs)
	if err != nil {
		return err
	}
	pt := scalePoint{containers: containers}
	if err := p.e.runRounds(&pt.res, "files", p.cg, "measure", "-specs", string(spec)); err != nil {
		return err
	}
	pt.rssKiB, _ = rssKiB(p.d.cmd.Process.Pid)
	if p.uring != nil {
		pt.uringRSSKiB, _ = rssKiB(p.uring.cmd.Process.Pid)
	}
	pt.fds, _ = withChildren(p.d.cmd.Process.Pid, openFiles)
	p.points = append(p.points, pt)
	return nil
}

// gone reports the daemon's descriptors and RSS once the n cgroups of the
// large point are removed: polled every half second until the descriptors
// are back within 10 of the small point's or 30 s have passed.
func (p *scaleProbe) gone(n int) {
	if len(p.points) != 2 {
		return
	}
	pid, start := p.d.cmd.Process.Pid, time.Now()
	var fds int
	for {
		fds, _ = withChildren(pid, openFiles)
		if fds <= p.points[0].fds+10 || time.Since(start) > 30*time.Second {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	rss, _ := rssKiB(pid)
	fmt.Printf("\ncgprocfs after its %d cgroups were removed: %d descriptors %.1f s after the last removal (%d with %d cgroups, %d with %d), RSS %d MiB\n",
		n, fds, time.Since(start).Seconds(), p.points[0].fds, p.points[0].containers, p.points[1].fds, p.points[1].containers, rss>>10)
}

// openFiles counts one process's open descriptors.
func openFiles(pid int) (int, error) { return procEntries(pid, "fd") }

// procEntries counts the entries of /proc/<pid>/<dir> (fd, task).
func procEntries(pid int, dir string) (int, error) {
	ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/" + dir)
	return len(ents), err
}

func (p *scaleProbe) print() {
	if len(p.points) != 2 {
		return
	}
	a, b := p.points[0], p.points[1]
	get := func(pt scalePoint, file, target string, readers int) summary {
		for _, r := range pt.res {
			if r.File == file && r.Target == target && r.Readers == readers {
				return r.summary
			}
		}
		return summary{}
	}
	fmt.Printf("\nreads through cgprocfs (and cgprocfs --io-uring, io_uring) with %d and with %d cgroups tracked (C floor: the noise reference; the other daemons stopped meanwhile)\n", a.containers, b.containers)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	// The last two columns show the drift of the reference: the C floor
	// itself read some 10% faster at the large point than at the small
	// one in two runs, with 8 readers, which the normalized ratio charges
	// to cgprocfs.
	fmt.Fprintf(tw, "file\ttarget\treaders\tr/s %d\t/floor %d\tr/s %d\t/floor %d\t(/floor %d) / (/floor %d)\tr/s %d / %d\tfloor %d / %d\t\n",
		a.containers, a.containers, b.containers, b.containers, b.containers, a.containers, b.containers, a.containers, b.containers, a.containers)
	for _, t := range p.targets {
		for _, f := range scaleFiles {
			for _, n := range readerCounts {
				ca, fa := get(a, f, t, n), get(a, f, targetFloor, n)
				cb, fb := get(b, f, t, n), get(b, f, targetFloor, n)
				ra, rb := ca.PerSecond()/fa.PerSecond(), cb.PerSecond()/fb.PerSecond()
				fmt.Fprintf(tw, "%s\t%s\t%d\t%.0f\t%.2fx\t%.0f\t%.2fx\t%.2fx\t%.2fx\t%.2fx\t\n", f, t, n, ca.PerSecond(), ra, cb.PerSecond(), rb, rb/ra,
					cb.PerSecond()/ca.PerSecond(), fb.PerSecond()/fa.PerSecond())
			}
		}
	}
	tw.Flush()
	fmt.Printf("cgprocfs RSS (holder and server): %d MiB with %d cgroups, %d MiB with %d (target: under 100 MiB; read cost within 10%%: the normalized column at least 0.90x)\n",
		a.rssKiB>>10, a.containers, b.rssKiB>>10, b.containers)
	fmt.Printf("cgprocfs descriptors (holder and server): %d with %d cgroups, %d with %d (each cgroup's process read every proc file once)\n",
		a.fds, a.containers, b.fds, b.containers)
	if p.uring != nil {
		fmt.Printf("cgprocfs --io-uring RSS: %d MiB with %d cgroups, %d MiB with %d\n", a.uringRSSKiB>>10, a.containers, b.uringRSSKiB>>10, b.containers)
	}
}

// rssKiB is a daemon's resident set (VmRSS) in KiB: the process pid's and
// its children's (cgprocfs's holder and its server).
func rssKiB(pid int) (int, error) {
	return withChildren(pid, processRSSKiB)
}

// processRSSKiB is one process's VmRSS in KiB.
func processRSSKiB(pid int) (int, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
			return strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
		}
	}
	return 0, fmt.Errorf("no VmRSS for %d", pid)
}
