package kernelfs

import (
	"bytes"
	"fmt"
	"strconv"
	"syscall"
)

// PidNS is the inode of pid's pid namespace, from its "pid:[N]" link, read
// once per process and kept on its /proc/<pid> entry (a process never
// changes its own). A kept one is given after a lookup in the entry's
// directory shows its process still has the pid, which costs about half the
// link's readlink; an entry whose process is gone is dropped and the pid
// looked up afresh.
func (fs *FS) PidNS(pid int) (uint64, error) {
	for attempt := 0; ; attempt++ {
		e, err := fs.cache.pidEntry(pid)
		if err != nil {
			return 0, err
		}
		if e.dir < 0 {
			fs.cache.release(e)
			return fs.pidNSByPath(pid)
		}
		ns, err := fs.cache.livePidNS(e)
		if err != nil && IsGone(err) && attempt == 0 {
			fs.cache.drop(e)
			fs.cache.release(e)
			continue
		}
		fs.cache.release(e)
		return ns, err
	}
}

// KeptPidNS is the pid namespace kept for pid's process, unchecked: 0 when
// none is kept. A hint only (the pid may be another process's by now),
// for callers that then read through the entry, which checks.
func (fs *FS) KeptPidNS(pid int) uint64 {
	fs.cache.mu.Lock()
	defer fs.cache.mu.Unlock()
	if e := fs.cache.entries[entryKey{pid: pid}]; e != nil {
		return e.ns.Load()
	}
	return 0
}

// pidNSByPath reads pid's namespace link by path, where /proc is not
// procfs (a fixture tree) and nothing is kept.
func (fs *FS) pidNSByPath(pid int) (uint64, error) {
	var buf [64]byte
	p := fs.pidDir(pid) + "/ns/pid"
	n, err := syscall.Readlink(p, buf[:])
	if err != nil {
		return 0, fmt.Errorf("readlink %s: %w", p, err)
	}
	return parseNSLink(buf[:n])
}

// parseNSLink parses a namespace link target such as "pid:[4026531836]".
func parseNSLink(b []byte) (uint64, error) {
	i := bytes.IndexByte(b, '[')
	if i < 0 || len(b) < i+3 || b[len(b)-1] != ']' {
		return 0, fmt.Errorf("malformed namespace link %q", b)
	}
	return strconv.ParseUint(string(b[i+1:len(b)-1]), 10, 64)
}

// NSpid is pid's number in each pid namespace from the reader's down to its
// own: the NSpid line of /proc/<pid>/status. Read on every open of
// proc/loadavg, so through a kept descriptor and a parser of that one line
// rather than prometheus/procfs's whole-status parse.
func (fs *FS) NSpid(pid int) ([]int, error) {
	return readPid(fs, pid, "status", parseNSpid)
}

func parseNSpid(status []byte) ([]int, error) {
	for line := range bytes.SplitSeq(status, []byte{'\n'}) {
		rest, ok := bytes.CutPrefix(line, []byte("NSpid:"))
		if !ok {
			continue
		}
		var out []int
		for _, f := range bytes.Fields(rest) {
			n, err := strconv.Atoi(string(f))
			if err != nil || n <= 0 {
				return nil, fmt.Errorf("malformed NSpid %q", line)
			}
			out = append(out, n)
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("empty NSpid line")
		}
		return out, nil
	}
	return nil, fmt.Errorf("no NSpid line in status")
}
