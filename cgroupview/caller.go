package cgroupview

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Caller is who is asking: the requesting thread and the container it
// belongs to.
type Caller struct {
	// Pid is the thread id FUSE reported, in the daemon's pid namespace.
	Pid int
	// HostNS is true when the caller shares the daemon's pid namespace; it
	// then gets its own cgroup rather than a container's.
	HostNS bool
	// PidNS is the inode of the caller's pid namespace.
	PidNS uint64
	// InitPid is the init of the caller's pid namespace (the caller itself
	// when HostNS), and InitStart its start time in clock ticks after boot:
	// when the container started. It is 0 when HostNS, as a host process
	// starts no container and reading its start would cost every open.
	InitPid   int
	InitStart uint64
	// Cgroup is the cgroup whose view the caller gets.
	Cgroup *Cgroup
}

// Resolver maps FUSE caller pids to containers. A pid namespace lives as long
// as its container, so the namespace-to-init mapping is cached and checked
// against the init's start time on every use, which catches pid reuse.
type Resolver struct {
	h        *Hierarchy
	procRoot string
	selfNS   uint64

	mu    sync.Mutex
	inits map[uint64]nsInit

	cgMu    sync.Mutex
	cgroups map[string]*Cgroup // /proc/<pid>/cgroup content -> parse

	pids *pidFiles
}

type nsInit struct {
	pid   int
	start uint64
}

// NewResolver makes a Resolver for callers seen from this process's pid
// namespace. procRoot is the real /proc: FUSE pids are real pids, whatever
// proc root the rendered host data comes from.
func NewResolver(h *Hierarchy, procRoot string) (*Resolver, error) {
	r := &Resolver{h: h, procRoot: procRoot, inits: map[uint64]nsInit{}, pids: newPidFiles(procRoot)}
	ns, err := r.pidNS(os.Getpid())
	if err != nil {
		return nil, fmt.Errorf("reading own pid namespace: %w", err)
	}
	r.selfNS = ns
	return r, nil
}

// Resolve finds the container of thread pid. A caller that vanished yields
// ErrCallerGone, never another process's cgroup.
func (r *Resolver) Resolve(pid int) (*Caller, error) {
	ns, err := r.pidNS(pid)
	if err != nil {
		return nil, err
	}
	c := &Caller{Pid: pid, PidNS: ns, HostNS: ns == r.selfNS}
	if c.HostNS {
		c.InitPid = pid
		var err error
		c.Cgroup, err = r.cgroupOf(pid)
		if err != nil {
			return nil, err
		}
		return c, nil
	}

	r.mu.Lock()
	cached, ok := r.inits[ns]
	r.mu.Unlock()
	if ok {
		// Read the cgroup first, then confirm the pid still is the same
		// init: if it is, the cgroup read belonged to it.
		cg, err := r.cgroupOf(cached.pid)
		if err == nil && r.isInit(cached, ns) {
			c.InitPid, c.InitStart, c.Cgroup = cached.pid, cached.start, cg
			return c, nil
		}
		r.mu.Lock()
		if r.inits[ns] == cached {
			delete(r.inits, ns)
		}
		r.mu.Unlock()
	}

	init, err := r.findInit(pid, ns)
	if err != nil {
		return nil, err
	}
	cg, err := r.cgroupOf(init.pid)
	if err != nil {
		return nil, err
	}
	if !r.isInit(init, ns) {
		return nil, fmt.Errorf("%w: init of pid %d exited", ErrCallerGone, pid)
	}
	r.mu.Lock()
	r.inits[ns] = init
	r.mu.Unlock()
	c.InitPid, c.InitStart, c.Cgroup = init.pid, init.start, cg
	return c, nil
}

// Forget drops cached namespaces whose init is gone; the daemon calls it
// now and then so the cache does not grow with containers that ended.
func (r *Resolver) Forget() {
	r.pids.sweep(time.Minute)
	r.mu.Lock()
	defer r.mu.Unlock()
	for ns, in := range r.inits {
		if !r.isInit(in, ns) {
			delete(r.inits, ns)
		}
	}
}

