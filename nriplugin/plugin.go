package nriplugin

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/containerd/nri/pkg/api"

	"github.com/cgprocfs/cgprocfs/attach"
)

// Mount is the cgprocfs mount the plugin hands out.
type Mount interface {
	// Mountpoint is where it is mounted, in the runtime's mount namespace
	// (the bind sources are paths below it).
	Mountpoint() string
	// Serving tells whether a live cgprocfs answers there; when not, why
	// says what is wrong.
	Serving() (ok bool, why string, err error)
	// Files lists the files it serves, relative to the mount point.
	Files() ([]string, error)
	// Attach binds every served file into the container of pid.
	Attach(pid int) (attach.Result, error)
}

// attachWait is how long StartContainer waits for an attach before it lets
// the container start anyway (the attach goes on): well under the runtime's
// request timeout (2 s by default), past which containerd drops the plugin.
const attachWait = time.Second

// Plugin is the NRI plugin. Its handlers never fail: an error is logged and
// the container goes on unchanged.
type Plugin struct {
	policy Policy
	mount  Mount
	// agent, when not nil, gets the containers' sysinfo(2): their seccomp
	// policies send it there.
	agent Agent
	log   *slog.Logger
	// attachMu runs one attach at a time, so that a container seen both at
	// Synchronize and at StartContainer is not bound twice over.
	attachMu sync.Mutex
	// pending counts attaches that outlived their handler.
	pending sync.WaitGroup
}

// NewPlugin makes the plugin for mount under policy; with an agent, the
// containers' seccomp policies send sysinfo(2) to it.
func NewPlugin(policy Policy, mount Mount, agent Agent, log *slog.Logger) *Plugin {
	return &Plugin{policy: policy, mount: mount, agent: agent, log: log}
}

// Wait returns when no attach started by a handler is still running.
func (p *Plugin) Wait() { p.pending.Wait() }

// CreateContainer adds a read-only bind of each served file a spec can
// bind, when the container gets the files and the mount is served, and,
// with an agent that serves, sends the container's sysinfo(2) to it.
func (p *Plugin) CreateContainer(_ context.Context, pod *api.PodSandbox, ctr *api.Container) (adj *api.ContainerAdjustment, _ []*api.ContainerUpdate, _ error) {
	log := p.containerLog(pod, ctr)
	defer p.recoverTo(log, "CreateContainer", func() { adj = nil })
	adj = &api.ContainerAdjustment{}
	changed := false
	mounts, why, err := p.specMounts(pod, ctr)
	switch {
	case err != nil:
		log.Warn("nri: binding nothing into the container's spec", "err", err)
	case len(mounts) == 0:
		log.Info("nri: binding nothing into the container's spec", "why", why)
	default:
		dests := make([]string, 0, len(mounts))
		for _, m := range mounts {
			adj.AddMount(m)
			dests = append(dests, m.Destination)
		}
		log.Info("nri: binding into the container's spec", "files", len(mounts), "destinations", strings.Join(dests, " "))
		changed = true
	}
	if p.agent != nil && p.policy.Decide(pod, ctr).Enabled {
		policy, why, err := p.seccompPolicy(ctr)
		switch {
		case err != nil:
			log.Warn("nri: leaving the container's sysinfo(2) to the kernel", "err", err)
		case policy == nil:
			log.Info("nri: leaving the container's sysinfo(2) to the kernel", "why", why)
		default:
			adj.SetLinuxSeccompPolicy(policy)
			log.Info("nri: sending the container's sysinfo(2) to the seccomp agent", "listener", policy.GetListenerPath(), "rules", len(policy.GetSyscalls()))
			changed = true
		}
	}
	if !changed {
		return nil, nil, nil
	}
	return adj, nil, nil
}

// specMounts decides CreateContainer's mounts; with none, why says why.
func (p *Plugin) specMounts(pod *api.PodSandbox, ctr *api.Container) (mounts []*api.Mount, why string, err error) {
	d := p.policy.Decide(pod, ctr)
	if d.Warning != "" {
		p.containerLog(pod, ctr).Warn("nri: " + d.Warning)
	}
	if !d.Enabled {
		return nil, d.Reason, nil
	}
	// Bind sources in a mount that is not served would fail the
	// container's creation in the runtime.
	ok, notServing, err := p.mount.Serving()
	if err != nil {
		return nil, "", err
	}
	if !ok {
		return nil, notServing, nil
	}
	served, err := p.mount.Files()
	if err != nil {
		return nil, "", err
	}
	spec, _ := Split(served)
	mounts, notes := SpecMounts(p.mount.Mountpoint(), spec, ctr.GetMounts())
	if len(notes) > 0 {
		p.containerLog(pod, ctr).Info("nri: files left out of the spec", "notes", strings.Join(notes, "; "))
	}
	if len(mounts) == 0 {
		return nil, "no served file can be bound by the spec", nil
	}
	return mounts, "", nil
}

