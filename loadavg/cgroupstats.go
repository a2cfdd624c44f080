package loadavg

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// ErrCgroupstatsUnsupported means the kernel answers CGROUPSTATS_CMD_GET
// with EINVAL for this directory: the kernel's cgroupstats_build accepts
// only directories of a cgroup v1 hierarchy (it checks for cgroup_fs_type),
// so on cgroup v2 the sampler counts threads instead.
var ErrCgroupstatsUnsupported = errors.New("cgroupstats not supported for this cgroup (cgroup v2, or no TASKSTATS)")

// CgroupStats is the kernel's struct cgroupstats: the threads directly in
// one cgroup (not its descendants: cgroupstats_build walks
// css_task_iter(&cgrp->self), which yields only the cgroup's own tasks),
// bucketed by the exact value of task->__state.
type CgroupStats struct {
	Sleeping        uint64 // __state == TASK_INTERRUPTIBLE
	Running         uint64 // __state == TASK_RUNNING: running or runnable
	Stopped         uint64 // __state == TASK_STOPPED
	Uninterruptible uint64 // __state == TASK_UNINTERRUPTIBLE
	IOWait          uint64 // any other state with in_iowait set
}

// Sum is the threads the kernel put in a bucket. Threads in other states
// (TASK_KILLABLE, freezable sleeps, traced) are in none unless waiting on
// I/O, so Sum below the cgroup's thread count means the buckets are not the
// whole story.
func (s CgroupStats) Sum() uint64 {
	return s.Sleeping + s.Running + s.Stopped + s.Uninterruptible + s.IOWait
}

// Netlink talks to the TASKSTATS generic netlink family. One socket serves
// all requests, one at a time.
type Netlink struct {
	mu     sync.Mutex
	fd     int
	family uint16
	seq    uint32
	buf    []byte
}

// OpenNetlink opens a generic netlink socket and resolves the TASKSTATS
// family. It fails on kernels built without CONFIG_TASKSTATS.
func OpenNetlink() (*Netlink, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_GENERIC)
	if err != nil {
		return nil, fmt.Errorf("generic netlink socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("binding netlink socket: %w", err)
	}
	n := &Netlink{fd: fd, buf: make([]byte, 8192)}
	name := append([]byte(unix.TASKSTATS_GENL_NAME), 0)
	reply, err := n.request(unix.GENL_ID_CTRL, unix.CTRL_CMD_GETFAMILY, unix.CTRL_ATTR_FAMILY_NAME, name)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("resolving the %s netlink family: %w", unix.TASKSTATS_GENL_NAME, err)
	}
	id, ok := attr(reply, unix.CTRL_ATTR_FAMILY_ID)
	if !ok || len(id) < 2 {
		unix.Close(fd)
		return nil, fmt.Errorf("resolving the %s netlink family: no family id in reply", unix.TASKSTATS_GENL_NAME)
	}
	n.family = binary.NativeEndian.Uint16(id)
	return n, nil
}

// Close closes the socket.
func (n *Netlink) Close() error { return unix.Close(n.fd) }

// CgroupStats asks the kernel for the states of the threads directly in the
// cgroup whose directory dirfd is open on.
func (n *Netlink) CgroupStats(dirfd int) (CgroupStats, error) {
	var v [4]byte
	binary.NativeEndian.PutUint32(v[:], uint32(dirfd))
	n.mu.Lock()
	defer n.mu.Unlock()
	reply, err := n.request(n.family, unix.CGROUPSTATS_CMD_GET, unix.CGROUPSTATS_CMD_ATTR_FD, v[:])
	if err != nil {
		if errors.Is(err, unix.EINVAL) {
			return CgroupStats{}, fmt.Errorf("%w: %v", ErrCgroupstatsUnsupported, err)
		}
		return CgroupStats{}, err
	}
	return parseCgroupStatsReply(reply)
}

// parseCgroupStatsReply takes struct cgroupstats out of a reply's attributes.
func parseCgroupStatsReply(attrs []byte) (CgroupStats, error) {
	b, ok := attr(attrs, unix.CGROUPSTATS_TYPE_CGROUP_STATS)
	if !ok || len(b) < 40 {
		return CgroupStats{}, fmt.Errorf("cgroupstats reply without stats (%d bytes of attributes)", len(attrs))
	}
	u := func(i int) uint64 { return binary.NativeEndian.Uint64(b[8*i:]) }
	return CgroupStats{Sleeping: u(0), Running: u(1), Stopped: u(2), Uninterruptible: u(3), IOWait: u(4)}, nil
}

