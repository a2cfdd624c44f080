package kernelfs

import (
	"bytes"
	"fmt"
	"strconv"
)

// SchedWait is the time thread tid spent runnable on a runqueue, waiting
// for a CPU, in nanoseconds: the second field of /proc/<tid>/schedstat
// ("run_ns wait_ns timeslices"). It includes the time a CFS quota held the
// thread back. A kernel without CONFIG_SCHED_INFO has no such file.
func (fs *FS) SchedWait(tid int) (uint64, error) {
	return readPid(fs, tid, "schedstat", parseSchedWait)
}

func parseSchedWait(b []byte) (uint64, error) {
	f := bytes.Fields(b)
	if len(f) < 2 {
		return 0, fmt.Errorf("malformed schedstat %q", b)
	}
	w, err := strconv.ParseUint(string(f[1]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("malformed schedstat wait: %w", err)
	}
	return w, nil
}
