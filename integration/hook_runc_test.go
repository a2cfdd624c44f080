package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// hookRuncContainer runs script with /usr/bin/dash in a real runc container
// limited to 200 MiB and CPU 0, whose config.json has the given
// createContainer hooks and annotations and binds nothing of cgprocfs's
// itself. It returns what the script printed. The rootfs is
// busybox-static plus a read-only bind of the host's /usr, as in
// runcContainer.
func hookRuncContainer(t *testing.T, hooks []specs.Hook, annotations map[string]string, script string) string {
	t.Helper()
	runc := runcBinary(t)
	bundle := t.TempDir()
	rootfs := filepath.Join(bundle, "rootfs")
	for _, dir := range []string{"bin", "proc", "dev", "usr", "tmp", "sys"} {
		if err := os.MkdirAll(filepath.Join(rootfs, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range []string{"lib", "lib64", "sbin"} {
		if exists("/usr/" + l) {
			os.Symlink("usr/"+l, filepath.Join(rootfs, l))
		}
	}
	id := fmt.Sprintf("cgprocfs-test-hook-runc-%d-%d", os.Getpid(), cgroupSeq.Add(1))
	limit := int64(200 * mib)
	spec := specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{
			Args: []string{"/usr/bin/dash", "-c", script},
			Cwd:  "/",
			Env:  []string{"PATH=/usr/bin:/usr/sbin:/bin", "LC_ALL=C"},
			Capabilities: &specs.LinuxCapabilities{
				Bounding:  []string{"CAP_KILL"},
				Effective: []string{"CAP_KILL"},
				Permitted: []string{"CAP_KILL"},
			},
			NoNewPrivileges: true,
		},
		Root:        &specs.Root{Path: "rootfs", Readonly: true},
		Hostname:    "cgprocfs-test",
		Annotations: annotations,
		Hooks:       &specs.Hooks{CreateContainer: hooks},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/usr", Type: "bind", Source: "/usr", Options: []string{"rbind", "ro"}},
		},
		Linux: &specs.Linux{
			CgroupsPath: "/" + id,
			Resources: &specs.LinuxResources{
				Memory: &specs.LinuxMemory{Limit: &limit},
				CPU:    &specs.LinuxCPU{Cpus: "0"},
			},
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
		(&testCgroup{Name: id}).remove(t)
	})
	cmd := exec.Command(runc, "--root", state, "run", "--bundle", bundle, id)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("runc run: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// cgprocfsHook is the hook entry for the binary under test.
func cgprocfsHook(mp string, extra ...string) specs.Hook {
	return specs.Hook{Path: binary, Args: hookArgs(mp, extra...)}
}

func TestHookRunc(t *testing.T) {
	d := startDaemon(t)
	out := hookRuncContainer(t, []specs.Hook{cgprocfsHook(d.Mountpoint)}, nil, viewScript)
	t.Logf("runc, hook:\n%s", out)
	checkLimited(t, "runc with the hook", parseView(t, out))

	// Every served file whose path the container has is bound, read-only;
	// mountinfo names sys/block/DISK/stat by where its symlink leads.
	out = hookRuncContainer(t, []specs.Hook{cgprocfsHook(d.Mountpoint)}, nil, "grep ' - fuse.cgprocfs ' /proc/self/mountinfo | cut -d' ' -f5,6 | sort")
	var want []string
	for _, rel := range d.binds() {
		if real, err := filepath.EvalSymlinks("/" + strings.TrimSuffix(rel, "/")); err == nil {
			want = append(want, real)
		}
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if target, opts, ok := strings.Cut(l, " "); ok && strings.HasPrefix(opts, "ro,") {
			got = append(got, target)
		}
	}
	slices.Sort(want)
	if !slices.Equal(got, want) || !slices.Contains(got, "/sys/devices/system/cpu") {
		t.Errorf("read-only cgprocfs mounts in the container:\n%s\nwant %q", out, want)
	}

	out = hookRuncContainer(t, []specs.Hook{cgprocfsHook(d.Mountpoint)}, map[string]string{"cgprocfs.io/enabled": "false"}, viewScript)
	t.Logf("runc, hook, annotation cgprocfs.io/enabled=false:\n%s", out)
	checkHost(t, "runc with the annotation off", parseView(t, out))

	out = hookRuncContainer(t, []specs.Hook{cgprocfsHook(d.Mountpoint, "--opt-in")}, nil, viewScript)
	checkHost(t, "runc with --opt-in and no annotation", parseView(t, out))
	out = hookRuncContainer(t, []specs.Hook{cgprocfsHook(d.Mountpoint, "--opt-in")}, map[string]string{"cgprocfs.io/enabled": "true"}, viewScript)
	checkLimited(t, "runc with --opt-in and the annotation on", parseView(t, out))
}

// TestHookRuncBadInput has runc run the hook on bad input (through a shell
// that feeds it and keeps its stderr, which runc drops when a hook
// succeeds), then the real hook: the container starts and gets the files.
func TestHookRuncBadInput(t *testing.T) {
	d := startDaemon(t)
	dir := t.TempDir()
	logFile := filepath.Join(dir, "hook.log")
	noConfig := t.TempDir()
	inputs := []struct{ name, stdin, want string }{
		{"garbage", "garbage", "stdin is not an OCI container state"},
		// A host pid, gone: in the container's pid namespace too.
		{"exited", hookState(t, exitedPid(t), hookBundle(t, t.TempDir(), nil)), "the container's process"},
		// Pid 1 is the hook's runc init: alive.
		{"noconfig", hookState(t, 1, noConfig), "bundle " + noConfig + " has no config.json"},
	}
	var hooks []specs.Hook
	for _, in := range inputs {
		f := filepath.Join(dir, in.name)
		if err := os.WriteFile(f, []byte(in.stdin), 0o644); err != nil {
			t.Fatal(err)
		}
		sh := fmt.Sprintf("exec '%s' oci-hook --mountpoint '%s' <'%s' 2>>'%s'", binary, d.Mountpoint, f, logFile)
		hooks = append(hooks, specs.Hook{Path: "/usr/bin/dash", Args: []string{"dash", "-c", sh}})
	}
	hooks = append(hooks, cgprocfsHook(d.Mountpoint))
	out := hookRuncContainer(t, hooks, nil, viewScript)
	checkLimited(t, "runc after hooks on bad input", parseView(t, out))
	log, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(log), "\n"), "\n")
	if len(lines) != len(inputs) {
		t.Fatalf("hook log, want %d lines:\n%s", len(inputs), log)
	}
	for i, in := range inputs {
		if !strings.HasPrefix(lines[i], "cgprocfs oci-hook: ") || !strings.Contains(lines[i], "bound nothing: ") || !strings.Contains(lines[i], in.want) {
			t.Errorf("%s: the hook said %q, want %q", in.name, lines[i], in.want)
		}
	}
	t.Logf("hook log:\n%s", log)
}
