package integration

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/cgprocfs/cgprocfs/procfiles"
)

// These tests kill or upgrade the serving process while a container loops
// on sysinfo(2): the holder keeps the container's seccomp listener, so its
// calls are answered again by the next server; none waits for ever, and
// the calls the dead server had received are answered by the holder with
// the kernel's own values (counted as host answers).

// loopEnv makes the probe loop on sysinfo, telling calls that got the
// container's totalram (the value of loopEnv, in bytes) from the others,
// until its stdin closes. Every 50 ms it prints a loopLine.
const loopEnv = "CGPROCFS_SYSINFO_LOOP"

// loopLine is one line of the loop: counts since it started, and the
// longest single call in microseconds.
type loopLine struct {
	Calls, Own, Host, Failed int
	LongestMicros            int64
	at                       time.Time
}

func sysinfoLoop(limit string) {
	want, _ := strconv.ParseUint(limit, 10, 64)
	runtime.LockOSThread()
	var stop sync.Once
	done := make(chan struct{})
	go func() { io.Copy(io.Discard, os.Stdin); stop.Do(func() { close(done) }) }()
	out := bufio.NewWriter(os.Stdout)
	var l loopLine
	last := time.Now()
	for {
		select {
		case <-done:
			os.Exit(0)
		default:
		}
		var buf [procfiles.SysinfoSize]byte
		start := time.Now()
		_, _, errno := unix.Syscall(unix.SYS_SYSINFO, uintptr(unsafe.Pointer(&buf)), 0, 0)
		took := time.Since(start)
		l.Calls++
		l.LongestMicros = max(l.LongestMicros, took.Microseconds())
		si, _ := procfiles.DecodeSysinfo(buf)
		switch {
		case errno != 0:
			l.Failed++
		case si.TotalRAM == want:
			l.Own++
		default:
			l.Host++
		}
		if time.Since(last) >= 50*time.Millisecond {
			fmt.Fprintf(out, "calls=%d own=%d host=%d failed=%d longest=%d\n", l.Calls, l.Own, l.Host, l.Failed, l.LongestMicros)
			out.Flush()
			last = time.Now()
		}
	}
}

// loopWatch collects a loop container's lines as they arrive.
type loopWatch struct {
	mu    sync.Mutex
	lines []loopLine
	ended bool
}

func watchLoop(lc *liveContainer) *loopWatch {
	w := &loopWatch{}
	go func() {
		for s := range lc.lines {
			var l loopLine
			if _, err := fmt.Sscanf(s, "calls=%d own=%d host=%d failed=%d longest=%d", &l.Calls, &l.Own, &l.Host, &l.Failed, &l.LongestMicros); err != nil {
				continue
			}
			l.at = time.Now()
			w.mu.Lock()
			w.lines = append(w.lines, l)
			w.mu.Unlock()
		}
		w.mu.Lock()
		w.ended = true
		w.mu.Unlock()
	}()
	return w
}

func (w *loopWatch) last() (loopLine, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.lines) == 0 {
		return loopLine{}, false
	}
	return w.lines[len(w.lines)-1], true
}

// longestGap is the longest time between two lines from since on (and
// from the last line to now).
func (w *loopWatch) longestGap(since time.Time) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	var gap time.Duration
	prev := since
	for _, l := range w.lines {
		if l.at.Before(since) {
			continue
		}
		gap = max(gap, l.at.Sub(prev))
		prev = l.at
	}
	return max(gap, time.Since(prev))
}

func TestSysinfoAcrossServerKill(t *testing.T) { sysinfoAcross(t, false) }

func TestSysinfoAcrossUpgrade(t *testing.T) { sysinfoAcross(t, true) }

// sysinfoAcross: a container loops on sysinfo while the server is killed
// (SIGKILL) or upgraded (SIGHUP to the holder). No call waits more than
// 1 s (plus the VM's start-up slack), none fails, the next server answers
// the container's calls, and the test reports how many got the host's
// values in between; an upgrade drains, so none does.
func sysinfoAcross(t *testing.T, upgrade bool) {
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		t.Skip("the agent answers sysinfo on amd64 and arm64 only")
	}
	d, sock := sysinfoDaemon(t)
	resend := resendKernel(t, d)
	old, _ := statusPids(t, d.Mountpoint)
	if old == 0 {
		t.Fatalf("no server pid in cgprocfs status:\n%s", d.logs())
	}
	c := newSysinfoBundle(t, d, 200*mib, sock, "/probe")
	c.editSpec(t, func(spec *specs.Spec) {
		spec.Process.Env = append(spec.Process.Env, loopEnv+"="+strconv.FormatInt(200*mib, 10))
	})
	lc := startLiveContainer(t, c)
	w := watchLoop(lc)
	poll(t, 20*time.Second, "the container's loop answered by the agent", func() bool {
		l, _ := w.last()
		return l.Own > 0
	})
	before, _ := w.last()
	act := time.Now()
	what := "server kill"
	if upgrade {
		what = "upgrade"
		if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	} else if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var server int
	poll(t, 30*time.Second, "a new server", func() bool {
		server, _ = statusPids(t, d.Mountpoint)
		return server != 0 && server != old
	})
	poll(t, 20*time.Second, "the new server taking over the container's listener", func() bool {
		// The first server says it too, with none.
		return strings.Count(d.logs(), "took over the holder's listeners") >= 2
	})
	resumed, _ := w.last()
	poll(t, 20*time.Second, "calls answered by the new server", func() bool {
		l, _ := w.last()
		return l.Own > resumed.Own
	})
	back := time.Since(act)
	// Some more calls after the first the new server answered, so that
	// the figures below cover its steady answering too.
	poll(t, 20*time.Second, "more calls answered by the new server", func() bool {
		l, _ := w.last()
		return l.Own >= resumed.Own+20
	})
	after, _ := w.last()
	gap := w.longestGap(act)
	host := after.Host - before.Host
	t.Logf("sysinfo across a %s (resend kernel: %v): %d calls in all, %d after the %s: %d own, %d host values (answered by the holder or the kernel in the gap), %d failed; longest call %v, longest gap between lines %v; answered again %v after; server %d -> %d",
		what, resend, after.Calls, after.Calls-before.Calls, what, after.Own-before.Own, host, after.Failed-before.Failed,
		time.Duration(after.LongestMicros)*time.Microsecond, gap.Round(time.Millisecond), back.Round(time.Millisecond), old, server)
	limit := time.Second + startupSlack()
	if l := time.Duration(after.LongestMicros) * time.Microsecond; l > limit {
		t.Errorf("a sysinfo call waited %v, want at most %v", l, limit)
	}
	if gap > limit {
		t.Errorf("the loop printed nothing for %v, want progress within %v", gap, limit)
	}
	if after.Failed != 0 {
		t.Errorf("%d sysinfo calls failed (ENOSYS: the listener was closed)", after.Failed)
	}
	if upgrade && host != 0 {
		t.Errorf("%d calls got the host's values across the upgrade, want 0 (the old server drains)", host)
	}
	if d.cmd.ProcessState != nil {
		t.Error("the holder exited")
	}
}
