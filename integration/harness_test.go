// Package integration holds root-only end-to-end tests: they start the real
// daemon on a temporary mount point, create real cgroups (named
// cgprocfs-test-*), run real tools inside them with the served files
// bind-mounted over /proc, and clean up all of it, also when they fail.
//
// The same suite runs on a cgroup v1 (hybrid) host and on a pure cgroup v2
// kernel (see hack/vm); tests that only make sense on one mode say so when
// they skip.
package integration

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/cgroups/v3"

	cgfs "github.com/cgprocfs/cgprocfs/fs"
)

var (
	// binary is the cgprocfs binary under test: $CGPROCFS_BIN, or built
	// from this checkout by TestMain.
	binary string
	// unified is true on a pure cgroup v2 host.
	unified bool
	// skipReason is set when the suite cannot run here.
	skipReason string
)

const cgroupRoot = "/sys/fs/cgroup"

func TestMain(m *testing.M) {
	switch {
	case os.Geteuid() != 0:
		skipReason = "integration tests need root: they mount FUSE and create cgroups"
	case !exists("/dev/fuse"):
		skipReason = "integration tests need /dev/fuse"
	}
	mode := cgroups.Mode()
	unified = mode == cgroups.Unified
	if skipReason == "" && mode == cgroups.Unavailable {
		skipReason = "no cgroup hierarchy at " + cgroupRoot
	}
	if skipReason == "" {
		fmt.Printf("integration: cgroup mode %s (unified=%v)\n", modeName(mode), unified)
		binary = os.Getenv("CGPROCFS_BIN")
		if binary == "" {
			dir, err := os.MkdirTemp("", "cgprocfs-test-bin-")
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			binary = filepath.Join(dir, "cgprocfs")
			out, err := exec.Command("go", "build", "-o", binary, "..").CombinedOutput()
			if err != nil {
				fmt.Fprintf(os.Stderr, "building cgprocfs: %v\n%s", err, out)
				os.Exit(1)
			}
			code := m.Run()
			os.RemoveAll(dir)
			os.Exit(code)
		}
	}
	os.Exit(m.Run())
}

func modeName(m cgroups.CGMode) string {
	switch m {
	case cgroups.Legacy:
		return "v1 (legacy)"
	case cgroups.Hybrid:
		return "v1 (hybrid)"
	case cgroups.Unified:
		return "cgroup2 (unified)"
	}
	return "unavailable"
}

