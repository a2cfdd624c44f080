// Host lists behind every container's view that change only when hardware
// comes or goes: the host's disks (diskstats) and its online CPUs (every
// CPU file). Each is read again only when the kernel announces a change.

package provider

import (
	"bytes"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/cgprocfs/cgprocfs/procfiles"
)

// hostList is a host file's parse, kept until a uevent of its subsystem.
//
// The host's disk list (which devices, under which names, with how many
// counters, in the host's order; never the host's counter values) changes
// only when a disk or partition is added or removed, and the kernel
// announces each such change as a block uevent, sent after /proc/diskstats
// shows it (add_disk and device_del send it once the device is in, or out
// of, the block class). The online CPU list changes only when a CPU goes
// online or offline, announced as a cpu uevent (ONLINE, OFFLINE) once the
// hotplug is done and the online mask shows it, whether it came through the
// CPU's online file or the SMT control.
//
// So the list is parsed once and kept until the uevent socket holds an
// event of its subsystem (or overflowed): an open that drains the socket and
// finds nothing uses the kept list, one that finds anything reads the
// host's file again. Reading and parsing the host's diskstats on every open
// was about a third of a container's diskstats open (make bench, and more
// on a host with many disks, whose diskstats the kernel sums over every CPU
// per read); reading the online list was about a fifth of a CPU sibling
// list's.
//
// Without a socket (none could be opened, or the provider reads a fixture
// tree, whose changes no uevent describes) every open reads the file.
type hostList[T any] struct {
	// subsystem is the uevent SUBSYSTEM whose events change the list.
	subsystem string

	mu sync.Mutex
	// events is a non-blocking NETLINK_KOBJECT_UEVENT socket, or -1.
	events int
	// list is the parse kept since the last read; valid when kept is.
	list T
	kept bool
	// buf receives the events drained, which are only looked at.
	buf []byte
}

// ueventBuf holds one uevent: the kernel's UEVENT_BUFFER_SIZE is 2048.
const ueventBuf = 4096

// newHostList opens a uevent socket when watch is set. When that fails, it
// returns the error beside a hostList that reads the file on every open.
func newHostList[T any](subsystem string, watch bool) (*hostList[T], error) {
	h := &hostList[T]{subsystem: subsystem, events: -1}
	if !watch {
		return h, nil
	}
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_KOBJECT_UEVENT)
	if err != nil {
		return h, fmt.Errorf("uevent socket: %w", err)
	}
	// Group 1 is the kernel's broadcast of every uevent.
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: 1}); err != nil {
		unix.Close(fd)
		return h, fmt.Errorf("binding the uevent socket: %w", err)
	}
	h.events, h.buf = fd, make([]byte, ueventBuf)
	return h, nil
}

// close closes the socket.
func (h *hostList[T]) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.events >= 0 {
		unix.Close(h.events)
		h.events = -1
	}
}

// get is the host's list: the kept one unless the subsystem changed since it
// was read, else read parses afresh. The list is shared: callers must not
// change it.
func (h *hostList[T]) get(read func() (T, error)) (T, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.events < 0 {
		return read()
	}
	if h.drain() || !h.kept {
		list, err := read()
		// Nothing is kept when the read fails: the next open reads
		// again.
		h.kept = err == nil
		if err != nil {
			return list, err
		}
		h.list = list
	}
	return h.list, nil
}

// drain empties the socket and says whether it held an event of the
// subsystem or lost events (ENOBUFS: the socket overflowed).
func (h *hostList[T]) drain() bool {
	changed := false
	for {
		// read(2), not recvfrom: x/sys's Recvfrom allocates the
		// sender's address, on every open of a CPU file.
		n, err := unix.Read(h.events, h.buf)
		switch {
		case errors.Is(err, unix.EAGAIN):
			return changed
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			// ENOBUFS, or anything unexpected: assume the worst
			// and read the file; the socket stays usable.
			return true
		}
		if ueventOf(h.buf[:n], h.subsystem) {
			changed = true
		}
	}
}

// ueventOf says whether a kernel uevent ("ACTION@DEVPATH" then
// NUL-separated KEY=VALUE pairs) is of the subsystem. Other subsystems'
// events (a container's veth pair, say) do not change the list.
func ueventOf(msg []byte, subsystem string) bool {
	for f := range bytes.SplitSeq(msg, []byte{0}) {
		if v, ok := bytes.CutPrefix(f, []byte("SUBSYSTEM=")); ok && string(v) == subsystem {
			return true
		}
	}
	return false
}

// The lists kept.
type (
	hostDisks      = hostList[[]procfiles.DiskstatsLine]
	hostOnlineCPUs = hostList[[]int]
)
