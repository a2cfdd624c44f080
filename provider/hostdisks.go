// The host's disk list behind every container's diskstats, read again only
// when the kernel announces that a disk came or went.

package provider

import (
	"bytes"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/cgprocfs/cgprocfs/procfiles"
)

// hostDisks is the host's /proc/diskstats as a container's diskstats and
// sys/block/DISK/stat use it: which devices, under which names, with how
// many counters, in the host's order; never the host's counter values.
//
// That list changes only when a disk or partition is added or removed, and
// the kernel announces each such change as a block uevent, sent after
// /proc/diskstats shows it (add_disk and device_del send it once the
// device is in, or out of, the block class). So the list is parsed once
// and kept until the uevent socket holds an event (or overflowed): an open
// that drains the socket and finds nothing uses the kept list, one that
// finds anything reads the host's file again. Reading and parsing the
// host's file on every open was about a third of a container's diskstats
// open (make bench, and more on a host with many disks, whose diskstats
// the kernel sums over every CPU per read).
//
// Without a socket (none could be opened, or the provider reads a fixture
// tree, whose disks no uevent describes) every open reads the file.
type hostDisks struct {
	mu sync.Mutex
	// events is a NETLINK_KOBJECT_UEVENT socket, or -1.
	events int
	// lines is the list kept since the last read; nil when none is.
	lines []procfiles.DiskstatsLine
	// buf receives the events drained, which are only looked at.
	buf []byte
}

// ueventBuf holds one uevent: the kernel's UEVENT_BUFFER_SIZE is 2048.
const ueventBuf = 4096

// newHostDisks opens the uevent socket when watch is set. When that fails,
// it returns the error beside a hostDisks that reads the file on every
// open.
func newHostDisks(watch bool) (*hostDisks, error) {
	h := &hostDisks{events: -1}
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
func (h *hostDisks) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.events >= 0 {
		unix.Close(h.events)
		h.events = -1
	}
}

// get is the host's disk list: the kept one unless a block device came or
// went since it was read, else the file read again. The list is
// shared: callers must not change it.
func (h *hostDisks) get(read func() ([]byte, error)) ([]procfiles.DiskstatsLine, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.events < 0 {
		return readDisks(read)
	}
	if h.drain() || h.lines == nil {
		var err error
		// nil when the read fails: the next open reads again.
		if h.lines, err = readDisks(read); err != nil {
			return nil, err
		}
	}
	return h.lines, nil
}

// readDisks reads the host's diskstats with read and parses it.
func readDisks(read func() ([]byte, error)) ([]procfiles.DiskstatsLine, error) {
	data, err := read()
	if err != nil {
		return nil, err
	}
	return procfiles.ParseDiskstats(data)
}

// drain empties the socket and says whether it held a block device event
// or lost events (ENOBUFS: the socket overflowed).
func (h *hostDisks) drain() bool {
	changed := false
	for {
		n, _, err := unix.Recvfrom(h.events, h.buf, unix.MSG_DONTWAIT)
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
		if isBlockUevent(h.buf[:n]) {
			changed = true
		}
	}
}

// isBlockUevent says whether a kernel uevent ("ACTION@DEVPATH" then
// NUL-separated KEY=VALUE pairs) is of the block subsystem: disks and
// partitions. Other subsystems' events (a container's veth pair, say) do
// not change diskstats.
func isBlockUevent(msg []byte) bool {
	for f := range bytes.SplitSeq(msg, []byte{0}) {
		if string(f) == "SUBSYSTEM=block" {
			return true
		}
	}
	return false
}
