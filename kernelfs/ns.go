package kernelfs

import (
	"bytes"
	"fmt"
	"strconv"
	"syscall"
)

// PidNS is the inode of pid's pid namespace, from its "pid:[N]" link.
func (fs *FS) PidNS(pid int) (uint64, error) {
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