// needRoot skips the test when the suite cannot run here.
func needRoot(t *testing.T) {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// poll calls cond until it returns true or the timeout passes.
func poll(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// daemon is a running cgprocfs.
type daemon struct {
	Mountpoint string
	// cmd is `cgprocfs mount`: the holder of the connection, whose
	// child serves (server), or the server itself with --holder=false.
	cmd    *exec.Cmd
	server atomic.Int64
	log    *bytes.Buffer
	// exited is closed once cmd and the server it started are gone.
	exited chan struct{}
}

// serverPid is the pid of the process that serves the mount (the holder's
// child), as `cgprocfs status` knows it.
func (d *daemon) serverPid() int { return int(d.server.Load()) }

// readServerPid reads the server's pid from the state the daemon of mp
// writes; 0 until it names one started by holder (or holder itself).
func readServerPid(mp string, holder int) int {
	st, err := cgfs.ReadState(cgfs.StateDir, mp)
	if err != nil || (st.HolderPid != holder && st.ServerPid != holder) {
		return 0
	}
	return st.ServerPid
}

// startDaemon mounts cgprocfs on a fresh temporary mount point and stops it
// when the test ends.
func startDaemon(t *testing.T, args ...string) *daemon {
	t.Helper()
	needRoot(t)
	// Every user may read the mount (allow_other), so let them reach it.
	dir := t.TempDir()
	for _, p := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return startDaemonAt(t, filepath.Join(dir, "mnt"), args...)
}

// startDaemonAt is startDaemon on a given mount point.
func startDaemonAt(t *testing.T, mp string, args ...string) *daemon {
	return startDaemonCmd(t, mp, nil, args...)
}

// startDaemonWrapped is startDaemon with the daemon's command line run by
// wrapper (a shell that sets limits, say, then execs it).
func startDaemonWrapped(t *testing.T, wrapper []string, args ...string) *daemon {
	t.Helper()
	needRoot(t)
	dir := t.TempDir()
	for _, p := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return startDaemonCmd(t, filepath.Join(dir, "mnt"), wrapper, args...)
}

func startDaemonCmd(t *testing.T, mp string, wrapper []string, args ...string) *daemon {
	t.Helper()
	return startDaemonExe(t, binary, mp, wrapper, args...)
}

// startDaemonExe is startDaemonCmd with the cgprocfs binary at exe.
func startDaemonExe(t *testing.T, exe, mp string, wrapper []string, args ...string) *daemon {
	t.Helper()
	needRoot(t)
	d := &daemon{Mountpoint: mp, log: &bytes.Buffer{}, exited: make(chan struct{})}
	argv := append(append(append(wrapper[:len(wrapper):len(wrapper)], exe, "mount"), args...), mp)
	d.cmd = exec.Command(argv[0], argv[1:]...)
	d.cmd.Stderr = &syncWriter{w: d.log}
	d.cmd.Stdout = d.cmd.Stderr
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("starting cgprocfs: %v", err)
	}
	go func() {
		d.cmd.Wait()
		// The server dies with its holder (PDEATHSIG); let it be gone
		// too, so that the connection has ended.
		if pid := d.serverPid(); pid != 0 && pid != d.cmd.Process.Pid {
			for end := time.Now().Add(10 * time.Second); time.Now().Before(end) && syscall.Kill(pid, 0) == nil; {
				time.Sleep(5 * time.Millisecond)
			}
		}
		close(d.exited)
	}()
	t.Cleanup(func() { d.stop(t) })
	deadline := time.Now().Add(10 * time.Second)
	// Wait for a read to succeed: a stale mount may be in place already.
	for {
		if _, err := os.ReadFile(filepath.Join(mp, "proc", "meminfo")); err == nil && isMounted(mp) {
			if pid := readServerPid(mp, d.cmd.Process.Pid); pid != 0 {
				d.server.Store(int64(pid))
				break
			}
		}
		select {
		case <-d.exited:
			t.Fatalf("cgprocfs exited before mounting: %s", d.logs())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("cgprocfs did not mount %s: %s", mp, d.logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return d
}

func (d *daemon) logs() string {
	if w, ok := d.cmd.Stderr.(*syncWriter); ok {
		return w.String()
	}
	return ""
}

// Path is the path of a served file, e.g. "proc/meminfo".
func (d *daemon) Path(rel string) string { return filepath.Join(d.Mountpoint, rel) }

// stop sends SIGTERM and makes sure the mount is gone whatever happened.
func (d *daemon) stop(t *testing.T) {
	select {
	case <-d.exited:
	default:
		d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.exited:
		case <-time.After(5 * time.Second):
			t.Errorf("cgprocfs did not exit 5 s after SIGTERM")
			d.cmd.Process.Kill()
			<-d.exited
		}
	}
	if isMounted(d.Mountpoint) {
		syscall.Unmount(d.Mountpoint, syscall.MNT_DETACH)
	}
	// A killed daemon cannot remove the state file it wrote for status.
	os.Remove(filepath.Join("/run/cgprocfs", "mount"+strings.ReplaceAll(d.Mountpoint, "/", "_")+".json"))
	if t.Failed() {
		t.Logf("cgprocfs log:\n%s", d.logs())
	}
}

// isMounted tells whether a cgprocfs filesystem is mounted at mp.
func isMounted(mp string) bool {
	data, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 2 && f[1] == mp && f[2] == "fuse.cgprocfs" {
			return true
		}
	}
	return false
}

var cgroupSeq atomic.Int64

// testCgroup is a cgroup the test created, in every controller it uses.
type testCgroup struct {
	Name string // path relative to the hierarchy root, e.g. "cgprocfs-test-x/child"
}

// v1Controllers are the v1 controllers tests put their cgroups in.
var v1Controllers = []string{"memory", "cpu", "cpuacct", "cpuset", "blkio", "pids"}

// newCgroup creates a cgroup named cgprocfs-test-<name>-<n> (or a child of
// parent when given) and removes it, killing what runs in it, when the test
// ends.
func newCgroup(t *testing.T, name string, parent *testCgroup) *testCgroup {
	t.Helper()
	needRoot(t)
	var rel string
	if parent == nil {
		rel = fmt.Sprintf("cgprocfs-test-%s-%d-%d", name, os.Getpid(), cgroupSeq.Add(1))
	} else {
		rel = parent.Name + "/" + name
	}
	return makeCgroup(t, rel)
}

// makeCgroup creates the cgroup at rel (below the hierarchy's root) and
// removes it, killing what runs in it, when the test ends.
func makeCgroup(t *testing.T, rel string) *testCgroup {
	t.Helper()
	cg := &testCgroup{Name: rel}
	if unified {
		// A v2 cgroup has the controllers its parent enables in
		// cgroup.subtree_control. The new cgroup itself enables none, so
		// that processes may join it (no internal processes).
		enableControllers(t, filepath.Dir(cg.dirs()[0]))
	}
	for _, dir := range cg.dirs() {
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatalf("creating cgroup: %v", err)
		}
	}
	t.Cleanup(func() { cg.remove(t) })
	if !unified {
		// A v1 cpuset takes no tasks until it has cpus and mems.
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			v, err := os.ReadFile(filepath.Join(filepath.Dir(cg.file("cpuset", f)), "..", f))
			if err != nil {
				t.Fatalf("reading parent %s: %v", f, err)
			}
			cg.Set(t, "cpuset", f, strings.TrimSpace(string(v)))
		}
	}
	return cg
}

