package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// seccompOf is the seccomp policy of the container's spec, as containerd
// made it.
func (c *containerd) seccompOf(id string) *specs.LinuxSeccomp {
	c.t.Helper()
	var in struct {
		Info struct {
			RuntimeSpec struct {
				Linux struct{ Seccomp *specs.LinuxSeccomp } `json:"linux"`
			} `json:"runtimeSpec"`
		} `json:"info"`
	}
	if err := json.Unmarshal([]byte(c.Crictl("inspect", "-o", "json", id)), &in); err != nil {
		c.t.Fatalf("crictl inspect %s: %v", id, err)
	}
	return in.Info.RuntimeSpec.Linux.Seccomp
}

// TestNRISysinfoContainerd: with --nri-sysinfo the NRI plugin sends the
// sysinfo(2) of containerd's containers to the seccomp agent through their
// seccomp policies (NRI's SetLinuxSeccompPolicy): a RuntimeDefault
// container keeps containerd's default profile with sysinfo moved to a
// notify rule, an unconfined one gets an allow-all policy with that rule,
// and busybox free in each shows its 200 MiB limit; with the agent's
// socket gone a container gets no rule and starts.
func TestNRISysinfoContainerd(t *testing.T) {
	const limit = 209715200 // 200 MiB
	c := newContainerd(t)
	sock := filepath.Join(t.TempDir(), "seccomp.sock")
	d := startDaemon(t, "--nri", "--nri-socket", c.NRISocket, "--nri-sysinfo", "--seccomp-listener", sock)
	poll(t, 20*time.Second, "the plugin to register with containerd", func() bool {
		return strings.Contains(d.logs(), "nri: registered")
	})
	pod := c.RunPod("sysinfo", "default", nil)
	for _, tc := range []struct {
		name    string
		seccomp map[string]any
		def     specs.LinuxSeccompAction
	}{
		{"runtime-default", map[string]any{"profile_type": 0}, specs.ActErrno},
		{"unconfined", nil, specs.ActAllow},
	} {
		id := c.ContainerSeccomp(pod, tc.name, limit, nil, tc.seccomp)
		sc := c.seccompOf(id)
		if sc == nil {
			t.Errorf("%s: no seccomp policy in the spec", tc.name)
			continue
		}
		var notify, others int
		for _, r := range sc.Syscalls {
			if slices.Contains(r.Names, "sysinfo") {
				if r.Action == specs.ActNotify && len(r.Names) == 1 {
					notify++
				} else {
					others++
				}
			}
		}
		t.Logf("%s: default %s, %d rules, listener %s", tc.name, sc.DefaultAction, len(sc.Syscalls), sc.ListenerPath)
		if sc.ListenerPath != sock || sc.DefaultAction != tc.def || notify != 1 || others != 0 {
			t.Errorf("%s: policy default %s, listener %q, %d notify and %d other rules naming sysinfo; want %s, %q, 1 and 0",
				tc.name, sc.DefaultAction, sc.ListenerPath, notify, others, tc.def, sock)
		}
		out := c.Crictl("exec", id, "/busybox", "free")
		t.Logf("%s: busybox free:\n%s", tc.name, out)
		if total := busyboxFreeTotal(t, out); total != limit/1024 {
			t.Errorf("%s: busybox free total %d KiB, want %d", tc.name, total, limit/1024)
		}
	}

	// With the agent's socket gone, runc could not connect: the plugin
	// leaves the policy alone and the container starts.
	if err := os.Remove(sock); err != nil {
		t.Fatal(err)
	}
	id := c.ContainerSeccomp(pod, "no-agent", limit, nil, map[string]any{"profile_type": 0})
	sc := c.seccompOf(id)
	if sc == nil || sc.ListenerPath != "" || slices.ContainsFunc(sc.Syscalls, func(r specs.LinuxSyscall) bool { return r.Action == specs.ActNotify }) {
		t.Errorf("with no agent serving, the container's policy was changed: %+v", sc)
	}
	if !strings.Contains(d.logs(), "does not serve") {
		t.Errorf("the daemon did not log why it left the policy alone")
	}
	host := hostSysinfo(t)
	if total := busyboxFreeTotal(t, c.Crictl("exec", id, "/busybox", "free")); total != int64(host.Totalram*uint64(host.Unit)/1024) {
		t.Errorf("busybox free total %d KiB with no agent, want the host's", total)
	}
}
