package integration

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// atFDCWD is AT_FDCWD (-100) as the raw openat takes it.
var atFDCWD = uintptr(^uint(99))

// Environment of the exit helpers: this test binary run again, as the init
// of a new pid namespace in a test cgroup.
const (
	exitHelperEnv     = "CGPROCFS_TEST_EXIT_HELPER" // "zombie-leader", "big-init" or "reader"
	exitProcsEnv      = "CGPROCFS_TEST_EXIT_PROCS"  // cgroup.procs files to join, comma-separated
	exitMountEnv      = "CGPROCFS_TEST_EXIT_MOUNT"  // the daemon's mount point
	exitWantMemEnv    = "CGPROCFS_TEST_EXIT_MEM"    // the MemTotal line's kB the container must see
	exitAllocMBEnv    = "CGPROCFS_TEST_EXIT_ALLOC"  // MiB the big init holds when it exits
	exitHelperSeconds = 3
)

func init() {
	switch os.Getenv(exitHelperEnv) {
	case "":
		return
	case "zombie-leader":
		// The main goroutine stays on the main thread, which the
		// helper ends with exit(2) while a reader thread goes on.
		runtime.LockOSThread()
		zombieLeader()
	case "big-init":
		bigInit()
	case "reader":
		reader(time.Hour, os.NewFile(3, "ready"))
		os.Exit(0)
	}
	fmt.Fprintln(os.Stderr, "unknown exit helper")
	os.Exit(2)
}

func joinFromEnv() {
	for _, f := range strings.Split(os.Getenv(exitProcsEnv), ",") {
		if err := os.WriteFile(f, []byte(strconv.Itoa(os.Getpid())), 0); err != nil {
			fmt.Println("FAIL joining", f, err)
			os.Exit(1)
		}
	}
}

// reader reads the daemon's meminfo and cpu/online for d and prints "HOST"
// with the value each time it sees something other than the container's
// (errors are allowed: EIO is the answer when the container cannot be known),
// and "reads N" every 100 reads; after the first 100 it writes a byte to
// ready, if given.
func reader(d time.Duration, ready *os.File) {
	mp := os.Getenv(exitMountEnv)
	wantMem := os.Getenv(exitWantMemEnv)
	w := bufio.NewWriter(os.Stdout)
	n := 0
	for end := time.Now().Add(d); time.Now().Before(end); n++ {
		if mem, err := os.ReadFile(mp + "/proc/meminfo"); err == nil {
			line, _, _ := bytes.Cut(mem, []byte("\n"))
			if f := strings.Fields(string(line)); len(f) < 2 || f[1] != wantMem {
				fmt.Fprintf(w, "HOST meminfo %q\n", line)
				w.Flush()
			}
		}
		if cpus, err := os.ReadFile(mp + "/sys/devices/system/cpu/online"); err == nil && string(cpus) != "0\n" {
			fmt.Fprintf(w, "HOST online %q\n", cpus)
			w.Flush()
		}
		if n%100 == 0 {
			fmt.Fprintf(w, "reads %d\n", n)
			w.Flush()
			if n == 100 && ready != nil {
				ready.Write([]byte{1})
				ready.Close()
			}
		}
	}
	fmt.Fprintf(w, "reads %d\n", n)
	w.Flush()
}

// zombieLeader joins the cgroup, starts a reader thread, and ends the main
// thread alone (exit, not exit_group): the thread group leader, which is the
// pid namespace's init, stays a zombie while the reader runs.
//
// Go's runtime does not expect its main thread to vanish: a garbage
// collection or preemption that waits for it never ends. So GC is off and the
// reader, once the leader is gone, allocates nothing and makes raw system
// calls only.
func zombieLeader() {
	joinFromEnv()
	debug.SetGCPercent(-1)
	r := newRawReader()
	started := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		close(started)
		// Let the leader go first, without the scheduler's help.
		ts := syscall.Timespec{Nsec: 200e6}
		syscall.RawSyscall(syscall.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&ts)), 0, 0)
		r.run(exitHelperSeconds * time.Second)
		syscall.RawSyscall(syscall.SYS_EXIT_GROUP, 0, 0, 0)
	}()
	<-started
	fmt.Println("leader exits")
	// Syscall, not RawSyscall: it hands the leader's P back to the
	// scheduler before the thread is gone.
	syscall.Syscall(syscall.SYS_EXIT, 0, 0, 0)
}

// rawReader is reader with everything allocated up front.
type rawReader struct {
	meminfo, online *byte
	wantMem, buf    []byte
	out             []byte
}

func newRawReader() *rawReader {
	mp := os.Getenv(exitMountEnv)
	r := &rawReader{wantMem: []byte(" " + os.Getenv(exitWantMemEnv) + " kB\n"), buf: make([]byte, 8192), out: make([]byte, 0, 64)}
	r.meminfo, _ = syscall.BytePtrFromString(mp + "/proc/meminfo")
	r.online, _ = syscall.BytePtrFromString(mp + "/sys/devices/system/cpu/online")
	return r
}

// read reads path into r.buf; -1 on an error.
func (r *rawReader) read(path *byte) int {
	fd, _, e := syscall.RawSyscall6(syscall.SYS_OPENAT, atFDCWD, uintptr(unsafe.Pointer(path)), syscall.O_RDONLY, 0, 0, 0)
	if e != 0 {
		return -1
	}
	defer syscall.RawSyscall(syscall.SYS_CLOSE, fd, 0, 0)
	n := 0
	for n < len(r.buf) {
		m, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&r.buf[n])), uintptr(len(r.buf)-n))
		if e != 0 {
			return -1
		}
		if m == 0 {
			break
		}
		n += int(m)
	}
	return n
}