// v2Controllers are the controllers tests use on cgroup v2.
var v2Controllers = []string{"cpuset", "cpu", "io", "memory", "pids"}

// enableControllers enables in dir's cgroup.subtree_control those of
// v2Controllers that dir has and does not enable yet; it changes nothing
// that is enabled already.
func enableControllers(t *testing.T, dir string) {
	t.Helper()
	have, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		t.Fatalf("reading controllers of %s: %v", dir, err)
	}
	on, err := os.ReadFile(filepath.Join(dir, "cgroup.subtree_control"))
	if err != nil {
		t.Fatalf("reading subtree_control of %s: %v", dir, err)
	}
	var add []string
	for _, c := range v2Controllers {
		if slices.Contains(strings.Fields(string(have)), c) && !slices.Contains(strings.Fields(string(on)), c) {
			add = append(add, "+"+c)
		}
	}
	if len(add) == 0 {
		return
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte(strings.Join(add, " ")), 0); err != nil {
		t.Fatalf("enabling %v in %s: %v", add, dir, err)
	}
}

// dirs are the cgroup's directories, one per v1 controller or one on v2.
func (cg *testCgroup) dirs() []string {
	if unified {
		return []string{filepath.Join(cgroupRoot, cg.Name)}
	}
	var ds []string
	for _, c := range v1Controllers {
		ds = append(ds, filepath.Join(cgroupRoot, c, cg.Name))
	}
	return ds
}

// file is the path of a cgroup file; controller is ignored on v2.
func (cg *testCgroup) file(controller, name string) string {
	if unified {
		return filepath.Join(cgroupRoot, cg.Name, name)
	}
	return filepath.Join(cgroupRoot, controller, cg.Name, name)
}

// Set writes a cgroup file, failing the test on error.
func (cg *testCgroup) Set(t *testing.T, controller, name, value string) {
	t.Helper()
	if err := os.WriteFile(cg.file(controller, name), []byte(value), 0); err != nil {
		t.Fatalf("writing %s to %s: %v", value, cg.file(controller, name), err)
	}
}

// Get reads a cgroup file.
func (cg *testCgroup) Get(t *testing.T, controller, name string) string {
	t.Helper()
	b, err := os.ReadFile(cg.file(controller, name))
	if err != nil {
		t.Fatalf("reading %s: %v", cg.file(controller, name), err)
	}
	return strings.TrimSpace(string(b))
}

// SetMemoryLimit sets the memory limit in bytes on v1 or v2.
func (cg *testCgroup) SetMemoryLimit(t *testing.T, bytes int64) {
	t.Helper()
	if unified {
		cg.Set(t, "memory", "memory.max", strconv.FormatInt(bytes, 10))
	} else {
		cg.Set(t, "memory", "memory.limit_in_bytes", strconv.FormatInt(bytes, 10))
	}
}

// procsFiles are the cgroup.procs files a process joins the cgroup through.
func (cg *testCgroup) procsFiles() []string {
	var fs []string
	for _, d := range cg.dirs() {
		fs = append(fs, filepath.Join(d, "cgroup.procs"))
	}
	return fs
}

// remove kills everything in the cgroup and its children, then removes them,
// deepest first.
func (cg *testCgroup) remove(t *testing.T) {
	for _, dir := range cg.dirs() {
		var all []string
		filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				all = append(all, p)
			}
			return nil
		})
		for i := len(all) - 1; i >= 0; i-- {
			removeCgroupDir(t, all[i])
		}
	}
}

