// Package provider joins the pieces for each served file: who is asking
// (cgroupview.Resolver), what their cgroup says (cgroupview), what the host
// says (procRoot), and the pure renderers of procfiles.
package provider

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/cgprocfs/cgprocfs/cgroupview"
	"github.com/cgprocfs/cgprocfs/fs"
	"github.com/cgprocfs/cgprocfs/loadavg"
)

// Config is what a Provider needs.
type Config struct {
	Hierarchy *cgroupview.Hierarchy
	Resolver  *cgroupview.Resolver
	// ProcRoot is where host data (meminfo, stat, ...) is read from.
	ProcRoot string
	Memory   MemoryPolicy
	Logger   *slog.Logger
	// CPUsFromQuota also limits the CPUs shown to the CFS quota rounded up.
	CPUsFromQuota bool
	// Load configures per-container /proc/loadavg (see load.go).
	Load LoadConfig
}

// MemoryPolicy holds the choices an operator makes about the memory view.
type MemoryPolicy struct {
	// ActiveFileUsedPercent counts this share of the cgroup's active file
	// pages (its working set) as used memory rather than as cache.
	ActiveFileUsedPercent uint64
	// HideSwap shows no swap at all.
	HideSwap bool
}

// Provider builds the content of every file cgprocfs serves.
type Provider struct {
	cfg Config
	log *slog.Logger
	// disks keeps diskstats counters monotonic per container.
	disks diskState
	// cpu keeps /proc/stat counters monotonic per container.
	cpu cpuState
	// load tracks containers' load averages; nil when off.
	load     *loadavg.Tracker
	nsLevels nsLevelCache
}

// New makes a Provider.
func New(cfg Config) *Provider {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	p := &Provider{cfg: cfg, log: log}
	p.load = p.newLoadTracker()
	return p
}

// Files is the tree cgprocfs mounts.
func (p *Provider) Files() []fs.File {
	files := []fs.File{
		{Path: "proc/meminfo", Content: p.meminfo},
		{Path: "proc/swaps", Content: p.swaps},
		{Path: "proc/diskstats", Content: p.diskstats},
		{Path: "proc/cpuinfo", Content: p.cpuinfo},
		{Path: "proc/stat", Content: p.stat},
		{Path: "proc/loadavg", Content: p.loadavgFile},
		{Path: "proc/uptime", Content: p.uptimeFile},
		{Path: "sys/devices/system/cpu/online", Content: p.cpuList("online")},
		{Path: "sys/devices/system/cpu/present", Content: p.cpuList("present")},
		{Path: "sys/devices/system/cpu/possible", Content: p.cpuList("possible")},
	}
	// sys/block/<disk>/stat, which iostat reads, for the host's disks.
	return append(files, p.blockStatFiles()...)
}

// Run does the background work (dropping state of containers that are gone)
// until ctx ends.
func (p *Provider) Run(ctx context.Context) {
	if p.load != nil {
		go p.load.Run(ctx)
	}
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p.cfg.Resolver.Forget()
			p.disks.forget()
			p.cpu.forget()
		}
	}
}

func (p *Provider) caller(pid uint32) (*cgroupview.Caller, error) {
	c, err := p.cfg.Resolver.Resolve(int(pid))
	if err != nil {
		return nil, fmt.Errorf("resolving caller %d: %w", pid, err)
	}
	return c, nil
}

func (p *Provider) hostFile(name string) ([]byte, error) {
	return os.ReadFile(filepath.Join(p.cfg.ProcRoot, name))
}