func (r *rawReader) say(b []byte) {
	syscall.RawSyscall(syscall.SYS_WRITE, 1, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
}

func (r *rawReader) run(d time.Duration) {
	hostMem, hostCPUs := []byte("HOST meminfo\n"), []byte("HOST online\n")
	n := 0
	for end := time.Now().Add(d); time.Now().Before(end); n++ {
		if m := r.read(r.meminfo); m > 0 {
			line := r.buf[:m]
			if i := bytes.IndexByte(line, '\n'); i >= 0 {
				line = line[:i+1]
			}
			if !bytes.HasSuffix(line, r.wantMem) {
				r.say(hostMem)
			}
		}
		if m := r.read(r.online); m > 0 && string(r.buf[:m]) != "0\n" {
			r.say(hostCPUs)
		}
	}
	r.out = strconv.AppendInt(append(r.out[:0], "reads "...), int64(n), 10)
	r.say(append(r.out, '\n'))
}

// bigInit joins the cgroup, touches exitAllocMBEnv MiB, starts readers in
// its pid namespace and exits: while the kernel frees its memory (and its
// cgroup file reads "/" on v1), the readers go on until the namespace's end
// kills them.
func bigInit() {
	joinFromEnv()
	mb, _ := strconv.Atoi(os.Getenv(exitAllocMBEnv))
	mem, err := syscall.Mmap(-1, 0, mb<<20, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		fmt.Println("FAIL mmap", err)
		os.Exit(1)
	}
	for i := 0; i < len(mem); i += 4096 {
		mem[i] = 1
	}
	self, _ := os.Executable()
	// Each reader says on this pipe when it has read 100 times, so the
	// init exits while they read, however slow their start (under TCG
	// an exec takes long).
	ready, readyW, err := os.Pipe()
	if err != nil {
		fmt.Println("FAIL pipe", err)
		os.Exit(1)
	}
	const readers = 2
	for range readers {
		r := exec.Command(self)
		r.Env = append(os.Environ(), exitHelperEnv+"=reader")
		r.Stdout = os.Stdout
		r.ExtraFiles = []*os.File{readyW}
		if err := r.Start(); err != nil {
			fmt.Println("FAIL starting reader", err)
			os.Exit(1)
		}
	}
	readyW.Close()
	if _, err := io.ReadFull(ready, make([]byte, readers)); err != nil {
		fmt.Println("FAIL waiting for the readers", err)
		os.Exit(1)
	}
	fmt.Println("init exits")
	os.Exit(0)
}

// runExitHelper runs this binary as the init of a new pid namespace in cg
// and returns what it and its readers printed.
func runExitHelper(t *testing.T, d *daemon, cg *testCgroup, kind string, env ...string) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("unshare", "-p", "-f", "--kill-child", self)
	cmd.Env = append(append(os.Environ(), "GODEBUG=asyncpreemptoff=1", exitHelperEnv+"="+kind, exitProcsEnv+"="+strings.Join(cg.procsFiles(), ","),
		exitMountEnv+"="+d.Mountpoint), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%s helper did not finish:\n%s", kind, out.String())
	}
	if err != nil {
		t.Logf("%s helper: %v", kind, err)
	}
	return out.String()
}

func checkNoHostView(t *testing.T, out string) {
	t.Helper()
	reads := 0
	for l := range strings.SplitSeq(out, "\n") {
		if strings.HasPrefix(l, "HOST") || strings.HasPrefix(l, "FAIL") {
			t.Errorf("%s", l)
		}
		if n, ok := strings.CutPrefix(l, "reads "); ok {
			if v, _ := strconv.Atoi(n); v > reads {
				reads = v
			}
		}
	}
	if reads < 100 {
		t.Errorf("only %d reads; the helper's output:\n%s", reads, out)
	}
	t.Logf("%d reads by one reader", reads)
}

// An init whose main thread has exited (a zombie leader, as after
// pthread_exit) while another thread reads: the container never gets the
// host's MemTotal or CPUs, though the leader's cgroup file reads "/" (v1)
// or nothing.
func TestExitingInitZombieLeaderNeverHost(t *testing.T) {
	d := startDaemon(t)
	cg := newCgroup(t, "zombie-leader", nil)
	cg.SetMemoryLimit(t, 128<<20)
	limitCPUs(t, cg)
	out := runExitHelper(t, d, cg, "zombie-leader", exitWantMemEnv+"=131072")
	if !strings.Contains(out, "leader exits") {
		t.Fatalf("helper output:\n%s", out)
	}
	checkNoHostView(t, out)
}

// A container stopping while its init frees a lot of memory, with readers
// in a loop until the namespace's end kills them: zero host-valued reads.
func TestExitingInitWithMemoryToFreeNeverHost(t *testing.T) {
	d := startDaemon(t)
	cg := newCgroup(t, "big-init", nil)
	allocMB := 3 << 10
	if os.Getenv("CGPROCFS_VM") != "" {
		allocMB = 512 // the VM has 2 GiB
	}
	cg.SetMemoryLimit(t, int64(allocMB+512)<<20)
	limitCPUs(t, cg)
	want := strconv.Itoa((allocMB + 512) << 10)
	out := runExitHelper(t, d, cg, "big-init", exitWantMemEnv+"="+want, exitAllocMBEnv+"="+strconv.Itoa(allocMB))
	if !strings.Contains(out, "init exits") {
		t.Fatalf("helper output:\n%s", out)
	}
	checkNoHostView(t, out)
}

// limitCPUs puts cg on CPU 0 alone.
func limitCPUs(t *testing.T, cg *testCgroup) {
	t.Helper()
	if unified {
		cg.Set(t, "cpuset", "cpuset.cpus", "0")
	} else {
		cg.Set(t, "cpuset", "cpuset.cpus", "0")
	}
}
