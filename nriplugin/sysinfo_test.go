package nriplugin

import (
	"bytes"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/nri/pkg/api"
)

type fakeAgent struct{ serving bool }

func (fakeAgent) Listener() string { return "/run/cgprocfs/seccomp.sock" }
func (a fakeAgent) Serving() bool  { return a.serving }
func newSysinfoPlugin(m Mount, a Agent) (*Plugin, *bytes.Buffer) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&syncBuffer{b: &buf}, nil))
	return NewPlugin(Policy{ExcludeNamespaces: []string{"kube-system"}}, m, a, log), &buf
}

// runtimeDefault is the shape of containerd's RuntimeDefault policy (its
// contrib/seccomp): refuse by default, a long allow list with sysinfo,
// rules on arguments.
func runtimeDefault() *api.LinuxSeccomp {
	return &api.LinuxSeccomp{
		DefaultAction: "SCMP_ACT_ERRNO",
		Architectures: []string{"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"},
		Syscalls: []*api.LinuxSyscall{
			{Names: []string{"read", "sysinfo", "write"}, Action: "SCMP_ACT_ALLOW"},
			{Names: []string{"personality"}, Action: "SCMP_ACT_ALLOW", Args: []*api.LinuxSeccompArg{{Index: 0, Value: 8, Op: "SCMP_CMP_EQ"}}},
		},
	}
}

func sysinfoRules(p *api.LinuxSeccomp) []*api.LinuxSyscall {
	var out []*api.LinuxSyscall
	for _, r := range p.GetSyscalls() {
		if slices.Contains(r.GetNames(), "sysinfo") {
			out = append(out, r)
		}
	}
	return out
}

func TestCreateContainerSendsSysinfoToTheAgent(t *testing.T) {
	p, logs := newSysinfoPlugin(&fakeMount{serving: true, files: served}, fakeAgent{serving: true})
	ctx, pod, ctr := workloadPod("default")
	ctr.Linux = &api.LinuxContainer{SeccompPolicy: runtimeDefault()}
	adj, _, err := p.CreateContainer(ctx, pod, ctr)
	if err != nil || adj == nil {
		t.Fatalf("CreateContainer: %v, %v", adj, err)
	}
	if len(adj.GetMounts()) != 10 { // as TestCreateContainerAddsBinds: the policy adds no mount
		t.Errorf("%d mounts with the seccomp policy, want 10", len(adj.GetMounts()))
	}
	pol := adj.GetLinux().GetSeccompPolicy()
	if pol.GetListenerPath() != "/run/cgprocfs/seccomp.sock" || pol.GetDefaultAction() != "SCMP_ACT_ERRNO" ||
		!slices.Equal(pol.GetArchitectures(), runtimeDefault().Architectures) {
		t.Errorf("policy %v", pol)
	}
	rules := pol.GetSyscalls()
	if len(rules) != 3 || !slices.Equal(rules[0].Names, []string{"read", "write"}) || len(rules[1].Args) != 1 {
		t.Errorf("rules %v, want the allow list without sysinfo, the personality rule, the notify rule", rules)
	}
	if s := sysinfoRules(pol); len(s) != 1 || s[0].Action != "SCMP_ACT_NOTIFY" || len(s[0].Names) != 1 {
		t.Errorf("sysinfo rules %v, want one SCMP_ACT_NOTIFY", s)
	}
	if !strings.Contains(logs.String(), "sending the container's sysinfo(2) to the seccomp agent") {
		t.Errorf("log %q", logs)
	}

	// Unconfined (no profile, or one that says so): a policy that allows
	// everything but sysinfo.
	for _, prof := range []*api.SecurityProfile{nil, {ProfileType: api.SecurityProfile_UNCONFINED}} {
		ctx, pod, ctr = workloadPod("default")
		ctr.Linux = &api.LinuxContainer{SeccompProfile: prof}
		adj, _, _ = p.CreateContainer(ctx, pod, ctr)
		pol = adj.GetLinux().GetSeccompPolicy()
		if pol.GetDefaultAction() != "SCMP_ACT_ALLOW" || len(pol.GetSyscalls()) != 1 || sysinfoRules(pol)[0].Action != "SCMP_ACT_NOTIFY" {
			t.Errorf("an unconfined container's policy %v (profile %v)", pol, prof)
		}
	}

	// The mount not served: the policy alone.
	p, _ = newSysinfoPlugin(&fakeMount{files: served}, fakeAgent{serving: true})
	adj, _, _ = p.CreateContainer(workloadPod("default"))
	if adj == nil || len(adj.GetMounts()) != 0 || adj.GetLinux().GetSeccompPolicy() == nil {
		t.Errorf("with the mount not served: %v", adj)
	}
}

func TestCreateContainerLeavesSysinfo(t *testing.T) {
	forbids := runtimeDefault()
	forbids.Syscalls[0].Names = []string{"read", "write"}
	enosys := runtimeDefault()
	enosys.DefaultErrno = &api.OptionalUInt32{Value: 38}
	other := runtimeDefault()
	other.ListenerPath = "/run/other.sock"
	for _, tc := range []struct {
		name    string
		agent   Agent
		ns      string
		policy  *api.LinuxSeccomp
		log     string
		profile *api.SecurityProfile
	}{
		{"runtime default, no policy given", fakeAgent{serving: true}, "default", nil, "gave no seccomp policy", &api.SecurityProfile{ProfileType: api.SecurityProfile_RUNTIME_DEFAULT}},
		{"localhost, no policy given", fakeAgent{serving: true}, "default", nil, "gave no seccomp policy", &api.SecurityProfile{ProfileType: api.SecurityProfile_LOCALHOST}},
		{"no agent", nil, "default", runtimeDefault(), "", nil},
		{"agent not serving", fakeAgent{}, "default", runtimeDefault(), "does not serve /run/cgprocfs/seccomp.sock", nil},
		{"excluded namespace", fakeAgent{serving: true}, "kube-system", runtimeDefault(), "excluded", nil},
		{"policy forbids sysinfo", fakeAgent{serving: true}, "default", forbids, "does not let sysinfo run", nil},
		{"default errno ENOSYS", fakeAgent{serving: true}, "default", enosys, "refuses with errno 38", nil},
		{"another listener", fakeAgent{serving: true}, "default", other, "/run/other.sock", nil},
	} {
		p, logs := newSysinfoPlugin(&fakeMount{serving: true, files: served}, tc.agent)
		ctx, pod, ctr := workloadPod(tc.ns)
		ctr.Linux = &api.LinuxContainer{SeccompPolicy: tc.policy, SeccompProfile: tc.profile}
		adj, _, err := p.CreateContainer(ctx, pod, ctr)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		if adj.GetLinux().GetSeccompPolicy() != nil {
			t.Errorf("%s: policy adjusted: %v", tc.name, adj.GetLinux().GetSeccompPolicy())
		}
		if tc.ns == "default" && len(adj.GetMounts()) != 10 {
			t.Errorf("%s: %d mounts, want the files all the same", tc.name, len(adj.GetMounts()))
		}
		if !strings.Contains(logs.String(), tc.log) {
			t.Errorf("%s: log %q lacks %q", tc.name, logs, tc.log)
		}
	}
}
