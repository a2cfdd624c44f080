package provider

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cgprocfs/cgprocfs/caller"
	"github.com/cgprocfs/cgprocfs/cgroupview"
	"github.com/cgprocfs/cgprocfs/fs"
	"github.com/cgprocfs/cgprocfs/kernelfs"
	"github.com/cgprocfs/cgprocfs/loadavg"
	"github.com/cgprocfs/cgprocfs/procfiles"
)

// Config is what a Provider needs.
type Config struct {
	// Cgroups reads what a cgroup says, v1 or v2.
	Cgroups cgroupview.Reader
	// Resolver tells who is asking.
	Resolver Resolver
	// FS reads kernel files; the provider does not close it.
	FS *kernelfs.FS
	// ProcRoot and SysRoot are where host data (meminfo, stat, the online
	// CPUs, the disks) is read from: /proc and /sys unless a test serves
	// fixture trees.
	ProcRoot, SysRoot string
	Memory            MemoryPolicy
	Logger            *slog.Logger
	// CPUsFromQuota also limits the CPUs shown to the CFS quota rounded up.
	CPUsFromQuota bool
	// Load configures per-container /proc/loadavg (see loadtracker.go).
	Load LoadConfig
	// ContainerIdle is how long a container stays tracked for metrics
	// (Containers) after its last read of any file; 0: until its cgroup
	// is removed.
	ContainerIdle time.Duration
	// Observer is told of failed resolutions, host fallbacks and load
	// rounds, for metrics; nil: no one.
	Observer Observer
}

// MemoryPolicy holds the choices an operator makes about the memory view.
type MemoryPolicy struct {
	// ActiveFileUsedPercent counts this share of the cgroup's active file
	// pages (its working set) as used memory rather than as cache.
	ActiveFileUsedPercent uint64
	// HideSwap shows no swap at all.
	HideSwap bool
}

// Resolver maps a FUSE caller's thread id to its container; caller.Resolver
// in the daemon, a fixed answer in tests.
type Resolver interface {
	Resolve(pid int) (*caller.Caller, error)
	Forget()
}

// Provider builds the content of every file cgprocfs serves.
type Provider struct {
	cfg Config
	log *slog.Logger
	// disks keeps diskstats counters monotonic per container.
	disks diskState
	// hostDisks is the host's disk list, kept between block uevents,
	// and onlineCPUs its online CPUs, kept between cpu uevents.
	hostDisks  *hostDisks
	onlineCPUs *hostOnlineCPUs
	// cpu keeps /proc/stat counters monotonic per container.
	cpu cpuState
	// vm keeps /proc/vmstat's event counters monotonic per container.
	vm vmState
	// thpSize caches the host's transparent huge page size (vmstat.go).
	thpSize atomic.Uint64
	// load tracks containers' load averages; nil when off.
	load *loadavg.Tracker
	// live gives /proc/stat's procs_running and procs_blocked from the
	// load tracker's BPF iterator; nil without it (cputasks.go).
	live     *liveTasks
	nsLevels nsLevelCache
	// memFlights shares simultaneous readings of one cgroup's memory.
	memFlights flightGroup
	// meminfoLayout is the latest parse of the host's meminfo, whose keys
	// never change while the host runs (see hostmeminfo.go).
	meminfoLayout atomic.Pointer[procfiles.Meminfo]
	// seen is every container read lately, for metrics.
	seen seenSet
	obs  Observer

	stop context.CancelFunc
	wg   sync.WaitGroup
}

// New makes a Provider and starts its background work (the load sampler,
// dropping state of containers that are gone); Close stops it.
func New(cfg Config) *Provider {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if cfg.ProcRoot == "" {
		cfg.ProcRoot = "/proc"
	}
	if cfg.SysRoot == "" {
		cfg.SysRoot = "/sys"
	}
	obs := cfg.Observer
	if obs == nil {
		obs = nopObserver{}
	}
	p := &Provider{cfg: cfg, log: log, obs: obs, memFlights: flightGroup{gates: map[flightKey]*flightGate{}}, seen: seenSet{epoch: time.Now()}}
	// Uevents announce this kernel's disks and CPUs only: with a fixture
	// tree for ProcRoot or SysRoot nothing would announce its changes,
	// so the list is read on every open there.
	var err error
	if p.hostDisks, err = newHostList[[]procfiles.DiskstatsLine]("block", filepath.Clean(cfg.ProcRoot) == "/proc"); err != nil {
		log.Warn("host disk list read on every diskstats open", "err", err)
	}
	if p.onlineCPUs, err = newHostList[[]int]("cpu", filepath.Clean(cfg.SysRoot) == "/sys"); err != nil {
		log.Warn("host online CPU list read on every open of a CPU file", "err", err)
	}
	p.load = p.newLoadTracker()
	if p.load != nil {
		p.load.OnRound(func(_ int, took time.Duration) { obs.LoadRound(took) })
	}
	ctx, stop := context.WithCancel(context.Background())
	p.stop = stop
	if p.load != nil {
		p.wg.Go(func() { p.load.Run(ctx) })
	}
	p.wg.Go(func() { p.forgetLoop(ctx) })
	return p
}

