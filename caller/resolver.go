package caller

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"

	"github.com/cgprocfs/cgprocfs/cgroupview"
	"github.com/cgprocfs/cgprocfs/kernelfs"
)

// ErrGone is returned when the caller, or the init of its container, is
// gone or exiting and its cgroup cannot be known for sure; the reader gets
// EIO rather than another cgroup's view.
var ErrGone = errors.New("caller process is gone")

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
	Cgroup *cgroupview.Cgroup
}

// Resolver maps FUSE caller pids to containers. A pid namespace lives as long
// as its container, so the namespace-to-init mapping is cached and checked
// against the init's start time on every use, which catches pid reuse.
type Resolver struct {
	cg     cgroupview.Reader
	fs     *kernelfs.FS
	selfNS uint64

	mu    sync.Mutex
	inits map[uint64]nsInit

	cgMu    sync.Mutex
	cgroups map[string]*cgroupview.Cgroup // /proc/<pid>/cgroup content -> parse
}

// nsInit is a pid namespace's init, and the cgroup it was last seen in
// while alive: an exiting init's cgroup file no longer tells.
type nsInit struct {
	pid   int
	start uint64
	last  *cgroupview.Cgroup
}

// maxParsedCgroups bounds the cache of parsed /proc/<pid>/cgroup contents;
// when full it starts afresh.
const maxParsedCgroups = 4096

// NewResolver makes a Resolver for callers seen from this process's pid
// namespace, looked up in fs.Proc: FUSE pids are real pids, whatever proc
// root the rendered host data comes from.
func NewResolver(cg cgroupview.Reader, fs *kernelfs.FS) (*Resolver, error) {
	r := &Resolver{cg: cg, fs: fs, inits: map[uint64]nsInit{}}
	ns, err := r.pidNS(os.Getpid())
	if err != nil {
		return nil, fmt.Errorf("reading own pid namespace: %w", err)
	}
	r.selfNS = ns
	return r, nil
}

// Resolve finds the container of thread pid. A caller that vanished, or
// whose container's init is exiting before it was ever seen alive, yields
// ErrGone, never another process's cgroup.
func (r *Resolver) Resolve(pid int) (*Caller, error) {
	// The namespace is kept per process (kernelfs): a caller whose kept
	// one is the daemon's is likely a host process again, and its cgroup
	// file, which it needs, is read with it and proves it still that
	// process's. Others (containers, whose own cgroup file is not needed)
	// get the kept namespace after a cheaper check.
	buf := r.fs.GetBuf()
	defer r.fs.PutBuf(buf)
	var data []byte
	var ns uint64
	var err error
	read := r.fs.KeptPidNS(pid) == r.selfNS
	if read {
		data, ns, err = r.fs.PidFileNS(pid, "cgroup", buf)
	} else {
		ns, err = r.fs.PidNS(pid)
	}
	if err != nil {
		return nil, gone(pid, err)
	}
	c := &Caller{Pid: pid, PidNS: ns, HostNS: ns == r.selfNS}
	if c.HostNS {
		// The caller itself is alive (it is reading), so its cgroup
		// file tells where it is.
		if !read {
			if data, err = r.fs.PidFile(pid, "cgroup", buf); err != nil {
				return nil, gone(pid, err)
			}
		}
		c.InitPid = pid
		c.Cgroup, err = r.parseCgroup(pid, data)
		if err != nil {
			return nil, err
		}
		return c, nil
	}

	r.mu.Lock()
	cached, ok := r.inits[ns]
	r.mu.Unlock()
	if ok {
		if cg, err := r.initCgroup(&cached, ns); err == nil {
			c.InitPid, c.InitStart, c.Cgroup = cached.pid, cached.start, cg
			return c, nil
		}
		r.mu.Lock()
		if cur, ok := r.inits[ns]; ok && cur.pid == cached.pid && cur.start == cached.start {
			delete(r.inits, ns)
		}
		r.mu.Unlock()
	}

	in, err := r.findInit(pid, ns)
	if err != nil {
		return nil, err
	}
	cg, err := r.initCgroup(&in, ns)
	if err != nil {
		return nil, err
	}
	c.InitPid, c.InitStart, c.Cgroup = in.pid, in.start, cg
	return c, nil
}

