package kernelfs

import (
	"errors"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// FS reads kernel files under its roots. Proc is where processes are looked
// up (/proc/<pid>/...); other files are read by absolute path, so fixture
// trees can stand in for cgroupfs or a host /proc in tests.
type FS struct {
	Proc  string
	cache *cache
	bufs  sync.Pool
	stop  chan struct{}
	done  chan struct{}
}

// Options tune an FS; the zero value is what the daemon uses.
type Options struct {
	// MaxFDs bounds the descriptors kept open; 0 takes a share of
	// RLIMIT_NOFILE (see fdBudget).
	MaxFDs int
	// SweepEvery is how often removed cgroups and exited processes are
	// let go (default 2s); IdleAfter drops entries unused that long
	// (default 1 minute).
	SweepEvery, IdleAfter time.Duration
}

// New makes an FS for procRoot and starts its sweeper; Close stops it.
func New(procRoot string, o Options) *FS {
	if o.MaxFDs <= 0 {
		o.MaxFDs = fdBudget()
	}
	if o.SweepEvery <= 0 {
		o.SweepEvery = 2 * time.Second
	}
	if o.IdleAfter <= 0 {
		o.IdleAfter = time.Minute
	}
	fs := &FS{
		Proc:  procRoot,
		cache: newCache(procRoot, o.MaxFDs),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	fs.bufs.New = func() any { b := make([]byte, 8192); return &b }
	go fs.sweeper(o.SweepEvery, o.IdleAfter)
	return fs
}

// Close stops the sweeper and closes every kept descriptor.
func (fs *FS) Close() error {
	close(fs.stop)
	<-fs.done
	fs.cache.dropAll()
	return nil
}

func (fs *FS) sweeper(every, idle time.Duration) {
	defer close(fs.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-fs.stop:
			return
		case <-t.C:
			fs.cache.sweep(idle)
		}
	}
}

// Sweep lets go of gone directories and processes, and of those unused for
// idle, at once; the sweeper does it every few seconds.
func (fs *FS) Sweep(idle time.Duration) { fs.cache.sweep(idle) }

// KeptFDs is how many descriptors the cache holds, for tests and metrics.
func (fs *FS) KeptFDs() int { return int(fs.cache.kept.Load()) }

// GetBuf lends a read buffer; PutBuf gives it back.
func (fs *FS) GetBuf() *[]byte  { return fs.bufs.Get().(*[]byte) }
func (fs *FS) PutBuf(b *[]byte) { fs.bufs.Put(b) }

// ReadFile reads the whole file p into *buf (grown as needed); the content
// lives until the next use of *buf. A missing file gives an error matching
// os.ErrNotExist.
func (fs *FS) ReadFile(p string, buf *[]byte) ([]byte, error) {
	e, err := fs.cache.dirEntry(dirOf(p))
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: p, Err: errors.Unwrap(err)}
	}
	defer fs.cache.release(e)
	return fs.cache.read(e, baseOf(p), buf, false, false)
}

// ReadRecord is ReadFile for a file the kernel generates whole on each
// read from offset 0 (one seq_file record): cgroup files, sysfs
// attributes, /proc/stat, meminfo, uptime, loadavg. A read that comes back
// short is then the end, which saves the read that would return nothing
// (see preadAll).
func (fs *FS) ReadRecord(p string, buf *[]byte) ([]byte, error) {
	e, err := fs.cache.dirEntry(dirOf(p))
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: p, Err: errors.Unwrap(err)}
	}
	defer fs.cache.release(e)
	return fs.cache.read(e, baseOf(p), buf, true, false)
}

// PidFile reads /proc/<pid>/<name>, a one-record file such as stat,
// cgroup or status, into *buf. The descriptor stays bound to
// the process it was opened for, so a pid reused by another process is never
// read through it: the old one's reads fail with ESRCH and the path is opened
// afresh.
func (fs *FS) PidFile(pid int, name string, buf *[]byte) ([]byte, error) {
	e, err := fs.cache.pidEntry(pid)
	if err != nil {
		return nil, err
	}
	defer fs.cache.release(e)
	return fs.cache.read(e, name, buf, true, false)
}

// PidFileNS is PidFile with the inode of the process's pid namespace, both
// of one process: the one that has pid while the file is read. The
// namespace is read once per process and kept (a process never changes its
// own), which saves a readlink of /proc/<pid>/ns/pid on every open of a
// served file; the read of the file, through the same directory, tells
// that the process is still the one the namespace was read of.
func (fs *FS) PidFileNS(pid int, name string, buf *[]byte) ([]byte, uint64, error) {
	for attempt := 0; ; attempt++ {
		e, err := fs.cache.pidEntry(pid)
		if err != nil {
			return nil, 0, err
		}
		if e.dir < 0 {
			// Not procfs (a fixture tree): by path, as it
			// comes.
			fs.cache.release(e)
			ns, err := fs.pidNSByPath(pid)
			if err != nil {
				return nil, 0, err
			}
			data, err := readPath(fs.pidDir(pid)+"/"+name, buf)
			return data, ns, err
		}
		ns, err := fs.cache.pidNS(e)
		var data []byte
		if err == nil {
			data, err = fs.cache.read(e, name, buf, true, true)
		}
		if err != nil && IsGone(err) && attempt == 0 {
			// The entry's process is gone, and the pid may be
			// another's: once more with an entry of whoever has
			// it now.
			fs.cache.drop(e)
			fs.cache.release(e)
			continue
		}
		fs.cache.release(e)
		return data, ns, err
	}
}

// fdBudget is the share of the descriptor limit the cache may keep: half,
// leaving the rest for FUSE, BPF, the loadavg sampler's directories and
// short-lived opens. Go raises the soft limit to the hard one at start.
func fdBudget() int {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil || rl.Cur < 256 {
		return 64
	}
	return int(min(rl.Cur/2, 1<<20))
}

func dirOf(p string) string {
	for i := len(p) - 1; i > 0; i-- {
		if p[i] == '/' {
			return p[:i]
		}
	}
	if len(p) > 0 && p[0] == '/' {
		return "/"
	}
	return "."
}

func baseOf(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			return p[i+1:]
		}
	}
	return p
}

// pidDir is the /proc directory of pid.
func (fs *FS) pidDir(pid int) string { return fs.Proc + "/" + strconv.Itoa(pid) }

// IsGone tells whether err says a process or cgroup went away while it was
// read: its file is missing (ENOENT), its process exited (ESRCH) or its
// cgroup was removed (ENODEV).
func IsGone(err error) bool {
	return errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ESRCH) || errors.Is(err, syscall.ENODEV)
}
