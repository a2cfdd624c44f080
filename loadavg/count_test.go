package loadavg

import (
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cgprocfs/cgprocfs/kernelfs"
)

// FuzzParseReply feeds arbitrary netlink messages to the reply and
// attribute parsers: they must fail cleanly, never panic.
func FuzzParseReply(f *testing.F) {
	msg := make([]byte, unix.NLMSG_HDRLEN+unix.GENL_HDRLEN+4+40)
	binary.NativeEndian.PutUint32(msg, uint32(len(msg)))
	a := msg[unix.NLMSG_HDRLEN+unix.GENL_HDRLEN:]
	binary.NativeEndian.PutUint16(a, 44)
	binary.NativeEndian.PutUint16(a[2:], unix.CGROUPSTATS_TYPE_CGROUP_STATS)
	binary.NativeEndian.PutUint64(a[4+8:], 3) // nr_running
	f.Add(msg)
	f.Add([]byte{16, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 234, 255, 255, 255})
	f.Fuzz(func(t *testing.T, b []byte) {
		attrs, _, err := parseReply(b)
		if err != nil {
			return
		}
		parseCgroupStatsReply(attrs)
	})
}

// The threads counter, on a directory whose "tasks" lists this process's
// threads: it counts them all, finds at least the reading thread running,
// and fails for a cgroup without a thread list.
func TestThreadsCounterOwnThreads(t *testing.T) {
	fd, dir, list := ownThreadsDir(t)
	c := NewThreadsCounter(testFS(t), "tasks")
	defer c.Close()
	var n Counts
	var err error
	for range 3 { // the busy thread may be caught preempted
		if n, err = c.Count(fd, dir); err != nil {
			t.Fatal(err)
		}
		if n.Running >= 1 {
			break
		}
	}
	if n.Total != uint64(len(list)) || n.Running < 1 {
		t.Fatalf("counts %+v for %d threads, want all counted and one running", n, len(list))
	}
	os.Remove(filepath.Join(dir, "tasks"))
	if _, err := c.Count(fd, dir); err == nil {
		t.Fatal("no error for a cgroup without a thread list")
	}
}

// A kept descriptor of an exited thread is never read as the thread that
// reuses its number: the read fails and the number is opened afresh.
func TestThreadsCounterExitedThread(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command("sleep", "100")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	os.WriteFile(filepath.Join(dir, "tasks"), []byte(strconv.Itoa(pid)+"\n"), 0o644)
	c := NewThreadsCounter(testFS(t), "tasks")
	defer c.Close()
	fd, _ := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	defer unix.Close(fd)
	if n, err := c.Count(fd, dir); err != nil || n.Total != 1 {
		t.Fatalf("counts %+v, %v", n, err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if n, err := c.Count(fd, dir); err != nil || n.Total != 0 {
		t.Fatalf("after exit: counts %+v, %v; want the thread gone", n, err)
	}
}

// On a real v1 cgroup, cgroupstats and the threads counter agree on busy
// and sleeping threads, and neither counts a child cgroup's threads.
func TestCgroupstatsAgreesWithThreads(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create cgroups")
	}
	base := "/sys/fs/cgroup/cpuacct"
	if _, err := os.Stat(base + "/tasks"); err != nil {
		t.Skip("needs a cgroup v1 cpuacct hierarchy (cgroupstats is v1 only)")
	}
	cs, err := NewCgroupstatsCounter()
	if err != nil {
		t.Skipf("no TASKSTATS: %v", err)
	}
	defer cs.Close()
	dir := filepath.Join(base, "cgprocfs-test-cgroupstats-"+strconv.Itoa(os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	child := dir + "/child"
	if err := os.Mkdir(child, 0o755); err != nil {
		t.Fatal(err)
	}
	var cmds []*exec.Cmd
	defer func() {
		for _, c := range cmds {
			c.Process.Kill()
			c.Wait()
		}
		for _, d := range []string{child, dir} {
			for i := 0; i < 100 && os.Remove(d) != nil; i++ {
				time.Sleep(20 * time.Millisecond)
			}
		}
	}()
	start := func(cg, script string) {
		c := exec.Command("sh", "-c", "echo $$ > "+cg+"/cgroup.procs && exec "+script)
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, c)
	}
	start(dir, "sh -c 'while :; do :; done'")
	// cat blocked on an open, empty pipe sleeps in plain
	// TASK_INTERRUPTIBLE, a state cgroupstats buckets (a nanosleep or
	// futex sleep is freezable on 6.x and falls in no bucket).
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Close()
	c := exec.Command("sh", "-c", "echo $$ > "+dir+"/cgroup.procs && exec cat")
	c.Stdin = pr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	pr.Close()
	cmds = append(cmds, c)
	start(child, "sh -c 'while :; do :; done'")
	deadline := time.Now().Add(10 * time.Second)
	for {
		a, _ := os.ReadFile(dir + "/tasks")
		b, _ := os.ReadFile(child + "/tasks")
		if len(strings.Fields(string(a))) == 2 && len(strings.Fields(string(b))) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("processes did not join the cgroups")
		}
		time.Sleep(20 * time.Millisecond)
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	th := NewThreadsCounter(testFS(t), "tasks")
	defer th.Close()
	// cat takes a moment to reach its read on a busy host; the busy
	// loop may be caught preempted, which is still R. Poll until both
	// see exactly one running thread.
	var a, b Counts
	deadline = time.Now().Add(20 * time.Second)
	for {
		if a, err = cs.Count(fd, dir); err != nil {
			t.Fatal(err)
		}
		if b, err = th.Count(fd, dir); err != nil {
			t.Fatal(err)
		}
		if a.Running == 1 && b.Running == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cgroupstats %+v, threads %+v: want one running thread (the child's busy thread is not counted)", a, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("cgroupstats %+v, threads %+v", a, b)
	if a.Total != 2 || b.Total != 2 || a.Uninterruptible != 0 || b.Uninterruptible != 0 {
		t.Fatalf("cgroupstats %+v, threads %+v: want 2 threads, none in D", a, b)
	}
}

// ownThreadsDir starts one busy thread for the test's length and returns a
// directory (open as fd) whose "tasks" file lists this process's threads,
// as a cgroup's would.
func ownThreadsDir(t *testing.T) (fd int, dir string, list []string) {
	t.Helper()
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	go func() {
		runtime.LockOSThread()
		for {
			select {
			case <-stop:
				return
			default:
			}
		}
	}()
	dir = t.TempDir()
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		list = append(list, e.Name())
	}
	if err := os.WriteFile(filepath.Join(dir, "tasks"), []byte(strings.Join(list, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fd, err = unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd, dir, list
}

// testFS is a kernel-file reader closed when the test ends.
func testFS(t testing.TB) *kernelfs.FS {
	fs := kernelfs.New("/proc", kernelfs.Options{})
	t.Cleanup(func() { fs.Close() })
	return fs
}

func TestCountsKeepNewestThreads(t *testing.T) {
	var a Counts
	for _, tid := range []int{5, 9, 1, 7} {
		a.NoteNewest(tid)
	}
	if a.Newest != [3]int{9, 7, 5} {
		t.Fatalf("newest of 5 9 1 7: %v", a.Newest)
	}
	b := Counts{Running: 1, Total: 2, Newest: [3]int{8, 2}}
	if s := a.Add(b); s.Newest != [3]int{9, 8, 7} || s.Total != 2 || s.Running != 1 {
		t.Fatalf("sum: %+v", s)
	}
	if s := b.Add(Counts{}); s.Newest != [3]int{8, 2, 0} {
		t.Fatalf("adding nothing: %v", s.Newest)
	}
}
