package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// editSpec changes the bundle's config.json with edit.
func (c runcBundle) editSpec(t *testing.T, edit func(*specs.Spec)) {
	t.Helper()
	path := filepath.Join(c.bundle, "config.json")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		t.Fatal(err)
	}
	edit(&spec)
	if data, err = json.MarshalIndent(spec, "", "  "); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// setSeccomp replaces the bundle's linux.seccomp.
func (c runcBundle) setSeccomp(t *testing.T, sc *specs.LinuxSeccomp) {
	t.Helper()
	c.editSpec(t, func(s *specs.Spec) { s.Linux.Seccomp = sc })
}

// containersCommonRules is containers-common's default profile as runc
// takes it: its rules that hold whatever the capabilities and
// architecture (no includes or excludes but of the native architecture),
// with sysinfo in its long SCMP_ACT_ALLOW list; every other call fails
// with EPERM.
func containersCommonRules(t *testing.T) []specs.LinuxSyscall {
	t.Helper()
	data, err := os.ReadFile(containersCommonProfile)
	if err != nil {
		t.Skipf("containers-common's default profile: %v", err)
	}
	var p struct {
		Syscalls []struct {
			specs.LinuxSyscall
			Includes, Excludes struct{ Arches, Caps []string }
		}
	}
	if err := json.Unmarshal(data, &p); err != nil {
		t.Fatalf("%s: %v", containersCommonProfile, err)
	}
	var rules []specs.LinuxSyscall
	allowsSysinfo := false
	for _, r := range p.Syscalls {
		if len(r.Excludes.Arches)+len(r.Excludes.Caps)+len(r.Includes.Caps) > 0 ||
			(len(r.Includes.Arches) > 0 && !slices.Contains(r.Includes.Arches, runtime.GOARCH)) {
			continue
		}
		rules = append(rules, r.LinuxSyscall)
		allowsSysinfo = allowsSysinfo || (r.Action == specs.ActAllow && slices.Contains(r.Names, "sysinfo"))
	}
	if !allowsSysinfo {
		t.Fatalf("%s does not allow sysinfo in an unconditional rule any more", containersCommonProfile)
	}
	return rules
}

const containersCommonProfile = "/usr/share/containers/seccomp.json"

// A call named in two rules of different actions is decided by the
// runtime: runc (1.1.5, libseccomp 2.5.4) takes both and the first rule
// wins, whatever the actions. So a notify rule added after a profile's
// allow list is never used, which is why cgprocfs seccomp-profile takes
// sysinfo out of every other rule rather than rely on an order.
func TestSysinfoTwoRulesRunc(t *testing.T) {
	d, sock := sysinfoDaemon(t)
	eperm := uint(1)
	base := containersCommonRules(t)
	notify := specs.LinuxSyscall{Names: []string{"sysinfo"}, Action: specs.ActNotify}
	deny := specs.LinuxSyscall{Names: []string{"sysinfo"}, Action: specs.ActErrno, ErrnoRet: &eperm}
	host := hostSysinfo(t)
	for _, tc := range []struct {
		name  string
		def   specs.LinuxSeccompAction // the default action
		rules []specs.LinuxSyscall
		want  string // "agent", "host" or "eperm"
	}{
		{"allow list then notify", specs.ActErrno, append(slices.Clone(base), notify), "host"},
		{"notify then allow list", specs.ActErrno, append([]specs.LinuxSyscall{notify}, base...), "agent"},
		{"allow list, errno then notify", specs.ActErrno, append(slices.Clone(base), deny, notify), "host"},
		{"notify then errno", specs.ActAllow, []specs.LinuxSyscall{notify, deny}, "agent"},
		{"errno then notify", specs.ActAllow, []specs.LinuxSyscall{deny, notify}, "eperm"},
	} {
		c := newSysinfoBundle(t, d, 200*mib, "", "/probe")
		sc := &specs.LinuxSeccomp{DefaultAction: tc.def, ListenerPath: sock, Syscalls: tc.rules}
		if tc.def == specs.ActErrno {
			sc.DefaultErrnoRet = &eperm
		}
		c.setSeccomp(t, sc)
		r := parseProbe(t, c.run(t))
		got := "other"
		switch {
		case r.Errno == 0 && r.Sysinfo.TotalRAM == 200*mib:
			got = "agent"
		case r.Errno == 0 && r.Sysinfo.TotalRAM == host.Totalram*uint64(host.Unit):
			got = "host"
		case r.Errno == int(unix.EPERM):
			got = "eperm"
		}
		t.Logf("%s: %s (errno %d, totalram %d)", tc.name, got, r.Errno, r.Sysinfo.TotalRAM)
		if got != tc.want {
			t.Errorf("%s: sysinfo answered by %s (errno %d, totalram %d), want %s", tc.name, got, r.Errno, r.Sysinfo.TotalRAM, tc.want)
		}
	}
}

// podman 4.3 with --security-opt seccomp= given the profile cgprocfs
// seccomp-profile makes from containers-common's default: podman passes
// listenerPath and the notify rule through to runc, and busybox free in
// a 200 MiB container shows 204800 KiB.
func TestSysinfoPodman(t *testing.T) {
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		t.Skip("the agent answers sysinfo on amd64 and arm64 only")
	}
	if _, err := os.Stat(containersCommonProfile); err != nil {
		t.Skipf("containers-common's default profile: %v", err)
	}
	d, sock := sysinfoDaemon(t)
	p := newPodman(t, d.Mountpoint)
	out, err := exec.Command(binary, "seccomp-profile", "--base", containersCommonProfile, "--listener", sock).Output()
	if err != nil {
		t.Fatalf("cgprocfs seccomp-profile: %v", err)
	}
	profile := filepath.Join(t.TempDir(), "seccomp.json")
	if err := os.WriteFile(profile, out, 0o644); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	extra := []string{"--security-opt", "seccomp=" + profile,
		"--mount", "type=bind,src=" + exe + ",dst=/probe,ro", "--env", probeEnv + "=1"}
	got := p.run(t, extra, "/usr/bin/busybox free; echo @@; /usr/bin/busybox uptime; echo @@; /probe")
	parts := strings.Split(got, "@@\n")
	if len(parts) != 3 {
		t.Fatalf("container output:\n%s", got)
	}
	t.Logf("podman --memory 200m --security-opt seccomp=(cgprocfs seccomp-profile --base %s):\n%s%sprobe: %s", containersCommonProfile, parts[0], parts[1], parts[2])
	if total := busyboxFreeTotal(t, parts[0]); total != 204800 {
		t.Errorf("busybox free total %d KiB in a podman container limited to 200 MiB, want 204800", total)
	}
	if up := uptimeMinutes(t, parts[1]); up > 1 {
		t.Errorf("busybox uptime says the container is up %d min: %q", up, parts[1])
	}
	if r := parseProbe(t, parts[2]); r.Errno != 0 || r.Sysinfo.TotalRAM != 200*mib || r.Getpid != r.ProcSelf {
		t.Errorf("probe under podman: %+v", r)
	}

	// Without the profile, podman's own default leaves sysinfo the host's.
	got = p.run(t, nil, "/usr/bin/busybox free")
	host := hostSysinfo(t)
	if total := busyboxFreeTotal(t, got); total != int64(host.Totalram*uint64(host.Unit)/1024) {
		t.Errorf("busybox free total %d KiB under podman's default profile, want the host's %d", total, host.Totalram*uint64(host.Unit)/1024)
	}
}
