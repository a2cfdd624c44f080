package nriplugin

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/containerd/nri/pkg/api"

	"github.com/cgprocfs/cgprocfs/attach"
)

// fakeMount stands for the cgprocfs mount.
type fakeMount struct {
	serving  bool
	files    []string
	filesErr error
	panics   bool

	mu       sync.Mutex
	attached []int
}

func (m *fakeMount) Mountpoint() string { return "/mp" }
func (m *fakeMount) Serving() (bool, string, error) {
	if m.panics {
		panic("bug")
	}
	if !m.serving {
		return false, "no cgprocfs is mounted at /mp", nil
	}
	return true, "", nil
}
func (m *fakeMount) Files() ([]string, error) { return m.files, m.filesErr }
func (m *fakeMount) Attach(pid int) (attach.Result, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.attached = append(m.attached, pid)
	return attach.Result{Bound: 1}, nil
}
func (m *fakeMount) attachedPids() []int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]int(nil), m.attached...)
}

func newTestPlugin(m Mount) (*Plugin, *bytes.Buffer) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&syncBuffer{b: &buf}, nil))
	return NewPlugin(Policy{ExcludeNamespaces: []string{"kube-system"}}, m, nil, log), &buf
}

type syncBuffer struct {
	mu sync.Mutex
	b  *bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func workload(ns string) (*api.PodSandbox, *api.Container) {
	return &api.PodSandbox{Id: "pod1", Name: "web", Namespace: ns},
		&api.Container{Id: "c1", PodSandboxId: "pod1", Name: "app", Mounts: defaultMounts(), Pid: 4242, State: api.ContainerState_CONTAINER_RUNNING}
}

func TestCreateContainerAddsBinds(t *testing.T) {
	m := &fakeMount{serving: true, files: served}
	p, _ := newTestPlugin(m)
	adj, upd, err := p.CreateContainer(workloadPod("default"))
	if err != nil || upd != nil || adj == nil {
		t.Fatalf("CreateContainer: %v, %v, %v", adj, upd, err)
	}
	if got := len(adj.GetMounts()); got != 10 {
		t.Errorf("%d mounts added, want 10: %v", got, adj.GetMounts())
	}
	for _, mt := range adj.GetMounts() {
		if !strings.HasPrefix(mt.Source, "/mp/") || mt.Destination != strings.TrimPrefix(mt.Source, "/mp") {
			t.Errorf("mount %+v", mt)
		}
	}
}

func workloadPod(ns string) (context.Context, *api.PodSandbox, *api.Container) {
	pod, ctr := workload(ns)
	return context.Background(), pod, ctr
}

func TestCreateContainerAddsNothing(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    *fakeMount
		ns   string
		log  string
	}{
		{"not served", &fakeMount{files: served}, "default", "no cgprocfs is mounted"},
		{"excluded namespace", &fakeMount{serving: true, files: served}, "kube-system", "namespace kube-system is excluded"},
		{"listing fails", &fakeMount{serving: true, filesErr: errors.New("walk failed")}, "default", "walk failed"},
		{"only files a spec cannot bind", &fakeMount{serving: true, files: []string{"proc/vmstat"}}, "default", "no served file"},
		{"a bug", &fakeMount{panics: true}, "default", "panicked"},
	} {
		p, logs := newTestPlugin(tc.m)
		adj, upd, err := p.CreateContainer(workloadPod(tc.ns))
		if adj != nil || upd != nil || err != nil {
			t.Errorf("%s: %v, %v, %v; want no adjustment and no error", tc.name, adj, upd, err)
		}
		if !strings.Contains(logs.String(), tc.log) {
			t.Errorf("%s: log %q lacks %q", tc.name, logs, tc.log)
		}
	}
}

func TestStartContainerAttachesOnlyForTheRest(t *testing.T) {
	// Every served file is in the spec: nothing to attach.
	m := &fakeMount{serving: true, files: []string{"proc/meminfo", "sys/block/sda/stat"}}
	p, _ := newTestPlugin(m)
	_, pod, ctr := workloadPod("default")
	if err := p.StartContainer(context.Background(), pod, ctr); err != nil {
		t.Fatal(err)
	}
	p.Wait()
	if got := m.attachedPids(); len(got) != 0 {
		t.Errorf("attached %v with nothing left to attach", got)
	}
	// A file runc refuses in a spec: attached at start.
	m.files = served
	if err := p.StartContainer(context.Background(), pod, ctr); err != nil {
		t.Fatal(err)
	}
	if got := m.attachedPids(); len(got) != 1 || got[0] != 4242 {
		t.Errorf("attached %v, want [4242]", got)
	}
	// Excluded: not attached.
	_, pod, ctr = workloadPod("kube-system")
	p.StartContainer(context.Background(), pod, ctr)
	p.Wait()
	if got := m.attachedPids(); len(got) != 1 {
		t.Errorf("attached %v into an excluded namespace", got)
	}
	// A bug does not fail the start.
	p, logs := newTestPlugin(&fakeMount{panics: true})
	if err := p.StartContainer(workloadPod("default")); err != nil || !strings.Contains(logs.String(), "panicked") {
		t.Errorf("StartContainer with a bug: %v, log %q", err, logs)
	}
}

func TestSynchronizeAttachesRunningContainers(t *testing.T) {
	m := &fakeMount{serving: true, files: served}
	p, _ := newTestPlugin(m)
	pods := []*api.PodSandbox{
		{Id: "a", Namespace: "default"},
		{Id: "b", Namespace: "kube-system"},
		{Id: "c", Namespace: "default", Annotations: map[string]string{"cgprocfs.io/enabled": "false"}},
	}
	ctrs := []*api.Container{
		{Id: "1", PodSandboxId: "a", Pid: 101, State: api.ContainerState_CONTAINER_RUNNING},
		{Id: "2", PodSandboxId: "a", Pid: 102, State: api.ContainerState_CONTAINER_STOPPED},
		{Id: "3", PodSandboxId: "b", Pid: 103, State: api.ContainerState_CONTAINER_RUNNING},
		{Id: "4", PodSandboxId: "c", Pid: 104, State: api.ContainerState_CONTAINER_RUNNING},
		{Id: "5", PodSandboxId: "a", Pid: 0, State: api.ContainerState_CONTAINER_RUNNING},
		{Id: "6", PodSandboxId: "a", Pid: 106, State: api.ContainerState_CONTAINER_RUNNING},
	}
	upd, err := p.Synchronize(context.Background(), pods, ctrs)
	if upd != nil || err != nil {
		t.Fatalf("Synchronize: %v, %v", upd, err)
	}
	p.Wait()
	got := m.attachedPids()
	if len(got) != 2 || got[0]+got[1] != 101+106 {
		t.Errorf("attached %v, want 101 and 106", got)
	}
	// Not served: nothing.
	m2 := &fakeMount{files: served}
	p2, _ := newTestPlugin(m2)
	p2.Synchronize(context.Background(), pods, ctrs)
	p2.Wait()
	if len(m2.attachedPids()) != 0 {
		t.Error("attached with the mount not served")
	}
}
