package kernelfs

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// ProcStat is what cgprocfs takes from /proc/<pid>/stat.
type ProcStat struct {
	// State is the state letter (R, S, D, Z, ...).
	State byte
	PPid  int
	// Flags are the kernel's PF_* flags of the task.
	Flags uint64
	// StartTime is when the process started, in clock ticks after boot.
	StartTime uint64
}

// PidStat reads /proc/<pid>/stat (a thread id works too).
func (fs *FS) PidStat(pid int) (ProcStat, error) {
	return readPid(fs, pid, "stat", parsePidStat)
}

// PidState reads only the state letter of /proc/<tid>/stat, which is all
// thread counters need.
func (fs *FS) PidState(tid int) (byte, error) {
	return readPid(fs, tid, "stat", parseStatState)
}

// readPid reads /proc/<pid>/<name> into a pooled buffer and parses it.
func readPid[T any](fs *FS, pid int, name string, parse func([]byte) (T, error)) (T, error) {
	buf := fs.GetBuf()
	defer fs.PutBuf(buf)
	data, err := fs.PidFile(pid, name, buf)
	if err != nil {
		var zero T
		return zero, err
	}
	return parse(data)
}

// parseStatState is the state letter: the field after the last ')', since
// the command name may hold both spaces and parentheses.
func parseStatState(data []byte) (byte, error) {
	i := bytes.LastIndexByte(data, ')')
	if i < 0 || i+2 >= len(data) || data[i+1] != ' ' {
		return 0, errors.New("malformed pid stat: no state after the command name")
	}
	s := data[i+2]
	if s < 'A' || s > 'z' {
		return 0, fmt.Errorf("malformed pid stat: state %q", s)
	}
	return s, nil
}

// parsePidStat takes state, ppid and starttime out of /proc/<pid>/stat.
func parsePidStat(data []byte) (ProcStat, error) {
	state, err := parseStatState(data)
	if err != nil {
		return ProcStat{}, err
	}
	i := bytes.LastIndexByte(data, ')')
	f := bytes.Fields(data[i+1:])
	// f[0] is field 3 (state); starttime is field 22.
	if len(f) < 20 || len(f[0]) != 1 {
		return ProcStat{}, fmt.Errorf("malformed pid stat: %d fields", len(f)+2)
	}
	ppid, err := strconv.Atoi(string(f[1]))
	if err != nil {
		return ProcStat{}, fmt.Errorf("malformed pid stat ppid: %w", err)
	}
	flags, err := strconv.ParseUint(string(f[6]), 10, 64)
	if err != nil {
		return ProcStat{}, fmt.Errorf("malformed pid stat flags: %w", err)
	}
	start, err := strconv.ParseUint(string(f[19]), 10, 64)
	if err != nil {
		return ProcStat{}, fmt.Errorf("malformed pid stat starttime: %w", err)
	}
	return ProcStat{State: state, PPid: ppid, Flags: flags, StartTime: start}, nil
}

// pfExiting is the kernel's PF_EXITING: the task has begun to exit.
const pfExiting = 0x4

// Exiting tells whether the task has begun to exit or is a zombie: its
// cgroup file then no longer says where it was (v1 reads "/" for every
// controller, some v2 kernels "0::/"), so it must not be taken as the
// container's cgroup.
func (s ProcStat) Exiting() bool {
	return s.Flags&pfExiting != 0 || s.State == 'Z' || s.State == 'X' || s.State == 'x'
}
