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

// pidFD is one cached descriptor. mu is held shared while reading and
// exclusively to close, and never together with pidFiles.mu.
type pidFD struct {
	mu     sync.RWMutex
	fd     int
	closed bool
	used   int64
}

// maxPidFiles bounds the cached descriptors; when full, the idlest half
// goes.
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
	pf.mu.Lock()
	e := pf.m[key]
	if e != nil {
		e.used = now
	}
	pf.mu.Unlock()
	if e != nil {
		e.mu.RLock()
		if !e.closed {
			data, err := preadAll(e.fd, buf)
			e.mu.RUnlock()
			if err == nil {
				return data, nil
			}
		} else {
			e.mu.RUnlock()
		}
		// Gone (ESRCH) or closed meanwhile: forget it, open afresh.
		pf.mu.Lock()
		if pf.m[key] == e {
			delete(pf.m, key)
		}
		pf.mu.Unlock()
		e.close()
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
	e = &pidFD{fd: fd, used: now}
	var drop []*pidFD
	pf.mu.Lock()
	if old := pf.m[key]; old != nil {
		drop = append(drop, old)
	}
	if len(pf.m) >= maxPidFiles {
		drop = append(drop, pf.evictLocked(len(pf.m)/2)...)
	}
	pf.m[key] = e
	pf.mu.Unlock()
	for _, d := range drop {
		d.close()
	}
	return data, nil
}

// evictLocked takes the n idlest entries out of the map for closing.
func (pf *pidFiles) evictLocked(n int) []*pidFD {
	var cutoff int64
	// A rough median of last uses: good enough to halve the map.
	var sum, cnt int64
	for _, e := range pf.m {
		sum += e.used / 1e6
		cnt++
	}
	if cnt > 0 {
		cutoff = sum / cnt * 1e6
	}
	var out []*pidFD
	for k, e := range pf.m {
		if len(out) >= n {
			break
		}
		if e.used <= cutoff {
			delete(pf.m, k)
			out = append(out, e)
		}
	}
	return out
}

// sweep closes descriptors unused for idle.
func (pf *pidFiles) sweep(idle time.Duration) {
	if pf == nil {
		return
	}
	cutoff := time.Now().Add(-idle).UnixNano()
	var drop []*pidFD
	pf.mu.Lock()
	for k, e := range pf.m {
		if e.used < cutoff {
			delete(pf.m, k)
			drop = append(drop, e)
		}
	}
	pf.mu.Unlock()
	for _, d := range drop {
		d.close()
	}
}

func (e *pidFD) close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.closed {
		e.closed = true
		syscall.Close(e.fd)
	}
}
