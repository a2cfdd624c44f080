package kernelfs

import (
	"errors"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The descriptor cache. Opening a kernel file costs about ten times reading
// it (path walk, kernfs or procfs open, fd set-up and teardown), so the
// descriptors of the files read are kept per directory and re-read from
// offset 0 with pread, which makes kernfs and procfs generate the content
// afresh: nothing is cached but the descriptor.
//
// An entry is a directory with two kinds of key and one way to stay right:
//   - a cgroup (or other) directory, keyed by path. A descriptor stays bound
//     to the cgroup it was opened in; a v1 cgroup renamed away would leave
//     descriptors of the wrong cgroup behind, so every use of a v1 cgroup
//     directory first reads the inotify queue that tells of its rename
//     (renames.go), or, where it has no watch, checks its inode by path
//     (kernfs numbers are not reused). cgroup2 has no rename, the sysfs
//     directories read (CPUs, disks) are never renamed, and a removed directory's descriptors fail
//     with ENODEV, even when another is made at the same path: those are not
//     checked, nor are mount roots.
//   - a process, keyed by pid: /proc/<pid> descriptors read their own
//     process or fail with ESRCH once it is gone, even after pid reuse, so
//     no check is needed before use. The entry keeps an O_PATH descriptor
//     of the directory itself, taken when the entry is made, and opens its
//     files relative to it: every file of one entry, and the pid namespace
//     kept on it, is of the one process that had the pid then, and fails
//     to open (ENOENT) once it is gone.
//
// A read that fails through a kept descriptor (ENODEV for a removed cgroup,
// ESRCH for an exited process) drops the entry and reads by path. The sweep
// drops entries whose directory is gone or replaced, and entries unused for
// a while, every few seconds. The kept descriptors are bounded by a budget;
// past it the least recently used entries go, and an open that fails with
// EMFILE or ENFILE evicts and retries instead of failing the read.
//
// Only directories on cgroupfs, cgroup2, sysfs and procfs are cached: there,
// files cannot be replaced by rename. Sysfs is kernfs as the cgroup
// filesystems are: a read at offset 0 shows the attribute afresh, a removed
// device's files fail with ENODEV. Fixture trees on other filesystems are
// read the plain way.

const (
	cgroupSuperMagic  = 0x27e0eb
	cgroup2SuperMagic = 0x63677270
	procSuperMagic    = 0x9fa0
	sysfsMagic        = 0x62656572
	// maxFilesPerDir bounds the files of one directory with kept
	// descriptors; the few files read per directory stay below it.
	maxFilesPerDir = 16
	// maxFDsPerFile is how many readers of one file can each have their
	// own descriptor: readers sharing one would queue on its seq_file lock.
	maxFDsPerFile = 4
)

type entryKey struct {
	dir string // a directory's path; "" for a process
	pid int    // a process's pid; 0 for a directory
}

// entry is a directory's kept descriptors.
type entry struct {
	key  entryKey
	path string
	ino  uint64
	// cacheable is false off cgroupfs and procfs: every read opens.
	cacheable bool
	// mayGo is set for directories that may be removed, or renamed, and
	// made again: not mount roots, not processes. The sweep stats them.
	mayGo bool
	// checkIno is set for those of them that may be renamed (v1
	// cgroups): every use drains the rename watch, or, when wd is not
	// positive (no watch), stats them. wd is guarded by cache.mu.
	checkIno bool
	wd       int32
	// Guarded by cache.mu: the last use in unix nanoseconds and the
	// readers holding the entry.
	used int64
	refs int
	// dead is set, under cache.mu, once the entry is out of the map: its
	// descriptors close when the last reader releases it. Atomic so that
	// put, on every read, need not take cache.mu to look.
	dead atomic.Bool

	// dir is a process entry's O_PATH descriptor of /proc/<pid>, or -1;
	// closed with the entry's files. ns is that process's pid namespace
	// inode once read (0 before): a process never changes its own.
	dir int
	ns  atomic.Uint64

	fdMu sync.Mutex
	fds  map[string][]int // file name -> free descriptors
}

type cache struct {
	procCacheable bool
	procRoot      string
	budget        int64
	kept          atomic.Int64

	renames *renames

	mu      sync.Mutex
	entries map[entryKey]*entry
}

func newCache(procRoot string, budget int) *cache {
	c := &cache{procRoot: procRoot, budget: int64(budget), entries: map[entryKey]*entry{}, renames: newRenames()}
	var st syscall.Statfs_t
	if syscall.Statfs(procRoot, &st) == nil && st.Type == procSuperMagic {
		c.procCacheable = true
	}
	return c
}

// pidEntry returns the held entry of /proc/<pid>.
func (c *cache) pidEntry(pid int) (*entry, error) {
	key := entryKey{pid: pid}
	now := time.Now().UnixNano()
	c.mu.Lock()
	if e := c.entries[key]; e != nil {
		e.refs++
		e.used = now
		c.mu.Unlock()
		return e, nil
	}
	c.mu.Unlock()
	e := &entry{key: key, path: c.procRoot + "/" + strconv.Itoa(pid), cacheable: c.procCacheable, used: now, refs: 1, dir: -1}
	if e.cacheable {
		fd, err := c.openAt(unix.AT_FDCWD, e.path, e.path, unix.O_PATH|unix.O_DIRECTORY)
		if err != nil {
			return nil, err
		}
		e.dir = fd
	}
	got := c.insert(e)
	if got != e {
		// Another reader made it meanwhile.
		syscall.Close(e.dir)
	} else if e.dir >= 0 {
		c.kept.Add(1)
	}
	return got, nil
}

// dirEntry returns the held entry of directory path; a v1 cgroup's is first
// checked for a rename (its inotify watch, or its inode by path).
func (c *cache) dirEntry(path string) (*entry, error) {
	key := entryKey{dir: path}
	now := time.Now().UnixNano()
	c.mu.Lock()
	e := c.entries[key]
	if e != nil && e.checkIno && e.wd > 0 {
		c.mu.Unlock()
		c.drainRenames(now)
		c.mu.Lock()
		e = c.entries[key]
	}
	if e != nil && (!e.checkIno || e.wd > 0) {
		e.refs++
		e.used = now
		c.mu.Unlock()
		return e, nil
	}
	c.mu.Unlock()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return nil, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	c.mu.Lock()
	if e := c.entries[key]; e != nil {
		if e.ino == st.Ino {
			e.refs++
			e.used = now
			c.mu.Unlock()
			return e, nil
		}
		c.dropLocked(e)
	}
	c.mu.Unlock()

	e = &entry{key: key, path: path, ino: st.Ino, used: now, refs: 1, dir: -1}
	var fs syscall.Statfs_t
	if err := syscall.Statfs(path, &fs); err == nil {
		switch fs.Type {
		case cgroupSuperMagic, cgroup2SuperMagic, procSuperMagic, sysfsMagic:
			e.cacheable = true
		}
		if e.cacheable {
			var parent syscall.Stat_t
			e.mayGo = !(syscall.Stat(path+"/..", &parent) == nil && parent.Dev != st.Dev)
		}
		// Only a v1 cgroup can be renamed (cgroup2 has no rename
		// operation, and the sysfs directories read, the CPUs' and
		// disks', are never renamed); what is removed fails its reads
		// with ENODEV, which drops the entry, wherever it is.
		e.checkIno = e.mayGo && fs.Type == cgroupSuperMagic
	}
	if e.checkIno {
		// The watch, then the inode again: a rename between the stat
		// above and the watch would leave the watch on another
		// directory than the inode says, so that entry goes unwatched.
		e.wd = c.renames.watch(path)
		if e.wd > 0 {
			var again syscall.Stat_t
			if syscall.Stat(path, &again) != nil || again.Ino != st.Ino {
				unix.InotifyRmWatch(c.renames.fd, uint32(e.wd))
				e.wd = -1
			}
		}
	}
	return c.insert(e), nil
}

// insert adds a new held entry, or returns the current one another reader
// added meanwhile. Uncacheable entries stay out of the map.
func (c *cache) insert(e *entry) *entry {
	if !e.cacheable {
		e.dead.Store(true)
		return e
	}
	e.fds = map[string][]int{}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.entries[e.key]; old != nil {
		if old.ino == e.ino {
			old.refs++
			old.used = e.used
			if e.wd > 0 {
				// Another reader added it meanwhile. One
				// inode has one watch descriptor: old's
				// already, or now old's if it had none.
				if old.wd <= 0 && old.checkIno {
					old.wd = e.wd
					c.renames.addLocked(old)
				}
				e.wd = 0
			}
			return old
		}
		c.dropLocked(old)
	}
	c.entries[e.key] = e
	if e.wd > 0 {
		c.renames.addLocked(e)
	}
	return e
}

// release ends a use begun by pidEntry or dirEntry.
func (c *cache) release(e *entry) {
	c.mu.Lock()
	e.refs--
	if e.refs == 0 && e.dead.Load() {
		c.closeFds(e)
	}
	c.mu.Unlock()
}

// dropLocked takes e out of the map; its descriptors close once unused.
func (c *cache) dropLocked(e *entry) {
	if c.entries[e.key] == e {
		delete(c.entries, e.key)
	}
	if e.wd > 0 {
		c.renames.removeLocked(e)
		e.wd = 0
	}
	e.dead.Store(true)
	if e.refs == 0 {
		c.closeFds(e)
	}
}

func (c *cache) closeFds(e *entry) {
	e.fdMu.Lock()
	defer e.fdMu.Unlock()
	if e.dir >= 0 {
		syscall.Close(e.dir)
		c.kept.Add(-1)
		e.dir = -1
	}
	for name, fds := range e.fds {
		for _, fd := range fds {
			syscall.Close(fd)
		}
		c.kept.Add(-int64(len(fds)))
		delete(e.fds, name)
	}
}

// evictLocked drops n entries, least recently used first.
func (c *cache) evictLocked(n int) {
	if n <= 0 {
		return
	}
	// One pass finds the n oldest: a bounded max-heap would be faster,
	// but eviction is rare and the map is at most a few thousand.
	victims := make([]*entry, 0, n)
	for _, e := range c.entries {
		if len(victims) < n {
			victims = append(victims, e)
			continue
		}
		newest := 0
		for i, v := range victims {
			if v.used > victims[newest].used {
				newest = i
			}
		}
		if e.used < victims[newest].used {
			victims[newest] = e
		}
	}
	for _, e := range victims {
		c.dropLocked(e)
	}
}

func (c *cache) dropAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.entries {
		c.dropLocked(e)
	}
	c.renames.close()
}

