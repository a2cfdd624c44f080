package kernelfs

import (
	"slices"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// renames tells the cache when a kept v1 cgroup directory is renamed or
// removed, so that a use does not have to stat the directory's path (three
// stats per /proc/stat open, one per cgroup controller it reads). The kernel
// queues an inotify event on the directory's inode for a rename
// (vfs_rename, whatever mount of the hierarchy it comes through: all share
// one superblock) and for its removal; a use reads the queue, which without
// events costs one read(2) that fails with EAGAIN, and drops the entries
// named by the events before it looks its own up. So a directory renamed
// before the use began is never read through its old descriptors, as with
// the stat it replaces.
//
// The uses of one open come microseconds apart (a /proc/stat open reads
// three v1 controllers' directories), so a use drains only when no drain
// began in the last renameWindow: a rename is seen by every use that starts
// that long after it returned. Nothing can be in a new cgroup at the renamed
// one's path sooner: it takes a mkdir and a move of a process after the
// rename, each a cgroupfs operation of that order, before the process can
// open a file.
//
// A directory whose watch cannot be added (inotify unavailable, the
// max_user_watches limit reached) is stat'ed on every use as before; an
// overflowed queue drops every watched entry.
type renames struct {
	fd int // inotify, non-blocking; -1 when unavailable
	// wds are the watched entries by watch descriptor, guarded by
	// cache.mu. One inode can be kept under two paths (co-mounted
	// controllers reached through both names), hence a list.
	wds map[int32][]*entry
	// lastDrain is when the latest drain began, in unix nanoseconds.
	lastDrain atomic.Int64
}

// renameWindow is how long after a drain began a use skips its own.
const renameWindow = 50 * time.Microsecond

const renameEvents = unix.IN_MOVE_SELF | unix.IN_DELETE_SELF | unix.IN_ONLYDIR

func newRenames() *renames {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return &renames{fd: -1}
	}
	return &renames{fd: fd, wds: map[int32][]*entry{}}
}

// watch adds a watch on directory path and returns its descriptor, or -1.
func (r *renames) watch(path string) int32 {
	if r.fd < 0 {
		return -1
	}
	wd, err := unix.InotifyAddWatch(r.fd, path, renameEvents)
	if err != nil {
		return -1
	}
	return int32(wd)
}

// close lets every watch go.
func (r *renames) close() {
	if r.fd >= 0 {
		unix.Close(r.fd)
	}
}

// addLocked records e under its watch; the caller holds cache.mu.
func (r *renames) addLocked(e *entry) {
	r.wds[e.wd] = append(r.wds[e.wd], e)
}

// removeLocked forgets e's watch, and removes it from the kernel when no
// other entry uses it; the caller holds cache.mu.
func (r *renames) removeLocked(e *entry) {
	list := r.wds[e.wd]
	for i, o := range list {
		if o == e {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) > 0 {
		r.wds[e.wd] = list
		return
	}
	delete(r.wds, e.wd)
	// EINVAL when the kernel removed it already (IN_IGNORED queued).
	unix.InotifyRmWatch(r.fd, uint32(e.wd))
}

// drainRenames reads the queued events and drops the entries they name,
// unless a drain began less than renameWindow before now (unix ns).
func (c *cache) drainRenames(now int64) {
	r := c.renames
	if r.fd < 0 {
		return
	}
	// A drain that began after this use did (now-last negative) covers
	// it too; one beginning at the same time (a lost swap) as well.
	last := r.lastDrain.Load()
	if now-last < int64(renameWindow) || !r.lastDrain.CompareAndSwap(last, now) {
		return
	}
	// Aligned for the event headers read out of it.
	var raw [512]uint64
	buf := unsafe.Slice((*byte)(unsafe.Pointer(&raw[0])), len(raw)*8)
	for {
		n, err := syscall.Read(r.fd, buf)
		if err != nil || n <= 0 {
			return // EAGAIN: nothing (more) queued
		}
		c.mu.Lock()
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			off += unix.SizeofInotifyEvent + int(ev.Len)
			if ev.Mask&unix.IN_Q_OVERFLOW != 0 {
				for _, list := range r.wds {
					for _, e := range slices.Clone(list) {
						c.dropLocked(e)
					}
				}
				continue
			}
			// Also IN_IGNORED: the kernel removed the watch (the
			// directory went, its filesystem was unmounted).
			for _, e := range slices.Clone(r.wds[ev.Wd]) {
				c.dropLocked(e)
			}
		}
		c.mu.Unlock()
	}
}
