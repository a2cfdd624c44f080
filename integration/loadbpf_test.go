package integration

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/cgprocfs/cgprocfs/kernelfs"
	"github.com/cgprocfs/cgprocfs/loadavg"
)

// Environment of the load helper: this test binary run again as a process
// with known thread states (see loadHelper).
const (
	loadHelperEnv   = "CGPROCFS_TEST_LOAD_HELPER" // cgroup.procs files, comma-separated
	loadHelperBlock = "CGPROCFS_TEST_LOAD_BLOCK"  // a file whose open never returns
)

func init() {
	if procs := os.Getenv(loadHelperEnv); procs != "" {
		if err := loadHelper(strings.Split(procs, ","), os.Getenv(loadHelperBlock)); err != nil {
			fmt.Fprintln(os.Stderr, "load helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
}

// loadHelper joins the cgroup, then holds one busy thread, four sleeping
// threads and one thread in D: a vfork parent (Go's exec clones with
// CLONE_VFORK) waits in TASK_KILLABLE until its child execs, and the child
// is stuck opening block, a FUSE file whose open the test never answers.
// It prints "R tid", "S tid" and "D tid" lines, then "ready", and waits
// for stdin to close.
func loadHelper(procs []string, block string) error {
	pid := []byte(strconv.Itoa(os.Getpid()))
	for _, f := range procs {
		if err := os.WriteFile(f, pid, 0); err != nil {
			return err
		}
	}
	tids := make(chan string)
	for i := range 6 {
		go func() {
			runtime.LockOSThread() // never unlocked: the thread stays ours
			switch i {
			case 0:
				tids <- "R " + strconv.Itoa(unix.Gettid())
				for {
				}
			case 1:
				tids <- "D " + strconv.Itoa(unix.Gettid())
				c := exec.Command(block)
				c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
				c.Start()
				select {}
			default:
				tids <- "S " + strconv.Itoa(unix.Gettid())
				select {}
			}
		}()
	}
	for range 6 {
		fmt.Println(<-tids)
	}
	fmt.Println("ready")
	bufio.NewReader(os.Stdin).ReadString('\n')
	return nil
}

// blockingFile is a FUSE file whose open waits until release closes.
type blockingFile struct {
	fusefs.Inode
	release chan struct{}
}

func (f *blockingFile) Getattr(ctx context.Context, fh fusefs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFREG | 0o755
	out.Size = 4096
	return 0
}

func (f *blockingFile) Open(ctx context.Context, flags uint32) (fusefs.FileHandle, uint32, syscall.Errno) {
	select {
	case <-f.release:
	case <-ctx.Done(): // the opener was killed
	}
	return nil, 0, syscall.EIO
}

type blockingRoot struct {
	fusefs.Inode
	file *blockingFile
}

func (r *blockingRoot) OnAdd(ctx context.Context) {
	r.AddChild("block", r.NewPersistentInode(ctx, r.file, fusefs.StableAttr{Mode: syscall.S_IFREG}), false)
}

// mountBlocking mounts a FUSE filesystem with one file, "block", whose
// open never returns until the test ends.
func mountBlocking(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	release := make(chan struct{})
	root := &blockingRoot{file: &blockingFile{release: release}}
	srv, err := fusefs.Mount(dir, root, &fusefs.Options{MountOptions: fuse.MountOptions{DirectMountStrict: true, FsName: "cgprocfs-test-block"}})
	if err != nil {
		t.Fatalf("mounting the blocking FUSE filesystem: %v", err)
	}
	t.Cleanup(func() {
		close(release)
		if err := srv.Unmount(); err != nil {
			syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	})
	return filepath.Join(dir, "block")
}

// procStates reads the state letter of each tid from /proc (0: gone).
func procStates(fs *kernelfs.FS, tids []int) map[int]byte {
	m := make(map[int]byte, len(tids))
	for _, tid := range tids {
		if s, err := fs.PidState(tid); err == nil {
			m[tid] = s
		}
	}
	return m
}

// The bpf counter is exact: on a cgroup holding a busy thread, a thread in
// D and sleeping threads, the task iterator puts every thread in the class
// its /proc/<tid>/stat letter gives (R, D or neither), read just before and
// after, and Count adds them up. A daemon with the default counter picks
// bpf wherever the counter loads here, and shows the running thread.
func TestLoadavgBPFCounterExact(t *testing.T) {
	needRoot(t)
	tidsFile := tidsName()
	kfs := kernelfs.New("/proc", kernelfs.Options{})
	defer kfs.Close()
	c, err := loadavg.NewBPFCounter(kfs, tidsFile)
	if err != nil {
		t.Skipf("the BPF counter does not load here: %v", err)
	}
	defer c.Close()
	block := mountBlocking(t)
	cg := newCgroup(t, "load-bpf", nil)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	helper := exec.Command(self)
	// The vfork parent holds its P for good (Go forks with RawSyscall,
	// signals blocked, so it cannot be preempted): spare Ps keep the
	// helper's other goroutines running, and no GC means no stop-the-world
	// that would wait for it forever.
	helper.Env = append(os.Environ(), loadHelperEnv+"="+strings.Join(cg.procsFiles(), ","), loadHelperBlock+"="+block,
		"GOMAXPROCS=8", "GOGC=off")
	stderr := syncWriter{w: &bytes.Buffer{}}
	helper.Stderr = &stderr
	helper.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	in, err := helper.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { in.Close(); helper.Process.Kill(); helper.Wait() }()
	// A helper that never gets ready is killed, which ends the scan.
	stuck := time.AfterFunc(30*time.Second, func() { helper.Process.Kill() })
	defer stuck.Stop()
	want := map[int]byte{}
	sc := bufio.NewScanner(out)
	for sc.Scan() && sc.Text() != "ready" {
		f := strings.Fields(sc.Text())
		tid, _ := strconv.Atoi(f[1])
		want[tid] = f[0][0]
	}
	if len(want) != 6 {
		t.Fatalf("helper announced %d threads, want 6; its stderr: %s", len(want), stderr.String())
	}
	var dTid int
	for tid, s := range want {
		if s == 'D' {
			dTid = tid
		}
	}
	poll(t, 10*time.Second, "the vfork parent to wait in D", func() bool {
		return procStates(kfs, []int{dTid})[dTid] == 'D'
	})

	dirfd, err := unix.Open(filepath.Dir(cg.file("cpuacct", tidsFile)), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dirfd)
	class := func(s byte) byte {
		if s == 'R' || s == 'D' {
			return s
		}
		return 0
	}
	// Go runtime threads may change state between the reads; compare
	// the threads whose letter held across the iterator run, and retry
	// a few times if one flipped and back.
	var mismatch []string
	for attempt := 0; attempt < 20; attempt++ {
		tids, err := kernelfs.ParseTids([]byte(cg.Get(t, "cpuacct", tidsFile)+"\n"), nil)
		if err != nil {
			t.Fatal(err)
		}
		before := procStates(kfs, tids)
		got, err := c.States()
		if err != nil {
			t.Fatal(err)
		}
		after := procStates(kfs, tids)
		mismatch = mismatch[:0]
		stable := 0
		for _, tid := range tids {
			if before[tid] == 0 || before[tid] != after[tid] {
				continue
			}
			stable++
			if class(before[tid]) != got[tid] {
				mismatch = append(mismatch, fmt.Sprintf("tid %d: /proc %c, bpf %q", tid, before[tid], got[tid]))
			}
		}
		for tid, s := range want {
			if s == 'S' {
				s = 0
			}
			if got[tid] != s {
				mismatch = append(mismatch, fmt.Sprintf("helper thread %d (%c): bpf %q", tid, want[tid], got[tid]))
			}
		}
		if len(mismatch) == 0 {
			t.Logf("attempt %d: %d threads in the cgroup, %d with a stable state, all classed as /proc shows", attempt+1, len(tids), stable)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(mismatch) > 0 {
		t.Fatalf("the BPF iterator disagrees with /proc: %s", strings.Join(mismatch, "; "))
	}
	// The busy thread and the vfork parent; the vfork child (blocked in
	// a FUSE open) and the runtime's threads sleep, mostly. Count runs
	// the iterator again: take a count during which /proc showed the
	// vfork parent in D throughout (seen once in the VM: it was not, so
	// the count had no D thread), and the helper's busy thread running.
	var n loadavg.Counts
	var moved []string
	for attempt := 0; ; attempt++ {
		before := procStates(kfs, []int{dTid})[dTid]
		if n, err = c.Count(dirfd, cg.Name); err != nil {
			t.Fatal(err)
		}
		after := procStates(kfs, []int{dTid})[dTid]
		if before == 'D' && after == 'D' {
			break
		}
		moved = append(moved, fmt.Sprintf("%c to %c", before, after))
		if attempt == 20 {
			t.Fatalf("the vfork parent %d did not stay in D across a count (/proc: %s); the helper's stderr: %s", dTid, strings.Join(moved, ", "), stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("Count: %+v (vfork parent left D during %d earlier counts: %v)", n, len(moved), moved)
	if n.Uninterruptible != 1 || n.Running < 1 || n.Total < 8 {
		t.Errorf("counts %+v: want exactly 1 in D, at least 1 running, at least 8 threads (6 + the runtime's + the vfork child)", n)
	}

	// The daemon's default picks bpf here, and counts the helper.
	d := startDaemon(t)
	if !strings.Contains(d.logs(), "counter=bpf") {
		t.Errorf("the BPF counter loads here, yet the default daemon did not pick it:\n%s", d.logs())
	}
	d.run(t, cg, "cat /proc/loadavg >/dev/null")
	poll(t, 20*time.Second, "the daemon to show the helper's running and D threads", func() bool {
		avg, running, total, _ := loadavgFields(t, d.run(t, cg, "cat /proc/loadavg"))
		return avg[0] > 0 && running >= 1 && total >= 8
	})
}
