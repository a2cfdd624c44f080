package procfiles

import (
	"bytes"
	"fmt"
	"strconv"

	"github.com/cgprocfs/cgprocfs/loadavg"
)

// Loadavg is what a container's /proc/loadavg shows.
type Loadavg struct {
	// Avg is the 1, 5 and 15 minute averages in the kernel's fixed point.
	Avg loadavg.Avg
	// Running and Total are the fourth field: runnable threads / all
	// threads.
	Running, Total uint64
	// LastPid is the fifth field: the newest pid, as the reader's pid
	// namespace numbers it.
	LastPid int
}

// RenderLoadavg prints l in the kernel's layout
// ("%lu.%02lu %lu.%02lu %lu.%02lu %u/%d %d\n").
func RenderLoadavg(l Loadavg) []byte {
	s := l.Avg.Strings()
	return fmt.Appendf(nil, "%s %s %s %d/%d %d\n", s[0], s[1], s[2], l.Running, l.Total, l.LastPid)
}

// ParseLoadavgLastPid returns the fifth field of a host /proc/loadavg.
func ParseLoadavgLastPid(data []byte) (int, error) {
	f := bytes.Fields(data)
	if len(f) != 5 || bytes.IndexByte(f[3], '/') < 0 {
		return 0, fmt.Errorf("malformed loadavg %q: want 5 fields", data)
	}
	pid, err := strconv.Atoi(string(f[4]))
	if err != nil || pid < 0 {
		return 0, fmt.Errorf("malformed loadavg last pid %q", f[4])
	}
	return pid, nil
}
