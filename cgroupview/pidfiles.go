package cgroupview

import (
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// pidFiles keeps descriptors of /proc/<pid>/stat and /proc/<pid>/cgroup of
// recent callers and container inits open, and re-reads them with pread at
// offset 0 (procfs regenerates them): opening costs as much again as
// reading. A /proc/<pid> file stays bound to the process it was opened for:
// once that process is gone its reads fail with ESRCH, even if the pid has
// been reused, so a descriptor that reads at all reads the process that
// holds the pid now. Failed reads drop the descriptor and fall back to
// opening the path. Only a real procfs is cached (fixture trees in tests
// are not).
type pidFiles struct {
	enabled bool
	mu      sync.Mutex
	m       map[pidFile]*pidFD
}

type pidFile struct {
	pid  int
	name string // "stat" or "cgroup"
}

// pidFD holds the free descriptors of one /proc/<pid>/<name>; each is used
// by one reader at a time (see dirHandle.read). All fields are guarded by
// pidFiles.mu; a dead entry, out of the map, closes what comes back.
type pidFD struct {
	free []int
	dead bool
	used int64
}

// maxPidFiles bounds the cached files; when full, the idlest half goes.
const maxPidFiles = 2048

func newPidFiles(procRoot string) *pidFiles {
	pf := &pidFiles{m: map[pidFile]*pidFD{}}
	var fs syscall.Statfs_t
	if syscall.Statfs(procRoot, &fs) == nil && fs.Type == procSuperMagic {
		pf.enabled = true
	}
	return pf
}

// read reads /proc/<pid>/<name> into *buf.
func (pf *pidFiles) read(procRoot string, pid int, name string, buf *[]byte) ([]byte, error) {
	p := procRoot + "/" + strconv.Itoa(pid) + "/" + name
	if pf == nil || !pf.enabled {
		return readPath(p, buf)
	}
	key := pidFile{pid, name}
	now := time.Now().UnixNano()
	fd := -1
	pf.mu.Lock()
	e := pf.m[key]
	if e != nil {
		e.used = now
		if n := len(e.free); n > 0 {
			fd = e.free[n-1]
			e.free = e.free[:n-1]
		}
	}
	pf.mu.Unlock()
	if fd >= 0 {
		data, err := preadAll(fd, buf)
		if err == nil {
			pf.put(e, fd)
			return data, nil
		}
		// Gone (ESRCH): this process's descriptors are all useless.
		syscall.Close(fd)
		pf.mu.Lock()
		if pf.m[key] == e {
			delete(pf.m, key)
		}
		pf.dropLocked(e)
		pf.mu.Unlock()
		e = nil
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
	pf.mu.Lock()
	if e == nil {
		e = pf.m[key]
	}
	if e == nil {
		if len(pf.m) >= maxPidFiles {
			pf.evictLocked(len(pf.m) / 2)
		}
		e = &pidFD{used: now}
		pf.m[key] = e
	}
	pf.mu.Unlock()
	pf.put(e, fd)
	return data, nil
}

// put gives a descriptor back to its entry, or closes it.
func (pf *pidFiles) put(e *pidFD, fd int) {
	pf.mu.Lock()
	if e.dead || len(e.free) >= maxFDsPerFile {
		pf.mu.Unlock()
		syscall.Close(fd)
		return
	}
	e.free = append(e.free, fd)
	pf.mu.Unlock()
}

// dropLocked marks e dead and closes its free descriptors; those in use
// are closed as they come back.
func (pf *pidFiles) dropLocked(e *pidFD) {
	e.dead = true
	for _, fd := range e.free {
		syscall.Close(fd)
	}
	e.free = nil
}

// evictLocked drops about n of the idlest entries.
func (pf *pidFiles) evictLocked(n int) {
	// The mean of last uses: good enough to halve the map.
	var sum, cnt int64
	for _, e := range pf.m {
		sum += e.used / 1e6
		cnt++
	}
	if cnt == 0 {
		return
	}
	cutoff := sum / cnt * 1e6
	for k, e := range pf.m {
		if n <= 0 {
			break
		}
		if e.used <= cutoff {
			delete(pf.m, k)
			pf.dropLocked(e)
			n--
		}
	}
}

// sweep closes descriptors unused for idle.
func (pf *pidFiles) sweep(idle time.Duration) {
	if pf == nil {
		return
	}
	cutoff := time.Now().Add(-idle).UnixNano()
	pf.mu.Lock()
	defer pf.mu.Unlock()
	for k, e := range pf.m {
		if e.used < cutoff {
			delete(pf.m, k)
			pf.dropLocked(e)
		}
	}
}