// read reads file name of e's directory into buf and returns the content
// (see preadAll for oneRecord).
// A missing file gives an error that matches os.ErrNotExist.
//
// When the entry's directory or process is gone, the entry is dropped and
// the file read by path, unless bound is set: then the error is returned,
// so that what was read is of the entry's process or nothing.
func (c *cache) read(e *entry, name string, buf *[]byte, oneRecord, bound bool) ([]byte, error) {
	if !e.cacheable {
		return readPath(e.path+"/"+name, buf)
	}
	fd := -1
	e.fdMu.Lock()
	if free := e.fds[name]; len(free) > 0 {
		fd = free[len(free)-1]
		e.fds[name] = free[:len(free)-1]
		c.kept.Add(-1)
	}
	e.fdMu.Unlock()
	if fd >= 0 {
		data, err := preadAll(fd, buf, oneRecord)
		if err == nil {
			c.put(e, name, fd)
			return data, nil
		}
		// The file went away (cgroup removed, controller disabled,
		// process exited): drop the entry and look the path up again.
		syscall.Close(fd)
		c.drop(e)
		if bound {
			return nil, &os.PathError{Op: "read", Path: e.path + "/" + name, Err: err}
		}
		return readPath(e.path+"/"+name, buf)
	}
	// The path is only built here, off the path of a kept descriptor: an
	// allocation per file read, 7 per meminfo open.
	p := e.path + "/" + name
	var err error
	if e.dir >= 0 {
		fd, err = c.openAt(e.dir, name, p, unix.O_RDONLY)
		if err != nil && IsGone(err) {
			// The entry's process is gone: its pid may be
			// another's now.
			c.drop(e)
			if !bound {
				return readPath(p, buf)
			}
		}
	} else {
		fd, err = c.openAt(unix.AT_FDCWD, p, p, unix.O_RDONLY)
	}
	if err != nil {
		return nil, err
	}
	data, err := preadAll(fd, buf, oneRecord)
	if err != nil {
		syscall.Close(fd)
		return nil, &os.PathError{Op: "read", Path: p, Err: err}
	}
	c.put(e, name, fd)
	return data, nil
}

