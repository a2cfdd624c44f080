package nriplugin

import (
	"fmt"

	"github.com/containerd/nri/pkg/api"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/cgprocfs/cgprocfs/seccompprofile"
)

// Agent is the daemon's seccomp agent, which answers containers' sysinfo(2)
// (package seccompagent).
type Agent interface {
	// Listener is its socket, a profile's listenerPath.
	Listener() string
	// Serving tells whether it answers there now: runc refuses to start a
	// container whose listener nobody serves, so the rule is added only
	// while it does.
	Serving() bool
}

// seccompPolicy is the container's seccomp policy with sysinfo sent to the
// agent, or nil with why not. A container without a policy (unconfined)
// gets one that allows every call but sends sysinfo to the agent.
func (p *Plugin) seccompPolicy(ctr *api.Container) (policy *api.LinuxSeccomp, why string, err error) {
	if p.agent == nil {
		return nil, "", nil
	}
	if !p.agent.Serving() {
		return nil, "the seccomp agent does not serve " + p.agent.Listener(), nil
	}
	if ctr.GetLinux().GetSeccompPolicy() == nil {
		// No policy: an unconfined container, or a runtime that does not
		// pass the policy to plugins (containerd did not before 2026's
		// "Pass seccomp policy to plugins"). A container with a runtime
		// default or localhost profile must keep it, not get allow-all.
		switch t := ctr.GetLinux().GetSeccompProfile().GetProfileType(); {
		case ctr.GetLinux().GetSeccompProfile() == nil, t == api.SecurityProfile_UNCONFINED:
		default:
			return nil, fmt.Sprintf("the runtime gave no seccomp policy for a container whose profile is %s (a runtime too old to pass it to plugins)", t), nil
		}
	}
	cur := toOCISeccomp(ctr.GetLinux().GetSeccompPolicy())
	// The runtime rebuilds the spec's policy from the adjustment without
	// its defaultErrnoRet (NRI's runtime-tools generate, v0.12), which
	// would turn a refusal with ENOSYS (containers-common's default, so
	// that glibc falls back from clone3) into EPERM.
	if cur != nil && cur.DefaultErrnoRet != nil && *cur.DefaultErrnoRet != uint(unix.EPERM) {
		return nil, fmt.Sprintf("the container's seccomp policy refuses with errno %d by default, which the runtime would lose in an adjustment", *cur.DefaultErrnoRet), nil
	}
	out, err := seccompprofile.AddSpec(cur, p.agent.Listener())
	if err != nil {
		return nil, "", fmt.Errorf("the container's seccomp policy: %w", err)
	}
	return api.FromOCILinuxSeccomp(out), "", nil
}

// toOCISeccomp is the runtime-spec form of an NRI seccomp policy (the NRI
// API converts syscalls only), nil for nil.
func toOCISeccomp(s *api.LinuxSeccomp) *specs.LinuxSeccomp {
	if s == nil {
		return nil
	}
	o := &specs.LinuxSeccomp{
		DefaultAction:    specs.LinuxSeccompAction(s.GetDefaultAction()),
		ListenerPath:     s.GetListenerPath(),
		ListenerMetadata: s.GetListenerMetadata(),
		Syscalls:         api.ToOCILinuxSyscalls(s.GetSyscalls()),
	}
	if e := s.GetDefaultErrno(); e != nil {
		v := uint(e.GetValue())
		o.DefaultErrnoRet = &v
	}
	for _, a := range s.GetArchitectures() {
		o.Architectures = append(o.Architectures, specs.Arch(a))
	}
	for _, f := range s.GetFlags() {
		o.Flags = append(o.Flags, specs.LinuxSeccompFlag(f))
	}
	return o
}
