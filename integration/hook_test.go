package integration

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Tests of `cgprocfs oci-hook`: run by hand here (in a private mount
// namespace), by runc in hook_runc_test.go and by podman in
// hook_podman_test.go.

// hookArgs is the hook's command line for a daemon mounted at mp.
func hookArgs(mp string, extra ...string) []string {
	return append([]string{"cgprocfs", "oci-hook", "--mountpoint", mp}, extra...)
}

// hookState is the state JSON a runtime passes on the hook's stdin.
func hookState(t *testing.T, pid int, bundle string) string {
	t.Helper()
	data, err := json.Marshal(specs.State{Version: specs.Version, ID: "cgprocfs-test-hook", Status: specs.StateCreating, Pid: pid, Bundle: bundle})
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// hookBundle makes a bundle whose config.json points at rootfs, with the
// annotations given.
func hookBundle(t *testing.T, rootfs string, annotations map[string]string) string {
	t.Helper()
	bundle := t.TempDir()
	data, err := json.Marshal(specs.Spec{Version: specs.Version, Root: &specs.Root{Path: rootfs}, Annotations: annotations})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return bundle
}

// exitedPid is the pid of a process that has exited and been reaped.
func exitedPid(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

// runHook runs the hook by hand in a private mount namespace, so that what
// it binds goes away with it, then script (after the hook, in the same
// namespace). It returns the hook's stderr, its exit status and the
// script's output.
func runHook(t *testing.T, stdin string, args []string, script string) (stderr string, code int, out string) {
	t.Helper()
	needRoot(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "state")
	if err := os.WriteFile(in, []byte(stdin), 0o644); err != nil {
		t.Fatal(err)
	}
	errFile := filepath.Join(dir, "stderr")
	argv := []string{binary}
	argv = append(argv, args[1:]...)
	quoted := make([]string, len(argv))
	for i, a := range argv {
		quoted[i] = "'" + a + "'"
	}
	sh := fmt.Sprintf("%s <%s 2>%s; echo \"hook-exit=$?\"\n%s", strings.Join(quoted, " "), in, errFile, script)
	cmd := exec.Command("unshare", "-m", "--propagation", "private", "/usr/bin/dash", "-c", sh)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	o, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("running the hook: %v\n%s", err, o)
	}
	out = string(o)
	first, rest, _ := strings.Cut(out, "\n")
	code, err = strconv.Atoi(strings.TrimPrefix(first, "hook-exit="))
	if err != nil {
		t.Fatalf("no hook exit status in %q", out)
	}
	e, err := os.ReadFile(errFile)
	if err != nil {
		t.Fatal(err)
	}
	return string(e), code, rest
}

// checkHookLine checks the hook exited 0 and said one line containing want.
func checkHookLine(t *testing.T, what, stderr string, code int, want string) {
	t.Helper()
	if code != 0 || !strings.HasPrefix(stderr, "cgprocfs oci-hook: ") || !strings.Contains(stderr, want) || strings.Count(stderr, "\n") != 1 {
		t.Errorf("%s: exit %d, stderr %q; want exit 0 and one line saying %q", what, code, stderr, want)
	} else {
		t.Logf("%s: %s", what, strings.TrimSpace(stderr))
	}
}

func TestHookBadInput(t *testing.T) {
	needRoot(t)
	d := startDaemon(t)
	rootfs := t.TempDir()
	withConfig := hookBundle(t, rootfs, nil)
	for _, c := range []struct {
		what, stdin, want string
	}{
		{"garbage on stdin", "garbage\n", "bound nothing: stdin is not an OCI container state"},
		{"empty stdin", "", "bound nothing: stdin is empty"},
		{"a pid that has exited", hookState(t, exitedPid(t), withConfig), "bound nothing: the container's process"},
		{"a bundle without config.json", hookState(t, os.Getpid(), t.TempDir()), "has no config.json"},
	} {
		stderr, code, _ := runHook(t, c.stdin, hookArgs(d.Mountpoint), "")
		checkHookLine(t, c.what, stderr, code, c.want)
	}
	// A command line the hook does not understand is the one failure.
	stderr, code, _ := runHook(t, hookState(t, os.Getpid(), withConfig), hookArgs(d.Mountpoint, "--no-such-flag"), "")
	if code == 0 || !strings.Contains(stderr, "no-such-flag") {
		t.Errorf("unknown flag: exit %d, stderr %q; want a failure naming it", code, stderr)
	}
}

// fakeRootfs makes a rootfs with regular files standing in for a
// container's /proc and /sys files (the hook binds over what exists), and
// one served file left out.
func fakeRootfs(t *testing.T) string {
	t.Helper()
	rootfs := t.TempDir()
	for _, f := range []string{"proc/meminfo", "proc/stat", "sys/devices/system/cpu/online"} {
		p := filepath.Join(rootfs, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("not cgprocfs\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return rootfs
}

func TestHookBindsReadOnly(t *testing.T) {
	d := startDaemon(t)
	rootfs := fakeRootfs(t)
	bundle := hookBundle(t, rootfs, nil)
	meminfo := filepath.Join(rootfs, "proc/meminfo")
	// After the hook, in its namespace: the mounts over the rootfs, the
	// file's first line, and a write that must fail.
	script := fmt.Sprintf("grep ' %s/' /proc/self/mountinfo\necho ---\nhead -n1 %s\n(echo x > %s) 2>/dev/null && echo WRITABLE; true\n", rootfs, meminfo, meminfo)
	stderr, code, out := runHook(t, hookState(t, os.Getpid(), bundle), hookArgs(d.Mountpoint), script)
	// sys/devices/system/cpu is bound as a directory, over the one
	// holding online.
	checkHookLine(t, "a live daemon", stderr, code, "bound 3 files from "+d.Mountpoint+" read-only: proc/meminfo proc/stat sys/devices/system/cpu/")
	mounts, rest, _ := strings.Cut(out, "---\n")
	for _, f := range []string{"proc/meminfo", "proc/stat", "sys/devices/system/cpu"} {
		found := false
		for _, l := range strings.Split(mounts, "\n") {
			found = found || (strings.Contains(l, " "+filepath.Join(rootfs, f)+" ro,") && strings.Contains(l, " fuse.cgprocfs "))
		}
		if !found {
			t.Errorf("no read-only cgprocfs mount on %s:\n%s", f, mounts)
		}
	}
	if strings.Count(mounts, "\n") != 3 {
		t.Errorf("want 3 mounts in the rootfs:\n%s", mounts)
	}
	if !strings.HasPrefix(rest, "MemTotal:") || strings.Contains(rest, "WRITABLE") {
		t.Errorf("after the hook, the rootfs's meminfo: %q", rest)
	}
	// The hook's namespace is gone: nothing is left over the rootfs here.
	if data, _ := os.ReadFile(meminfo); string(data) != "not cgprocfs\n" {
		t.Errorf("a bind leaked out of the hook's mount namespace: %q", data)
	}
}

func TestHookDaemonGone(t *testing.T) {
	d := startDaemon(t)
	rootfs := fakeRootfs(t)
	bundle := hookBundle(t, rootfs, nil)
	script := "head -n1 " + filepath.Join(rootfs, "proc/meminfo")
	// Killed: the mount stays, its connection dead.
	d.cmd.Process.Kill()
	<-d.exited
	stderr, code, out := runHook(t, hookState(t, os.Getpid(), bundle), hookArgs(d.Mountpoint), script)
	checkHookLine(t, "a killed daemon", stderr, code, "bound nothing: the cgprocfs mounted at "+d.Mountpoint+" is dead")
	if out != "not cgprocfs\n" {
		t.Errorf("after the hook: %q", out)
	}
	// Not mounted at all.
	d.stop(t)
	stderr, code, _ = runHook(t, hookState(t, os.Getpid(), bundle), hookArgs(d.Mountpoint), "")
	checkHookLine(t, "no daemon", stderr, code, "bound nothing: no cgprocfs is mounted at "+d.Mountpoint)
}

// containerView is what a container's tools show.
type containerView struct {
	memTotal   int64
	nproc      string
	online     string
	processors int
	// cpuDirs counts the cpuN directories of sys/devices/system/cpu,
	// which the hook binds as a whole directory.
	cpuDirs int
}

// viewScript prints what parseView reads.
const viewScript = "free -b; echo ---; nproc; cat /sys/devices/system/cpu/online; grep -c ^processor /proc/cpuinfo; ls -d /sys/devices/system/cpu/cpu[0-9]* | wc -l"

func parseView(t *testing.T, out string) containerView {
	t.Helper()
	free, rest, ok := strings.Cut(out, "---\n")
	f := strings.Fields(rest)
	if !ok || len(f) != 4 {
		t.Fatalf("container output:\n%s", out)
	}
	mem, _ := freeBytes(t, free)
	n, err := strconv.Atoi(f[2])
	if err != nil {
		t.Fatalf("processors in %q: %v", out, err)
	}
	dirs, err := strconv.Atoi(f[3])
	if err != nil {
		t.Fatalf("cpuN directories in %q: %v", out, err)
	}
	return containerView{memTotal: mem["total"], nproc: f[0], online: f[1], processors: n, cpuDirs: dirs}
}

// hostView is what a container that sees the host's files shows, but for
// nproc, which follows the cpuset whatever the files say.
func hostView(t *testing.T) containerView {
	t.Helper()
	var v containerView
	meminfo, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fmt.Sscanf(string(meminfo), "MemTotal: %d kB", &v.memTotal); err != nil {
		t.Fatalf("host MemTotal: %v", err)
	}
	v.memTotal *= 1024
	online, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		t.Fatal(err)
	}
	v.online = strings.TrimSpace(string(online))
	cpuinfo, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(cpuinfo))
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "processor") {
			v.processors++
		}
	}
	if v.processors < 2 {
		t.Skipf("the host has %d CPU: a container limited to one looks the same", v.processors)
	}
	dirs, err := filepath.Glob("/sys/devices/system/cpu/cpu[0-9]*")
	if err != nil {
		t.Fatal(err)
	}
	v.cpuDirs = len(dirs)
	return v
}

// checkLimited checks a container with 200 MiB and CPU 0 sees them.
func checkLimited(t *testing.T, what string, v containerView) {
	t.Helper()
	want := containerView{memTotal: 200 * mib, nproc: "1", online: "0", processors: 1, cpuDirs: 1}
	if v != want {
		t.Errorf("%s: sees %+v, want %+v", what, v, want)
	}
}

// checkHost checks a container sees the host's files.
func checkHost(t *testing.T, what string, v containerView) {
	t.Helper()
	want := hostView(t)
	want.nproc = v.nproc
	if v != want {
		t.Errorf("%s: sees %+v, want the host's %+v", what, v, want)
	}
}
