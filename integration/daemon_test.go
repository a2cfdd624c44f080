package integration

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func runHost(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}

func TestWritesAreRefused(t *testing.T) {
	d := startDaemon(t)
	f := d.Path("proc/meminfo")
	// The mount is read-only: TestMountIsReadOnly checks write opens.
	refused := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, syscall.EPERM) && !errors.Is(err, syscall.EROFS) {
			t.Errorf("%s: %v, want EPERM or EROFS", what, err)
		}
	}
	refused("chmod", os.Chmod(f, 0o666))
	refused("truncate", os.Truncate(f, 0))
	refused("unlink", os.Remove(f))
	refused("mkdir", os.Mkdir(d.Path("proc/new"), 0o755))
	refused("rename", os.Rename(f, d.Path("proc/other")))
	_, err := os.Create(d.Path("proc/new"))
	refused("create", err)
	if out, err := exec.Command("/bin/sh", "-c", "echo x > "+f).CombinedOutput(); err == nil {
		t.Errorf("shell redirection into %s succeeded: %s", f, out)
	}

	for _, c := range []struct {
		path string
		mode os.FileMode
	}{{"proc", os.ModeDir | 0o555}, {"proc/meminfo", 0o444}} {
		st, err := os.Stat(d.Path(c.path))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode() != c.mode {
			t.Errorf("%s mode %v, want %v", c.path, st.Mode(), c.mode)
		}
		if sys := st.Sys().(*syscall.Stat_t); sys.Uid != 0 || sys.Gid != 0 {
			t.Errorf("%s owned by %d:%d, want root", c.path, sys.Uid, sys.Gid)
		}
	}
	// allow_other: any user may read.
	if out, err := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "head", "-n1", f).CombinedOutput(); err != nil || !strings.HasPrefix(string(out), "MemTotal:") {
		t.Errorf("reading as nobody: %v: %s", err, out)
	}
}

func TestSignalsUnmount(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			d := startDaemon(t)
			// A reader holding the file open must not keep the daemon.
			f, err := os.Open(d.Path("proc/meminfo"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			start := time.Now()
			d.cmd.Process.Signal(sig)
			select {
			case <-d.exited:
			case <-time.After(2 * time.Second):
				t.Fatalf("cgprocfs still running 2 s after %v", sig)
			}
			if code := d.cmd.ProcessState.ExitCode(); code != 0 {
				t.Errorf("exit code %d after %v, want 0", code, sig)
			}
			if isMounted(d.Mountpoint) {
				t.Errorf("%s still mounted after exit", d.Mountpoint)
			}
			t.Logf("exited %v after %v", time.Since(start).Round(time.Millisecond), sig)
		})
	}
}

func TestHelpAndVersion(t *testing.T) {
	needRoot(t)
	for _, args := range [][]string{{"--help"}, {"mount", "--help"}} {
		out, err := exec.Command(binary, args...).CombinedOutput()
		if err != nil {
			t.Errorf("cgprocfs %v: %v\n%s", args, err, out)
		}
		if len(out) == 0 {
			t.Errorf("cgprocfs %v printed nothing", args)
		}
	}
	if out, _ := exec.Command(binary, "mount", "--help").CombinedOutput(); !strings.Contains(string(out), "--cgroup-root") || !strings.Contains(string(out), "--proc-root") {
		t.Errorf("mount --help lacks the root flags:\n%s", out)
	}
	for _, args := range [][]string{{"--version"}, {"-v"}, {"version"}} {
		out, err := exec.Command(binary, args...).CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), "cgprocfs version ") || strings.Count(string(out), "\n") != 1 {
			t.Errorf("cgprocfs %v: %v, want one line cgprocfs version VERSION and exit 0; output %q", args, err, out)
		}
	}
}

// Bad flag values are refused with one line and a non-zero exit before the
// mount point is even created.
func TestBadFlags(t *testing.T) {
	needRoot(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--loadavg-idle-timeout", "-1m"}, "--loadavg-idle-timeout"},
		{[]string{"--loadavg-idle-timeout", "soon"}, "loadavg-idle-timeout"},
		{[]string{"--loadavg-counter", "psi"}, "--loadavg-counter"},
		{[]string{"--active-file-used-percent", "101"}, "0 to 100"},
		{[]string{"--log-level", "loud"}, "--log-level"},
		{[]string{"--no-such-flag"}, "no-such-flag"},
		{[]string{"--io-uring"}, "--holder=false"},
	} {
		mp := filepath.Join(t.TempDir(), "m")
		// A value that is wrongly accepted starts serving: kill it.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		out, err := exec.CommandContext(ctx, binary, append(append([]string{"mount"}, c.args...), mp)...).CombinedOutput()
		cancel()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() == 0 {
			t.Errorf("mount %v: %v, want a non-zero exit; output %s", c.args, err, out)
		}
		if lines := strings.Split(strings.TrimSpace(string(out)), "\n"); len(lines) != 1 || !strings.Contains(lines[0], c.want) {
			t.Errorf("mount %v: want one line mentioning %q, got %q", c.args, c.want, out)
		}
		if exists(mp) {
			t.Errorf("mount %v created the mount point", c.args)
		}
		if isMounted(mp) {
			syscall.Unmount(mp, syscall.MNT_DETACH)
			t.Errorf("mount %v mounted", c.args)
		}
	}
}

func TestRefusals(t *testing.T) {
	needRoot(t)
	d := startDaemon(t)
	cases := []struct {
		name string
		cmd  *exec.Cmd
		want string
	}{
		{"second daemon on a live mount", exec.Command(binary, "mount", d.Mountpoint), "already serves"},
		{"not root", exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", binary, "mount", filepath.Join(t.TempDir(), "m")), "root"},
		{"no cgroup hierarchy", exec.Command(binary, "mount", "--cgroup-root", t.TempDir(), filepath.Join(t.TempDir(), "m")), "no cgroup hierarchy"},
		// A private /dev without fuse, in a mount namespace of its own.
		{"no /dev/fuse", exec.Command("unshare", "-m", "--propagation", "private", "/bin/sh", "-c",
			"mount -t tmpfs none /dev && exec "+binary+" mount "+filepath.Join(t.TempDir(), "m")), "/dev/fuse"},
		{"two mount points", exec.Command(binary, "mount", "a", "b"), "at most one"},
		{"bad policy", exec.Command(binary, "mount", "--active-file-used-percent", "150", filepath.Join(t.TempDir(), "m")), "0 to 100"},
	}
	for _, c := range cases {
		out, err := c.cmd.CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() == 0 {
			t.Errorf("%s: %v, want a non-zero exit; output %s", c.name, err, out)
			continue
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) != 1 || !strings.Contains(lines[0], c.want) {
			t.Errorf("%s: want one line mentioning %q, got %q", c.name, c.want, out)
		}
	}
}

// A daemon killed by SIGKILL leaves a dead mount; the next start replaces it.
func TestStaleMountIsReplaced(t *testing.T) {
	d := startDaemon(t)
	d.cmd.Process.Kill()
	<-d.exited
	if !isMounted(d.Mountpoint) {
		t.Fatal("expected a stale mount after SIGKILL")
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(d.Mountpoint, &st); !errors.Is(err, syscall.ENOTCONN) {
		t.Fatalf("statfs of the stale mount: %v, want ENOTCONN", err)
	}
	d2 := startDaemonAt(t, d.Mountpoint)
	if b, err := os.ReadFile(d2.Path("proc/meminfo")); err != nil || !strings.HasPrefix(string(b), "MemTotal:") {
		t.Fatalf("reading through the replacing daemon: %v %q", err, b)
	}
}
