package procfiles

import (
	"bytes"
	"fmt"
	"strconv"
)

// Loadavg is what a container's /proc/loadavg shows.
type Loadavg struct {
	// Avg is the 1, 5 and 15 minute averages.
	Avg LoadAverages
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
	// strconv rather than fmt: this runs on every open.
	b := make([]byte, 0, 64)
	for _, v := range l.Avg {
		b = append(appendLoad(b, v), ' ')
	}
	b = strconv.AppendUint(b, l.Running, 10)
	b = append(b, '/')
	b = strconv.AppendUint(b, l.Total, 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(l.LastPid), 10)
	return append(b, '\n')
}

// LoadAverages is the 1, 5 and 15 minute load averages in the kernel's
// fixed point, as its avenrun[] holds them (loadFShift fractional bits).
type LoadAverages [3]uint64

// loadFShift and loadFixed1 are the kernel's FSHIFT and FIXED_1
// (include/linux/sched/loadavg.h): the fractional bits of a fixed-point
// load average, and 1.0.
const (
	loadFShift = 11
	loadFixed1 = 1 << loadFShift
)

// loadInt and loadFrac are LOAD_INT and LOAD_FRAC: the integer part and two
// decimals of a fixed-point value.
func loadInt(x uint64) uint64  { return x >> loadFShift }
func loadFrac(x uint64) uint64 { return loadInt((x & (loadFixed1 - 1)) * 100) }

// Strings formats the three averages as /proc/loadavg does: get_avenrun adds
// FIXED_1/200 (half of the last printed digit) and the digits are then
// truncated, i.e. rounded to nearest.
func (a LoadAverages) Strings() [3]string {
	var s [3]string
	for i, v := range a {
		s[i] = string(appendLoad(nil, v))
	}
	return s
}

// appendLoad appends one average as Strings formats it.
func appendLoad(b []byte, v uint64) []byte {
	v += loadFixed1 / 200
	b = strconv.AppendUint(b, loadInt(v), 10)
	f := loadFrac(v) // 0 to 99
	return append(b, '.', byte('0'+f/10), byte('0'+f%10))
}

// ParseLoadavgLastPid returns the fifth field of a host /proc/loadavg.
func ParseLoadavgLastPid(data []byte) (int, error) {
	// Field by field without a slice of them: read on every open of a
	// host-namespace caller.
	var f [5][]byte
	n := 0
	for field := range bytes.FieldsSeq(data) {
		if n == len(f) {
			n++
			break
		}
		f[n] = field
		n++
	}
	if n != 5 || bytes.IndexByte(f[3], '/') < 0 {
		return 0, fmt.Errorf("malformed loadavg %q: want 5 fields", data)
	}
	pid, err := strconv.Atoi(string(f[4]))
	if err != nil || pid < 0 {
		return 0, fmt.Errorf("malformed loadavg last pid %q", f[4])
	}
	return pid, nil
}
