package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// runcBinary finds runc, skipping the test when it is not installed.
func runcBinary(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/sbin/runc", "/usr/bin/runc"} {
		if exists(p) {
			return p
		}
	}
	if p, err := exec.LookPath("runc"); err == nil {
		return p
	}
	t.Skip("runc is not installed (hack/deps.sh installs it)")
	return ""
}

// runcContainer runs args in a real runc container whose config.json
// bind-mounts the daemon's files over /proc and sets a memory limit, and
// returns what it printed.
func runcContainer(t *testing.T, d *daemon, memLimit int64, args ...string) string {
	t.Helper()
	c := newRuncBundle(t, d, memLimit, args...)
	cmd := exec.Command(c.runc, "--root", c.state, "run", "--bundle", c.bundle, c.id)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("runc run %v: %v\nstdout: %s\nstderr: %s", args, err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// runcBundle is a runc container's bundle, state directory and id.
type runcBundle struct {
	runc, bundle, state, id string
}

// newRuncBundle writes a bundle whose container runs args with a memory
// limit and, when d is not nil, binds the daemon's files over /proc; the
// container and its cgroup are removed when the test ends. The rootfs is
// busybox-static plus a read-only bind of the host's /usr, so procps runs
// inside.
func newRuncBundle(t *testing.T, d *daemon, memLimit int64, args ...string) runcBundle {
	t.Helper()
	runc := runcBinary(t)
	bundle := t.TempDir()
	rootfs := filepath.Join(bundle, "rootfs")
	for _, dir := range []string{"bin", "proc", "dev", "usr", "tmp", "sys"} {
		if err := os.MkdirAll(filepath.Join(rootfs, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Merged-/usr layout: the loader and libraries are under /usr.
	for _, l := range []string{"lib", "lib64", "sbin"} {
		if exists("/usr/" + l) {
			os.Symlink("usr/"+l, filepath.Join(rootfs, l))
		}
	}
	busybox, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Skipf("busybox-static is not installed: %v", err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "bin", "busybox"), busybox, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Symlink("busybox", filepath.Join(rootfs, "bin", "sh"))

	id := fmt.Sprintf("cgprocfs-test-runc-%d-%d", os.Getpid(), cgroupSeq.Add(1))
	mounts := []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc"},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/usr", Type: "bind", Source: "/usr", Options: []string{"rbind", "ro"}},
	}
	// The files cgprocfs serves, as an operator would bind them.
	if d != nil {
		for _, rel := range d.binds() {
			dest := "/" + strings.TrimSuffix(rel, "/")
			// runc refuses binds over /proc files other than the ones
			// lxcfs serves ("cannot be mounted because it is inside
			// /proc"); the OCI hook and cgprocfs attach bind these.
			if dest == "/proc/vmstat" || strings.HasPrefix(dest, "/proc/pressure/") {
				continue
			}
			mounts = append(mounts, specs.Mount{Destination: dest, Type: "bind", Source: d.Path(rel), Options: []string{"rbind", "ro"}})
		}
	}
	spec := specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{
			Args: args,
			Cwd:  "/",
			Env:  []string{"PATH=/usr/bin:/usr/sbin:/bin", "LC_ALL=C"},
			Capabilities: &specs.LinuxCapabilities{
				Bounding:  []string{"CAP_KILL"},
				Effective: []string{"CAP_KILL"},
				Permitted: []string{"CAP_KILL"},
			},
			NoNewPrivileges: true,
		},
		Root:     &specs.Root{Path: "rootfs", Readonly: true},
		Hostname: "cgprocfs-test",
		Mounts:   mounts,
		Linux: &specs.Linux{
			CgroupsPath: "/" + id,
			Resources:   &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &memLimit}},
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.MountNamespace}, {Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace}, {Type: specs.NetworkNamespace},
			},
			MaskedPaths:   []string{"/proc/kcore", "/proc/keys"},
			ReadonlyPaths: []string{"/proc/sys", "/proc/sysrq-trigger"},
		},
	}
	cfg, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	t.Cleanup(func() {
		exec.Command(runc, "--root", state, "delete", "--force", id).Run()
		// runc removes its cgroup on delete; make sure of it.
		(&testCgroup{Name: id}).remove(t)
	})
	return runcBundle{runc: runc, bundle: bundle, state: state, id: id}
}

func TestRuncContainerSeesItsMemoryLimit(t *testing.T) {
	d := startDaemon(t)
	out := runcContainer(t, d, 300*mib, "/usr/bin/free", "-b")
	mem, _ := freeBytes(t, out)
	if mem["total"] != 300*mib {
		t.Fatalf("free -b in a runc container with a 300 MiB limit: total %d\n%s", mem["total"], out)
	}
	t.Logf("free -b in the container:\n%s", out)
}
