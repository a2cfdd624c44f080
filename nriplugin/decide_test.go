package nriplugin

import (
	"slices"
	"strings"
	"testing"

	"github.com/containerd/nri/pkg/api"
)

// served is what a cgprocfs mount serves on a host with one disk, plus a
// /proc file runc refuses in a spec.
var served = []string{
	"proc/cpuinfo", "proc/diskstats", "proc/loadavg", "proc/meminfo", "proc/pressure/cpu", "proc/stat",
	"proc/swaps", "proc/uptime", "proc/vmstat", "sys/block/sda/stat", "sys/devices/system/cpu/",
	"sys/devices/system/node/",
}

// defaultMounts are the mounts containerd's default spec has.
func defaultMounts() []*api.Mount {
	return []*api.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc"},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs"},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs"},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup"},
		{Destination: "/etc/hosts", Type: "bind", Source: "/var/lib/x/hosts"},
	}
}

func TestSplit(t *testing.T) {
	spec, rest := Split(served)
	wantRest := []string{"proc/pressure/cpu", "proc/vmstat"}
	if !slices.Equal(rest, wantRest) {
		t.Errorf("rest = %q, want %q", rest, wantRest)
	}
	if len(spec)+len(rest) != len(served) || slices.Contains(spec, "proc/vmstat") || !slices.Contains(spec, "sys/block/sda/stat") {
		t.Errorf("spec = %q", spec)
	}
}

func destinations(ms []*api.Mount) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Destination)
	}
	return out
}

func TestSpecMounts(t *testing.T) {
	spec, _ := Split(served)
	ms, notes := SpecMounts("/var/lib/cgprocfs", spec, defaultMounts())
	if len(notes) != 0 {
		t.Errorf("notes: %q", notes)
	}
	want := []string{
		"/proc/cpuinfo", "/proc/diskstats", "/proc/loadavg", "/proc/meminfo", "/proc/stat", "/proc/swaps", "/proc/uptime",
		"/sys/block/sda/stat", "/sys/devices/system/cpu", "/sys/devices/system/node",
	}
	if got := destinations(ms); !slices.Equal(got, want) {
		t.Errorf("destinations %q, want %q", got, want)
	}
	m := ms[3]
	if m.Source != "/var/lib/cgprocfs/proc/meminfo" || m.Type != "bind" || !slices.Contains(m.Options, "ro") || !slices.Contains(m.Options, "bind") {
		t.Errorf("meminfo mount %+v", m)
	}
	// Options are each mount's own: changing one must not change another.
	ms[0].Options[0] = "x"
	if ms[1].Options[0] != "bind" {
		t.Error("mounts share their options slice")
	}
}

func TestSpecMountsLeavesOthersMountsAlone(t *testing.T) {
	spec, _ := Split(served)
	existing := append(defaultMounts(),
		&api.Mount{Destination: "/proc/meminfo", Type: "bind", Source: "/var/lib/lxcfs/proc/meminfo"},
		&api.Mount{Destination: "/sys/devices/system/cpu/", Type: "bind", Source: "/somewhere"},
	)
	ms, notes := SpecMounts("/mp", spec, existing)
	got := destinations(ms)
	for _, d := range []string{"/proc/meminfo", "/sys/devices/system/cpu"} {
		if slices.Contains(got, d) {
			t.Errorf("%s bound over another mount: %q", d, got)
		}
	}
	if !slices.Contains(got, "/proc/stat") || !slices.Contains(got, "/sys/block/sda/stat") {
		t.Errorf("uncovered files left out: %q", got)
	}
	all := strings.Join(notes, "; ")
	if len(notes) != 2 || !strings.Contains(all, "/proc/meminfo: left to the container's mount at /proc/meminfo") ||
		!strings.Contains(all, "/sys/devices/system/cpu: left to the container's mount at /sys/devices/system/cpu") {
		t.Errorf("notes: %q", notes)
	}
}

func TestSpecMountsNeedsTheKernelFilesystems(t *testing.T) {
	spec, _ := Split(served)
	// A spec without /sys (a bind there would create the path in the
	// image) and with /proc.
	ms, notes := SpecMounts("/mp", spec, []*api.Mount{{Destination: "/proc", Type: "proc"}})
	for _, d := range destinations(ms) {
		if strings.HasPrefix(d, "/sys/") {
			t.Errorf("bound %s without a /sys mount", d)
		}
	}
	if len(ms) != 7 || len(notes) != 3 {
		t.Errorf("mounts %q, notes %q", destinations(ms), notes)
	}
	if ms, _ := SpecMounts("/mp", spec, nil); len(ms) != 0 {
		t.Errorf("no mounts at all: %q", destinations(ms))
	}
}

func TestDecide(t *testing.T) {
	pod := func(ns string, ann map[string]string) *api.PodSandbox {
		return &api.PodSandbox{Namespace: ns, Annotations: ann}
	}
	ctr := func(ann map[string]string) *api.Container { return &api.Container{Annotations: ann} }
	off := map[string]string{"cgprocfs.io/enabled": "false"}
	on := map[string]string{"cgprocfs.io/enabled": "true"}
	def := Policy{ExcludeNamespaces: []string{"kube-system"}}
	optIn := Policy{OptIn: true, ExcludeNamespaces: []string{"kube-system"}}
	for _, tc := range []struct {
		name   string
		policy Policy
		pod    *api.PodSandbox
		ctr    *api.Container
		want   bool
	}{
		{"default", def, pod("default", nil), ctr(nil), true},
		{"pod annotation off", def, pod("default", off), ctr(nil), false},
		{"container annotation off", def, pod("default", nil), ctr(off), false},
		{"container on beats pod off", def, pod("default", off), ctr(on), true},
		{"excluded namespace", def, pod("kube-system", nil), ctr(nil), false},
		{"excluded namespace beats annotation", def, pod("kube-system", on), ctr(on), false},
		{"no exclusions", Policy{}, pod("kube-system", nil), ctr(nil), true},
		{"opt-in without annotation", optIn, pod("default", nil), ctr(nil), false},
		{"opt-in pod annotation", optIn, pod("default", on), ctr(nil), true},
		{"opt-in container annotation", optIn, pod("default", nil), ctr(on), true},
		{"bad value ignored", def, pod("default", map[string]string{"cgprocfs.io/enabled": "maybe"}), ctr(nil), true},
		{"nil pod", def, nil, ctr(nil), true},
	} {
		d := tc.policy.Decide(tc.pod, tc.ctr)
		if d.Enabled != tc.want || d.Reason == "" {
			t.Errorf("%s: %+v, want enabled=%v", tc.name, d, tc.want)
		}
	}
}