// initCgroup reads the cgroup of namespace ns's init and checks, after the
// read, that the pid still is that init, so the read belonged to it. While
// the init exits (its cgroup file reads the root or nothing) the cgroup last
// seen is kept; with none seen yet the caller gets ErrGone. A fresh reading
// is stored as the namespace's last.
func (r *Resolver) initCgroup(in *nsInit, ns uint64) (*cgroupview.Cgroup, error) {
	cg, cur, cgErr := r.cgroupAndNS(in.pid)
	st, err := r.fs.PidStat(in.pid)
	if err != nil || st.StartTime != in.start {
		return nil, fmt.Errorf("%w: init %d of namespace %d exited", ErrGone, in.pid, ns)
	}
	if cgErr == nil && cur != ns {
		return nil, fmt.Errorf("%w: pid %d left namespace %d", ErrGone, in.pid, ns)
	}
	if st.Exiting() || cgErr != nil {
		if in.last != nil {
			return in.last, nil
		}
		if cgErr != nil {
			return nil, cgErr
		}
		return nil, fmt.Errorf("%w: init %d of namespace %d is exiting", ErrGone, in.pid, ns)
	}
	if in.last != cg {
		in.last = cg
		r.mu.Lock()
		r.inits[ns] = *in
		r.mu.Unlock()
	}
	return cg, nil
}

// Forget drops cached namespaces whose init is gone; the daemon calls it
// now and then so the cache does not grow with containers that ended.
func (r *Resolver) Forget() {
	r.mu.Lock()
	inits := make(map[uint64]nsInit, len(r.inits))
	for ns, in := range r.inits {
		inits[ns] = in
	}
	r.mu.Unlock()
	for ns, in := range inits {
		st, err := r.fs.PidStat(in.pid)
		if err == nil && st.StartTime == in.start {
			continue
		}
		r.mu.Lock()
		if cur, ok := r.inits[ns]; ok && cur.pid == in.pid && cur.start == in.start {
			delete(r.inits, ns)
		}
		r.mu.Unlock()
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
		if st.PPid <= 0 {
			return nsInit{pid: cur, start: st.StartTime}, nil
		}
		pns, err := r.pidNS(st.PPid)
		if err != nil {
			// The parent just exited and cur is being reparented
			// inside the namespace: look again.
			if retries++; retries > 3 {
				return nsInit{}, fmt.Errorf("%w: parent %d of %d vanished", ErrGone, st.PPid, cur)
			}
			continue
		}
		if pns != ns {
			return nsInit{pid: cur, start: st.StartTime}, nil
		}
		cur = st.PPid
	}
	return nsInit{}, fmt.Errorf("parent chain of pid %d too long", pid)
}

func (r *Resolver) stat(pid int) (kernelfs.ProcStat, error) {
	st, err := r.fs.PidStat(pid)
	if err != nil {
		return st, gone(pid, err)
	}
	return st, nil
}

func (r *Resolver) pidNS(pid int) (uint64, error) {
	ns, err := r.fs.PidNS(pid)
	if err != nil {
		return 0, gone(pid, err)
	}
	return ns, nil
}

// cgroupAndNS is the cgroup and the pid namespace of pid, both of one
// process.
func (r *Resolver) cgroupAndNS(pid int) (*cgroupview.Cgroup, uint64, error) {
	buf := r.fs.GetBuf()
	defer r.fs.PutBuf(buf)
	data, ns, err := r.fs.PidFileNS(pid, "cgroup", buf)
	if err != nil {
		return nil, 0, gone(pid, err)
	}
	cg, err := r.parseCgroup(pid, data)
	return cg, ns, err
}

// parseCgroup is the cgroup that pid's /proc/<pid>/cgroup content names.
func (r *Resolver) parseCgroup(pid int, data []byte) (*cgroupview.Cgroup, error) {
	if len(data) == 0 {
		// A zombie's cgroup file is empty.
		return nil, fmt.Errorf("%w: pid %d has exited", ErrGone, pid)
	}
	// Many callers share a few cgroups: reuse the parse of identical
	// content (a Cgroup is never changed after parsing), which also makes
	// equal cgroups the same pointer.
	r.cgMu.Lock()
	cg, ok := r.cgroups[string(data)]
	r.cgMu.Unlock()
	if ok {
		return cg, nil
	}
	cg, err := r.cg.ParseProcCgroup(data)
	if err != nil {
		return nil, err
	}
	r.cgMu.Lock()
	if r.cgroups == nil || len(r.cgroups) >= maxParsedCgroups {
		r.cgroups = map[string]*cgroupview.Cgroup{}
	}
	r.cgroups[string(data)] = cg
	r.cgMu.Unlock()
	return cg, nil
}

func gone(pid int, err error) error {
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("%w: pid %d: %v", ErrGone, pid, err)
	}
	return fmt.Errorf("pid %d: %w", pid, err)
}