func removeCgroupDir(t *testing.T, dir string) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		killProcs(dir)
		err := os.Remove(dir)
		if err == nil || errors.Is(err, os.ErrNotExist) {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("removing cgroup %s: %v", dir, err)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// killProcs sends SIGKILL to every process in the cgroup directory dir.
func killProcs(dir string) {
	procs, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	for _, f := range strings.Fields(string(procs)) {
		if pid, err := strconv.Atoi(f); err == nil {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// prologue builds the shell prologue that joins cg and bind-mounts every
// file the daemon serves over the file of the same path under / (it runs in
// a private mount namespace).
func (d *daemon) prologue(cg *testCgroup) string {
	var b strings.Builder
	b.WriteString("set -e\n")
	if cg != nil {
		for _, f := range cg.procsFiles() {
			// A v2 cgroup whose children use controllers holds no
			// processes; its init.scope stands for it (cgprocfs trims a
			// trailing /init.scope), as with systemd in a container.
			on, _ := os.ReadFile(filepath.Join(filepath.Dir(f), "cgroup.subtree_control"))
			if unified && len(bytes.TrimSpace(on)) > 0 {
				scope := filepath.Join(filepath.Dir(f), "init.scope")
				fmt.Fprintf(&b, "mkdir -p %s\n", scope)
				f = filepath.Join(scope, "cgroup.procs")
			}
			fmt.Fprintf(&b, "echo $$ > %s\n", f)
		}
	}
	for _, rel := range d.binds() {
		if target := "/" + strings.TrimSuffix(rel, "/"); exists(target) {
			fmt.Fprintf(&b, "mount --bind %s %s\n", d.Path(rel), target)
		}
	}
	b.WriteString("set +e\n")
	return b.String()
}

// binds lists what the hook, NRI and attach bind from the daemon's mount,
// as they list it (fs.ServedFiles): its files, and the directories it
// serves whole with a trailing slash ("sys/devices/system/cpu/").
func (d *daemon) binds() []string {
	served, err := cgfs.ServedFiles(d.Mountpoint)
	if err != nil {
		panic(fmt.Sprintf("listing what %s serves: %v", d.Mountpoint, err))
	}
	return served
}

// command makes a command that runs script in cg (nil: stay put) in a new
// mount namespace with the daemon's files bind-mounted over /proc.
func (d *daemon) command(ctx context.Context, cg *testCgroup, script string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "unshare", "-m", "--propagation", "private", "/bin/sh", "-c", d.prologue(cg)+script)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	// When ctx ends, the shell is killed, but a child stuck in a read
	// could keep its stdout open and Wait would never return: the test
	// would hang until the binary's timeout, naming no test. Give up on
	// the pipes soon after instead, so the test fails with its name.
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// run runs script in cg with the files bind-mounted and returns its stdout;
// a failure fails the test.
func (d *daemon) run(t *testing.T, cg *testCgroup, script string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := d.command(ctx, cg, script)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("running %q: %v\nstdout: %s\nstderr: %s", script, err, out, stderr.String())
	}
	return string(out)
}

// start starts script in cg in the background and kills it when the test
// ends; the cgroup's removal kills it too.
func (d *daemon) start(t *testing.T, cg *testCgroup, script string) *exec.Cmd {
	t.Helper()
	cmd := d.command(context.Background(), cg, script)
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %q: %v", script, err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd
}

// freeBytes runs procps free -b in cg and returns the Mem: and Swap: rows as
// maps of column name to bytes.
func freeBytes(t *testing.T, out string) (mem, swap map[string]int64) {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(out))
	var header []string
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if f[0] == "total" {
			header = f
			continue
		}
		if f[0] != "Mem:" && f[0] != "Swap:" {
			continue
		}
		row := map[string]int64{}
		for i, v := range f[1:] {
			if i < len(header) {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					t.Fatalf("free output %q: %v", out, err)
				}
				row[header[i]] = n
			}
		}
		if f[0] == "Mem:" {
			mem = row
		} else {
			swap = row
		}
	}
	if mem == nil {
		t.Fatalf("no Mem: row in free output:\n%s", out)
	}
	return mem, swap
}

// syncWriter is a buffer the daemon's output goroutine and the test share.
type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.String()
}