// StartContainer attaches the served files a spec cannot bind, when there
// are any: the container's init exists and waits to exec, so its workload
// sees them from its first instruction.
func (p *Plugin) StartContainer(_ context.Context, pod *api.PodSandbox, ctr *api.Container) error {
	log := p.containerLog(pod, ctr)
	defer p.recoverTo(log, "StartContainer", nil)
	if d := p.policy.Decide(pod, ctr); !d.Enabled {
		return nil
	}
	if ok, _, err := p.mount.Serving(); err != nil || !ok {
		return nil
	}
	served, err := p.mount.Files()
	if err != nil {
		log.Warn("nri: attaching nothing", "err", err)
		return nil
	}
	if _, rest := Split(served); len(rest) == 0 {
		return nil // the spec's binds hold every file
	}
	if ctr.GetPid() == 0 {
		log.Warn("nri: attaching nothing: the runtime gave no pid")
		return nil
	}
	done := p.attachAsync(log, int(ctr.GetPid()))
	select {
	case <-done:
	case <-time.After(attachWait):
		log.Warn("nri: attach is slow; letting the container start while it goes on", "waited", attachWait)
	}
	return nil
}

// Synchronize attaches into the running containers that get the files (the
// containers of an earlier daemon, or ones started while none ran). It
// answers at once: the attaches go on in the background, so that many
// containers cannot make the runtime time the plugin out.
func (p *Plugin) Synchronize(_ context.Context, pods []*api.PodSandbox, ctrs []*api.Container) (_ []*api.ContainerUpdate, _ error) {
	defer p.recoverTo(p.log, "Synchronize", nil)
	byID := make(map[string]*api.PodSandbox, len(pods))
	for _, pod := range pods {
		byID[pod.GetId()] = pod
	}
	if ok, why, err := p.mount.Serving(); err != nil || !ok {
		p.log.Warn("nri: attaching into no running container: the mount is not served", "why", why, "err", err)
		return nil, nil
	}
	var pids []int
	var logs []*slog.Logger
	for _, ctr := range ctrs {
		pod := byID[ctr.GetPodSandboxId()]
		if ctr.GetState() != api.ContainerState_CONTAINER_RUNNING || ctr.GetPid() == 0 {
			continue
		}
		if d := p.policy.Decide(pod, ctr); !d.Enabled {
			continue
		}
		pids = append(pids, int(ctr.GetPid()))
		logs = append(logs, p.containerLog(pod, ctr))
	}
	p.log.Info("nri: synchronized", "pods", len(pods), "containers", len(ctrs), "attaching", len(pids))
	for i, pid := range pids {
		p.attachAsync(logs[i], pid)
	}
	return nil, nil
}

// attachAsync attaches into pid's container in the background, one attach
// at a time, and closes the channel it returns when done.
func (p *Plugin) attachAsync(log *slog.Logger, pid int) <-chan struct{} {
	done := make(chan struct{})
	p.pending.Add(1)
	go func() {
		defer p.pending.Done()
		defer close(done)
		defer p.recoverTo(log, "attach", nil)
		p.attachMu.Lock()
		defer p.attachMu.Unlock()
		r, err := p.mount.Attach(pid)
		switch {
		case err != nil:
			log.Warn("nri: attach failed", "pid", pid, "bound", r.Bound, "replaced", r.Replaced, "err", err)
		case r.Bound+r.Replaced > 0:
			log.Info("nri: attached", "pid", pid, "bound", r.Bound, "replaced", r.Replaced)
		}
	}()
	return done
}

func (p *Plugin) containerLog(pod *api.PodSandbox, ctr *api.Container) *slog.Logger {
	return p.log.With("pod", pod.GetNamespace()+"/"+pod.GetName(), "container", ctr.GetName(), "id", shortID(ctr.GetId()))
}

// recoverTo turns a panic in a handler into a log line (and, through
// reset, an empty answer): a bug here must not fail a container or end the
// daemon.
func (p *Plugin) recoverTo(log *slog.Logger, what string, reset func()) {
	if v := recover(); v != nil {
		log.Error("nri: "+what+" panicked; the container goes on unchanged", "panic", fmt.Sprint(v))
		if reset != nil {
			reset()
		}
	}
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
