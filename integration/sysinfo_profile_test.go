package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// setSeccomp replaces the bundle's linux.seccomp.
func (c runcBundle) setSeccomp(t *testing.T, sc *specs.LinuxSeccomp) {
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
	spec.Linux.Seccomp = sc
	if data, err = json.MarshalIndent(spec, "", "  "); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
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