// request sends one generic netlink request with a single attribute and
// returns the attributes of the reply. Callers hold n.mu (or own n alone).
func (n *Netlink) request(family uint16, cmd uint8, attrType uint16, value []byte) ([]byte, error) {
	n.seq++
	alen := unix.SizeofNlAttr + len(value)
	total := unix.NLMSG_HDRLEN + unix.GENL_HDRLEN + nlaAlign(alen)
	msg := make([]byte, total)
	binary.NativeEndian.PutUint32(msg[0:], uint32(total))
	binary.NativeEndian.PutUint16(msg[4:], family)
	binary.NativeEndian.PutUint16(msg[6:], unix.NLM_F_REQUEST)
	binary.NativeEndian.PutUint32(msg[8:], n.seq)
	msg[unix.NLMSG_HDRLEN] = cmd
	msg[unix.NLMSG_HDRLEN+1] = unix.TASKSTATS_GENL_VERSION
	a := msg[unix.NLMSG_HDRLEN+unix.GENL_HDRLEN:]
	binary.NativeEndian.PutUint16(a[0:], uint16(alen))
	binary.NativeEndian.PutUint16(a[2:], attrType)
	copy(a[unix.SizeofNlAttr:], value)
	if err := unix.Sendto(n.fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, fmt.Errorf("netlink send: %w", err)
	}
	for {
		m, _, err := unix.Recvfrom(n.fd, n.buf, 0)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return nil, fmt.Errorf("netlink receive: %w", err)
		}
		attrs, seq, err := parseReply(n.buf[:m])
		if err != nil {
			return nil, err
		}
		if seq != n.seq {
			continue // a stale answer to an earlier, abandoned request
		}
		return attrs, nil
	}
}

// parseReply checks a netlink message and returns its generic netlink
// attributes, or the error the kernel sent.
func parseReply(b []byte) (attrs []byte, seq uint32, err error) {
	if len(b) < unix.NLMSG_HDRLEN {
		return nil, 0, fmt.Errorf("short netlink message (%d bytes)", len(b))
	}
	l := int(binary.NativeEndian.Uint32(b[0:]))
	typ := binary.NativeEndian.Uint16(b[4:])
	seq = binary.NativeEndian.Uint32(b[8:])
	if l < unix.NLMSG_HDRLEN || l > len(b) {
		return nil, seq, fmt.Errorf("bad netlink message length %d of %d", l, len(b))
	}
	body := b[unix.NLMSG_HDRLEN:l]
	if typ == unix.NLMSG_ERROR {
		if len(body) < 4 {
			return nil, seq, errors.New("short netlink error message")
		}
		if e := int32(binary.NativeEndian.Uint32(body)); e != 0 {
			return nil, seq, unix.Errno(-e)
		}
		return nil, seq, errors.New("unexpected netlink acknowledgement")
	}
	if len(body) < unix.GENL_HDRLEN {
		return nil, seq, errors.New("short generic netlink message")
	}
	return body[unix.GENL_HDRLEN:], seq, nil
}

// attr finds attribute typ in a flat netlink attribute stream (both the
// controller's and cgroupstats' replies are flat).
func attr(b []byte, typ uint16) ([]byte, bool) {
	for len(b) >= unix.SizeofNlAttr {
		l := int(binary.NativeEndian.Uint16(b[0:]))
		t := binary.NativeEndian.Uint16(b[2:]) & nlaTypeMask
		if l < unix.SizeofNlAttr || l > len(b) {
			return nil, false
		}
		if t == typ {
			return b[unix.SizeofNlAttr:l], true
		}
		next := nlaAlign(l)
		if next > len(b) {
			return nil, false
		}
		b = b[next:]
	}
	return nil, false
}

func nlaAlign(l int) int { return (l + unix.NLA_ALIGNTO - 1) &^ (unix.NLA_ALIGNTO - 1) }

// nlaTypeMask strips the NLA_F_NESTED and NLA_F_NET_BYTEORDER flags.
const nlaTypeMask = ^uint16(unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER)
