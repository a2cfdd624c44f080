package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// podman is a podman whose storage, run root, temporary files, locks,
// network configuration and hooks all live in a temporary directory, so
// that the host's podman state is never touched, running containers with
// runc under a test cgroup.
type podman struct {
	bin    string
	rootfs string
	cgroup *testCgroup
	env    []string
	global []string
}

// newPodman sets podman up with the repository's hooks.d file, its path
// turned into the binary under test and --mountpoint added to its args.
func newPodman(t *testing.T, mountpoint string) *podman {
	t.Helper()
	needRoot(t)
	bin, err := exec.LookPath("podman")
	if err != nil {
		t.Skip("podman is not installed (hack/deps.sh test installs it; the cgroup v2 VM has none)")
	}
	runc := runcBinary(t)
	dir := t.TempDir()
	p := &podman{bin: bin, rootfs: filepath.Join(dir, "rootfs")}

	// The root's locks default to shared memory in /dev/shm; file locks
	// stay in the temporary directory. The CNI backend keeps its files in
	// network_config_dir, where netavark writes to /run/containers.
	conf := fmt.Sprintf(`[engine]
lock_type = "file"
events_logger = "none"
cgroup_manager = "cgroupfs"
[network]
network_backend = "cni"
network_config_dir = %q
`, filepath.Join(dir, "net"))
	storage := fmt.Sprintf("[storage]\ndriver = \"vfs\"\ngraphroot = %q\nrunroot = %q\n", filepath.Join(dir, "root"), filepath.Join(dir, "runroot"))
	for name, content := range map[string]string{"containers.conf": conf, "storage.conf": storage} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p.env = append(os.Environ(), "LC_ALL=C",
		"CONTAINERS_CONF="+filepath.Join(dir, "containers.conf"),
		"CONTAINERS_STORAGE_CONF="+filepath.Join(dir, "storage.conf"))

	hooks := filepath.Join(dir, "hooks.d")
	if err := os.Mkdir(hooks, 0o755); err != nil {
		t.Fatal(err)
	}
	installHooksFile(t, hooks, mountpoint)

	p.global = []string{
		"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "runroot"),
		"--tmpdir", filepath.Join(dir, "tmp"), "--storage-driver", "vfs",
		"--runtime", runc, "--cgroup-manager", "cgroupfs", "--events-backend", "none",
		"--hooks-dir", hooks,
	}

	// Empty directories and the host's /usr (bound by each run), with
	// Debian's merged-/usr links.
	for _, d := range []string{"proc", "sys", "dev", "etc", "tmp", "usr", "run", "var"} {
		if err := os.MkdirAll(filepath.Join(p.rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range []string{"bin", "lib", "lib64", "sbin"} {
		if exists("/usr/" + l) {
			os.Symlink("usr/"+l, filepath.Join(p.rootfs, l))
		}
	}

	p.cgroup = newCgroup(t, "podman", nil)
	t.Cleanup(func() { p.cleanup(t, dir) })
	return p
}

// installHooksFile writes deploy/oci-hooks.d/cgprocfs.json into dir with
// the hook's path the binary under test and --mountpoint mountpoint.
func installHooksFile(t *testing.T, dir, mountpoint string) {
	t.Helper()
	data, err := os.ReadFile("../deploy/oci-hooks.d/cgprocfs.json")
	if err != nil {
		t.Fatal(err)
	}
	var f map[string]json.RawMessage
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatalf("hooks.d file: %v", err)
	}
	var h specs.Hook
	if err := json.Unmarshal(f["hook"], &h); err != nil {
		t.Fatalf("hooks.d file's hook: %v", err)
	}
	h.Path = binary
	h.Args = append(h.Args, "--mountpoint", mountpoint)
	if f["hook"], err = json.Marshal(h); err != nil {
		t.Fatal(err)
	}
	if data, err = json.Marshal(f); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cgprocfs.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// run runs script with /usr/bin/dash in a container limited to 200 MiB and
// CPU 0, with extra podman run flags, and returns what it printed.
func (p *podman) run(t *testing.T, extra []string, script string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := append(slices.Clone(p.global), "run", "--rm", "--network", "none",
		"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",
		"--memory", "200m", "--cpuset-cpus", "0", "--cgroup-parent", "/"+p.cgroup.Name,
		"--mount", "type=bind,src=/usr,dst=/usr,ro")
	args = append(args, extra...)
	args = append(args, "--rootfs", p.rootfs, "/usr/bin/dash", "-c", script)
	cmd := exec.CommandContext(ctx, p.bin, args...)
	cmd.Env = p.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("podman run %v: %v\nstdout: %s\nstderr: %s", extra, err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// cleanup removes every container, the mounts podman left under dir and
// the cgroups it made under the test cgroup in every hierarchy (podman
// makes them in devices, freezer and the rest too, which newCgroup does
// not know of).
func (p *podman) cleanup(t *testing.T, dir string) {
	cmd := exec.Command(p.bin, append(slices.Clone(p.global), "rm", "--all", "--force", "--time", "0")...)
	cmd.Env = p.env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("podman rm --all: %v\n%s", err, out)
	}
	if data, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		var under []string
		for _, l := range strings.Split(string(data), "\n") {
			if f := strings.Fields(l); len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
				under = append(under, f[4])
			}
		}
		for i := len(under) - 1; i >= 0; i-- {
			syscall.Unmount(under[i], syscall.MNT_DETACH)
		}
	}
	dirs, _ := filepath.Glob(filepath.Join(cgroupRoot, "*", p.cgroup.Name))
	dirs = append(dirs, filepath.Join(cgroupRoot, p.cgroup.Name))
	for _, top := range dirs {
		var all []string
		filepath.WalkDir(top, func(q string, e os.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				all = append(all, q)
			}
			return nil
		})
		for i := len(all) - 1; i >= 0; i-- {
			removeCgroupDir(t, all[i])
		}
	}
}

func TestHookPodman(t *testing.T) {
	d := startDaemon(t)
	p := newPodman(t, d.Mountpoint)

	out := p.run(t, nil, viewScript)
	t.Logf("podman --memory 200m --cpuset-cpus 0, no -v:\n%s", out)
	checkLimited(t, "podman with the hook", parseView(t, out))

	out = p.run(t, []string{"--annotation", "cgprocfs.io/enabled=false"}, viewScript)
	t.Logf("podman with --annotation cgprocfs.io/enabled=false:\n%s", out)
	checkHost(t, "podman with the annotation off", parseView(t, out))

	// With no daemon the container still starts, and sees the host.
	d.stop(t)
	out = p.run(t, nil, viewScript)
	t.Logf("podman with the daemon stopped:\n%s", out)
	checkHost(t, "podman with the daemon stopped", parseView(t, out))
}