// Close stops the background work and waits for it.
func (p *Provider) Close() error {
	p.stop()
	p.wg.Wait()
	p.hostDisks.close()
	p.onlineCPUs.close()
	if p.live != nil && p.live.cgroups != nil {
		return p.live.cgroups.Close()
	}
	return nil
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
		{Path: "proc/vmstat", Content: p.vmstat},
		// The CPU directories as the caller's container sees them
		// (cputree.go), each bound into containers as one directory.
		{Path: "sys/devices/system/cpu", Dir: newCPUTree(p, false), Whole: true},
		// sys/block/<disk>/stat, which iostat reads, for the disks the
		// host has when asked (blockdir.go); bound file by file, since
		// the rest of a disk's directory is the host's.
		{Path: "sys/block", Dir: blockTree{p: p}},
	}
	// sys/devices/system/node, where the host has NUMA (lscpu's NUMA
	// line comes from its nodeN/cpumap).
	if _, err := os.Stat(filepath.Join(p.cfg.SysRoot, "devices/system/node")); err == nil {
		files = append(files, fs.File{Path: "sys/devices/system/node", Dir: newCPUTree(p, true), Whole: true})
	}
	// proc/pressure/{cpu,memory,io}, where the host has them.
	return append(files, p.pressureFiles()...)
}

// forgetLoop drops, every minute, the state of containers that are gone.
func (p *Provider) forgetLoop(ctx context.Context) {
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
			p.vm.forget()
			if p.live != nil && p.live.cgroups != nil {
				// A minute without a read of a container's
				// stat: its next read walks afresh anyway.
				p.live.cgroups.Forget(time.Minute)
			}
			// Drops containers gone or idle, also when no one scrapes.
			p.trackedCallers()
		}
	}
}

// caller resolves who is asking, and charges the open to the caller's
// container (its memory cgroup), whose open files and snapshot bytes the
// fs package caps.
func (p *Provider) caller(ctx context.Context, pid uint32) (*caller.Caller, error) {
	c, err := p.cfg.Resolver.Resolve(int(pid))
	if err != nil {
		p.obs.ResolveFailed()
		return nil, fmt.Errorf("resolving caller %d: %w", pid, err)
	}
	fs.SetOwner(ctx, c.Cgroup.Path(cgroupview.MemoryResource))
	p.seen.touch(c)
	return c, nil
}

// hostFile reads a host /proc file into a new slice.
func (p *Provider) hostFile(name string) ([]byte, error) {
	return p.readFile(filepath.Join(p.cfg.ProcRoot, name))
}

// sysFile reads a host /sys file into a new slice.
func (p *Provider) sysFile(rel string) ([]byte, error) {
	return p.readFile(filepath.Join(p.cfg.SysRoot, rel))
}

// hostRecord reads a host /proc file the kernel generates whole on each
// read (stat, meminfo, uptime, loadavg, pressure/*; not the multi-record
// cpuinfo, swaps, diskstats, vmstat) into a new slice, in one read.
func (p *Provider) hostRecord(name string) ([]byte, error) {
	return p.readRecord(filepath.Join(p.cfg.ProcRoot, name), true)
}

// sysRecord reads a host /sys attribute into a new slice, in one read.
func (p *Provider) sysRecord(rel string) ([]byte, error) {
	return p.readRecord(filepath.Join(p.cfg.SysRoot, rel), true)
}

func (p *Provider) readFile(path string) ([]byte, error) {
	return p.readRecord(path, false)
}

// readRecord reads path into a new slice, as one record (kernelfs.FS.
// ReadRecord) when oneRecord is set.
func (p *Provider) readRecord(path string, oneRecord bool) ([]byte, error) {
	buf := p.cfg.FS.GetBuf()
	defer p.cfg.FS.PutBuf(buf)
	read := p.cfg.FS.ReadFile
	if oneRecord {
		read = p.cfg.FS.ReadRecord
	}
	data, err := read(path, buf)
	if err != nil {
		return nil, err
	}
	return append([]byte(nil), data...), nil
}
