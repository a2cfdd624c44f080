package cgroupview

import (
	"os"
	"path"
	"sync"
	"syscall"
	"time"
)

// Opening a cgroup file costs about ten times what reading it does (path
// walk, kernfs open, fd set-up and teardown), and every open of a served
// file reads several. So descriptors of the cgroup files read are kept open
// per cgroup directory and re-read from offset 0 with pread, which makes
// kernfs and procfs generate fresh content every time: nothing is cached
// but the descriptor.
//
// A descriptor stays bound to the cgroup it was opened in, which is what
// makes this safe: a removed cgroup's descriptors fail (ENODEV) and are
// reopened by path. A cgroup renamed away, or removed and made again at the
// same path, would leave descriptors of the wrong cgroup behind, so every
// use first checks the directory's inode number by path (kernfs numbers
// are not reused) and starts afresh when it changed; mount roots, which
// cannot be renamed or removed, are not checked.
//
// Only directories on cgroupfs, cgroup2 and procfs are cached: there, files
// cannot be replaced by rename. Fixture trees on other filesystems are read
// the plain way.
//
// Directories idle for a minute are closed by SweepFiles, which runs every
// minute; the cache holds at most
// maxCachedDirs directories, which bounds the open descriptors.

const (
	cgroupSuperMagic  = 0x27e0eb
	cgroup2SuperMagic = 0x63677270
	procSuperMagic    = 0x9fa0
	maxCachedDirs     = 2048
	// maxFilesPerDir bounds the descriptors of one directory; the few
	// files read per directory stay well below it.
	maxFilesPerDir = 16
	// maxFDsPerFile is how many readers of one file can each have their
	// own descriptor; more open and close the file.
	maxFDsPerFile = 4
)

type fileCache struct {
	// mu guards dirs and every handle's refs, dead and used.
	mu   sync.Mutex
	dirs map[string]*dirHandle
}

var files = &fileCache{dirs: map[string]*dirHandle{}}

// dirHandle is an open cgroup (or proc) directory's file descriptors.
type dirHandle struct {
	path string
	ino  uint64
	// cacheable is false off cgroupfs/procfs: every read opens the file.
	cacheable bool
	// mountRoot is set for the root of a mount (a v1 controller's or the
	// v2 hierarchy's root, /proc), which needs no inode check.
	mountRoot bool
	// used is the last use in unix nanoseconds, for SweepFiles.
	used int64
	// refs counts the readers holding the handle; a dead handle (out of
	// the cache) closes its descriptors when the last one releases it.
	refs int
	dead bool
	fdMu sync.Mutex
	fds  map[string][]int // file name -> free descriptors
}