// findInit walks up the parent chain while the parent shares the caller's
// pid namespace; the last process in it is the namespace's init. Orphans are
// reparented inside the namespace, so the walk never leaves it early.
func (r *Resolver) findInit(pid int, ns uint64) (nsInit, error) {
	cur, retries := pid, 0
	for range 4096 {
		st, err := r.stat(cur)
		if err != nil {
			return nsInit{}, err
		}
		if st.ppid <= 0 {
			return nsInit{pid: cur, start: st.start}, nil
		}
		pns, err := r.pidNS(st.ppid)
		if err != nil {
			// The parent just exited and cur is being reparented
			// inside the namespace: look again.
			if retries++; retries > 3 {
				return nsInit{}, fmt.Errorf("%w: parent %d of %d vanished", ErrCallerGone, st.ppid, cur)
			}
			continue
		}
		if pns != ns {
			return nsInit{pid: cur, start: st.start}, nil
		}
		cur = st.ppid
	}
	return nsInit{}, fmt.Errorf("parent chain of pid %d too long", pid)
}

func (r *Resolver) isInit(in nsInit, ns uint64) bool {
	st, err := r.stat(in.pid)
	if err != nil || st.start != in.start {
		return false
	}
	cur, err := r.pidNS(in.pid)
	return err == nil && cur == ns
}

func (r *Resolver) cgroupOf(pid int) (*Cgroup, error) {
	buf := getBuf()
	defer putBuf(buf)
	data, err := r.pids.read(r.procRoot, pid, "cgroup", buf)
	if err != nil {
		return nil, gone(pid, err)
	}
	if len(data) == 0 {
		// A zombie's cgroup file is empty.
		return nil, fmt.Errorf("%w: pid %d has exited", ErrCallerGone, pid)
	}
	// Many callers share a few cgroups: reuse the parse of identical
	// content (a Cgroup is never changed after parsing).
	r.cgMu.Lock()
	cg, ok := r.cgroups[string(data)]
	r.cgMu.Unlock()
	if ok {
		return cg, nil
	}
	cg, err = ParseProcCgroup(r.h, data)
	if err != nil {
		return nil, err
	}
	r.cgMu.Lock()
	if r.cgroups == nil || len(r.cgroups) >= maxParsedCgroups {
		r.cgroups = map[string]*Cgroup{}
	}
	r.cgroups[string(data)] = cg
	r.cgMu.Unlock()
	return cg, nil
}

// maxParsedCgroups bounds the cache of parsed /proc/<pid>/cgroup contents;
// when full it starts afresh.
const maxParsedCgroups = 4096

// pidNS is the inode of pid's pid namespace, from the "pid:[N]" link.
func (r *Resolver) pidNS(pid int) (uint64, error) {
	var buf [64]byte
	n, err := syscall.Readlink(r.procRoot+"/"+strconv.Itoa(pid)+"/ns/pid", buf[:])
	if err != nil {
		return 0, gone(pid, err)
	}
	return ParseNSLink(buf[:n])
}

// ParseNSLink parses a namespace link target such as "pid:[4026531836]".
func ParseNSLink(b []byte) (uint64, error) {
	i := bytes.IndexByte(b, '[')
	if i < 0 || len(b) < i+3 || b[len(b)-1] != ']' {
		return 0, fmt.Errorf("malformed namespace link %q", b)
	}
	return strconv.ParseUint(string(b[i+1:len(b)-1]), 10, 64)
}

type procStat struct {
	state byte
	ppid  int
	start uint64
}

func (r *Resolver) stat(pid int) (procStat, error) {
	buf := getBuf()
	defer putBuf(buf)
	data, err := r.pids.read(r.procRoot, pid, "stat", buf)
	if err != nil {
		return procStat{}, gone(pid, err)
	}
	return ParsePidStat(data)
}

// ParsePidStat takes state, ppid and starttime out of /proc/<pid>/stat. The
// command name may hold spaces and parentheses, so fields count from the last
// ')'.
func ParsePidStat(data []byte) (procStat, error) {
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("malformed pid stat: no ')'")
	}
	f := bytes.Fields(data[i+1:])
	// f[0] is field 3 (state); starttime is field 22.
	if len(f) < 20 || len(f[0]) != 1 {
		return procStat{}, fmt.Errorf("malformed pid stat: %d fields", len(f)+2)
	}
	ppid, err := strconv.Atoi(string(f[1]))
	if err != nil {
		return procStat{}, fmt.Errorf("malformed pid stat ppid: %w", err)
	}
	start, err := strconv.ParseUint(string(f[19]), 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("malformed pid stat starttime: %w", err)
	}
	return procStat{state: f[0][0], ppid: ppid, start: start}, nil
}

func gone(pid int, err error) error {
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("%w: pid %d: %v", ErrCallerGone, pid, err)
	}
	return fmt.Errorf("pid %d: %w", pid, err)
}