// openAt opens p relative to dir with flags and O_CLOEXEC (errors name it
// path); when the process is out of descriptors it lets a quarter of the
// cache go and tries once more.
func (c *cache) openAt(dir int, p, path string, flags int) (int, error) {
	fd, err := unix.Openat(dir, p, flags|unix.O_CLOEXEC, 0)
	if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
		c.mu.Lock()
		c.evictLocked(len(c.entries)/4 + 1)
		c.mu.Unlock()
		fd, err = unix.Openat(dir, p, flags|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return fd, nil
}

// drop takes e out of the map.
func (c *cache) drop(e *entry) {
	c.mu.Lock()
	c.dropLocked(e)
	c.mu.Unlock()
}

// pidNS is the pid namespace inode of a process entry's process, read
// through its directory once and kept. The caller holds e.
func (c *cache) pidNS(e *entry) (uint64, error) {
	if ns := e.ns.Load(); ns != 0 {
		return ns, nil
	}
	var buf [64]byte
	n, err := unix.Readlinkat(e.dir, "ns/pid", buf[:])
	if err != nil {
		return 0, &os.PathError{Op: "readlink", Path: e.path + "/ns/pid", Err: err}
	}
	ns, err := parseNSLink(buf[:n])
	if err != nil {
		return 0, err
	}
	e.ns.Store(ns)
	return ns, nil
}

// livePidNS is pidNS for a caller that reads nothing else through e: a
// kept namespace is given only once a lookup in e's directory shows its
// process still there (a gone process's directory has no entries: ENOENT).
func (c *cache) livePidNS(e *entry) (uint64, error) {
	if ns := e.ns.Load(); ns != 0 {
		if err := unix.Faccessat(e.dir, "ns", unix.F_OK, 0); err != nil {
			return 0, &os.PathError{Op: "access", Path: e.path + "/ns", Err: err}
		}
		return ns, nil
	}
	// The readlink through e's directory is the check itself.
	return c.pidNS(e)
}

// put keeps a descriptor for the next reader of the file, or closes it when
// the file, the directory or the budget is full. The caller holds e.
func (c *cache) put(e *entry, name string, fd int) {
	if c.kept.Load() >= c.budget {
		c.mu.Lock()
		c.evictLocked(len(c.entries)/8 + 1)
		c.mu.Unlock()
	}
	// A drop after this look is fine: the caller holds e, so its
	// descriptors, this one too, close when the caller releases it.
	dead := e.dead.Load()
	e.fdMu.Lock()
	free, ok := e.fds[name]
	if dead || len(free) >= maxFDsPerFile || !ok && len(e.fds) >= maxFilesPerDir || c.kept.Load() >= c.budget {
		e.fdMu.Unlock()
		syscall.Close(fd)
		return
	}
	e.fds[name] = append(free, fd)
	c.kept.Add(1)
	e.fdMu.Unlock()
}

// sweepYieldEvery is how many directories a sweep stats between yields.
const sweepYieldEvery = 32

// sweep drops entries unused for idle, directories that are gone or were
// replaced, and processes that exited.
func (c *cache) sweep(idle time.Duration) {
	cutoff := time.Now().Add(-idle).UnixNano()
	type check struct {
		e    *entry
		path string
		ino  uint64
		pid  bool
	}
	var checks []check
	c.mu.Lock()
	for _, e := range c.entries {
		if e.used < cutoff {
			c.dropLocked(e)
			continue
		}
		if e.key.pid != 0 || e.mayGo {
			checks = append(checks, check{e, e.path, e.ino, e.key.pid != 0})
		}
	}
	c.mu.Unlock()
	// Stat outside the lock: readers go on meanwhile. A process's
	// directory disappears when it exits; a reused pid is caught by ESRCH
	// at its next read.
	var gone []*entry
	for i, ch := range checks {
		if i%sweepYieldEvery == sweepYieldEvery-1 {
			// The daemon runs Go code on one P (cgprocfs mount
			// --gomaxprocs): a sweep of thousands of directories
			// would hold it while reads wait.
			runtime.Gosched()
		}
		var st syscall.Stat_t
		err := syscall.Stat(ch.path, &st)
		if err != nil || !ch.pid && st.Ino != ch.ino {
			gone = append(gone, ch.e)
		}
	}
	if len(gone) == 0 {
		return
	}
	c.mu.Lock()
	for _, e := range gone {
		c.dropLocked(e)
	}
	c.mu.Unlock()
}