// openDir returns the handle of directory path, checked against the
// directory's current inode, and held until release.
func (c *fileCache) openDir(path string) (*dirHandle, error) {
	startSweeper()
	now := time.Now().UnixNano()
	c.mu.Lock()
	if h := c.dirs[path]; h != nil && h.mountRoot {
		// A mount's root cannot be renamed or removed: no check.
		h.refs++
		h.used = now
		c.mu.Unlock()
		return h, nil
	}
	c.mu.Unlock()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return nil, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	c.mu.Lock()
	if h := c.dirs[path]; h != nil {
		if h.ino == st.Ino {
			h.refs++
			h.used = now
			c.mu.Unlock()
			return h, nil
		}
		c.dropLocked(h)
	}
	c.mu.Unlock()

	h := &dirHandle{path: path, ino: st.Ino, used: now, refs: 1, fds: map[string][]int{}}
	var fs syscall.Statfs_t
	if err := syscall.Statfs(path, &fs); err == nil {
		switch fs.Type {
		case cgroupSuperMagic, cgroup2SuperMagic, procSuperMagic:
			h.cacheable = true
		}
	}
	if !h.cacheable {
		h.dead = true
		return h, nil
	}
	var parent syscall.Stat_t
	if err := syscall.Stat(path+"/..", &parent); err == nil && parent.Dev != st.Dev {
		h.mountRoot = true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.dirs[path]; old != nil {
		// Another reader got here first: take its handle if current.
		if old.ino == st.Ino {
			old.refs++
			old.used = now
			return old, nil
		}
		c.dropLocked(old)
	}
	if len(c.dirs) >= maxCachedDirs {
		c.evictLocked(len(c.dirs) - maxCachedDirs + maxCachedDirs/8)
	}
	c.dirs[path] = h
	return h, nil
}

// dropLocked takes h out of the cache; its descriptors close once unused.
func (c *fileCache) dropLocked(h *dirHandle) {
	if c.dirs[h.path] == h {
		delete(c.dirs, h.path)
	}
	h.dead = true
	if h.refs == 0 {
		h.closeFds()
	}
}

// evictLocked drops n directories, least recently used first.
func (c *fileCache) evictLocked(n int) {
	for ; n > 0 && len(c.dirs) > 0; n-- {
		var oldest *dirHandle
		for _, h := range c.dirs {
			if oldest == nil || h.used < oldest.used {
				oldest = h
			}
		}
		c.dropLocked(oldest)
	}
}

// release ends a use begun by openDir.
func (h *dirHandle) release() {
	files.mu.Lock()
	h.refs--
	if h.refs == 0 && h.dead {
		h.closeFds()
	}
	files.mu.Unlock()
}

func (h *dirHandle) closeFds() {
	h.fdMu.Lock()
	defer h.fdMu.Unlock()
	for name, fds := range h.fds {
		for _, fd := range fds {
			syscall.Close(fd)
		}
		delete(h.fds, name)
	}
}

// read reads file name of the directory into buf, growing it as needed,
// and returns the content. A missing file gives an error that matches
// os.ErrNotExist.
//
// Each file has a few descriptors, each used by one reader at a time:
// readers sharing one would queue on its seq_file lock, and a reader
// preempted while holding it would stall all others.
func (h *dirHandle) read(name string, buf *[]byte) ([]byte, error) {
	p := h.path + "/" + name
	if !h.cacheable {
		return readPath(p, buf)
	}
	fd := -1
	h.fdMu.Lock()
	if free := h.fds[name]; len(free) > 0 {
		fd = free[len(free)-1]
		h.fds[name] = free[:len(free)-1]
	}
	h.fdMu.Unlock()
	if fd >= 0 {
		data, err := preadAll(fd, buf)
		if err == nil {
			h.put(name, fd)
			return data, nil
		}
		// The file went away (controller disabled, cgroup removed):
		// drop the whole directory, and look the path up again.
		syscall.Close(fd)
		files.mu.Lock()
		files.dropLocked(h)
		files.mu.Unlock()
		return readPath(p, buf)
	}
	fd, err := syscall.Open(p, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	data, err := preadAll(fd, buf)
	if err != nil {
		syscall.Close(fd)
		return nil, &os.PathError{Op: "read", Path: p, Err: err}
	}
	h.put(name, fd)
	return data, nil
}

// put returns a descriptor to the file's free list, or closes it when the
// list is full. The caller holds a reference on h, so the handle's
// descriptors are not being closed meanwhile.
func (h *dirHandle) put(name string, fd int) {
	h.fdMu.Lock()
	free, ok := h.fds[name]
	if len(free) >= maxFDsPerFile || !ok && len(h.fds) >= maxFilesPerDir {
		h.fdMu.Unlock()
		syscall.Close(fd)
		return
	}
	h.fds[name] = append(free, fd)
	h.fdMu.Unlock()
}

// preadAll reads a whole file from offset 0 into *buf, growing it until
// the content fits.
func preadAll(fd int, buf *[]byte) ([]byte, error) {
	if len(*buf) == 0 {
		*buf = make([]byte, 4096)
	}
	for {
		n, err := syscall.Pread(fd, *buf, 0)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n < len(*buf) {
			return (*buf)[:n], nil
		}
		*buf = make([]byte, 2*len(*buf))
	}
}

// readPath reads a whole file with open, read and close, into *buf.
func readPath(p string, buf *[]byte) ([]byte, error) {
	fd, err := syscall.Open(p, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	defer syscall.Close(fd)
	if len(*buf) == 0 {
		*buf = make([]byte, 4096)
	}
	n := 0
	for {
		if n == len(*buf) {
			nb := make([]byte, 2*len(*buf))
			copy(nb, *buf)
			*buf = nb
		}
		m, err := syscall.Read(fd, (*buf)[n:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: p, Err: err}
		}
		if m == 0 {
			return (*buf)[:n], nil
		}
		n += m
	}
}

// SweepFiles closes the descriptors of directories unused for idle; the
// daemon calls it now and then so that ended containers' cgroups are let go.
func SweepFiles(idle time.Duration) {
	files.mu.Lock()
	defer files.mu.Unlock()
	cutoff := time.Now().Add(-idle).UnixNano()
	for _, h := range files.dirs {
		if h.used < cutoff {
			files.dropLocked(h)
		}
	}
}

// bufPool holds read buffers for cgroup and proc files.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 8192); return &b }}

func getBuf() *[]byte  { return bufPool.Get().(*[]byte) }
func putBuf(b *[]byte) { bufPool.Put(b) }

// ReadFileInto reads the whole file p into *buf (grown as needed) and
// returns the content, which lives until the next use of *buf. Files on
// cgroupfs and procfs go through the descriptor cache, others are opened
// and closed. The provider reads the host's /proc/meminfo this way.
func ReadFileInto(p string, buf *[]byte) ([]byte, error) {
	ds := openDirs([]string{path.Dir(p)})
	defer ds.release()
	return ds.read(0, path.Base(p), buf)
}

// sweepOnce starts the sweeper that lets ended containers' cgroups go.
var sweepOnce sync.Once

func startSweeper() {
	sweepOnce.Do(func() {
		go func() {
			for range time.Tick(time.Minute) {
				SweepFiles(time.Minute)
			}
		}()
	})
}
