package procfiles

import (
	"bytes"
	"fmt"
	"strconv"
)

// Dev is a block device number, as /proc/diskstats and cgroup files name
// it.
type Dev struct{ Major, Minor uint32 }

// DiskIO is what a container's cgroup counters say about its I/O to one
// block device, over cgroup v1 or v2, counting descendant cgroups: the
// input of DiskCountersFrom.
type DiskIO struct {
	ReadIOs, WriteIOs, DiscardIOs       uint64
	ReadBytes, WriteBytes, DiscardBytes uint64
	// HasTimes is set when the source also gives the time I/Os spent
	// queued plus in service; the *Nsec fields are then that time in
	// nanoseconds.
	HasTimes                         bool
	ReadNsec, WriteNsec, DiscardNsec uint64
}

// DiskstatsLine is one device's line of /proc/diskstats.
type DiskstatsLine struct {
	Dev  Dev
	Name string
	// Counters are the numbers after the name, as many as the kernel
	// prints: 11 before 4.18, 15 with discards, 17 with flushes (5.5+).
	Counters []uint64
}

// ParseDiskstats parses /proc/diskstats, keeping every line's device, name
// and number of counters so that a rendered file has the host's shape.
//
// github.com/prometheus/procfs/blockdevice parses this file too, but only
// from a path under a proc root it opens itself (its byte parser is
// unexported, so it cannot be fuzzed or fed bytes already read), and it
// silently drops lines with fewer than 14 fields: a clear error is better.
func ParseDiskstats(data []byte) ([]DiskstatsLine, error) {
	var out []DiskstatsLine
	for n, line := range bytes.Split(data, []byte{'\n'}) {
		f := bytes.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) < 3+11 {
			return nil, fmt.Errorf("diskstats line %d: %d fields in %q, want at least 14", n+1, len(f), line)
		}
		maj, err1 := strconv.ParseUint(string(f[0]), 10, 32)
		min, err2 := strconv.ParseUint(string(f[1]), 10, 32)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("diskstats line %d: bad device number in %q", n+1, line)
		}
		l := DiskstatsLine{
			Dev:      Dev{Major: uint32(maj), Minor: uint32(min)},
			Name:     string(f[2]),
			Counters: make([]uint64, len(f)-3),
		}
		for i, v := range f[3:] {
			c, err := strconv.ParseUint(string(v), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("diskstats line %d: counter %d: %w", n+1, i+1, err)
			}
			l.Counters[i] = c
		}
		out = append(out, l)
	}
	return out, nil
}

// The counters of a diskstats line, in the kernel's order
// (Documentation/admin-guide/iostats.rst).
const (
	DiskReadIOs = iota
	DiskReadMerges
	DiskReadSectors
	DiskReadTicks
	DiskWriteIOs
	DiskWriteMerges
	DiskWriteSectors
	DiskWriteTicks
	DiskInFlight
	DiskIOTicks
	DiskTimeInQueue
	DiskDiscardIOs
	DiskDiscardMerges
	DiskDiscardSectors
	DiskDiscardTicks
	DiskFlushIOs
	DiskFlushTicks
	// NumDiskCounters is the number of counters a 5.5+ kernel prints.
	NumDiskCounters
)

// DiskCounters is a container's line for one device, in the kernel's order.
type DiskCounters [NumDiskCounters]uint64

// DiskCountersFrom maps a cgroup's counters for one device to diskstats
// counters. Completed I/Os and sectors (bytes/512) come from the cgroup.
// No cgroup source has merges, in-flight I/Os, busy time (io_ticks) or
// flushes: they are 0. Times spent reading, writing and discarding, and
// time_in_queue (their sum, as the kernel computes it), come from bfq's
// service plus wait time where the kernel gives them, and are 0 otherwise.
func DiskCountersFrom(d DiskIO) DiskCounters {
	var c DiskCounters
	c[DiskReadIOs] = d.ReadIOs
	c[DiskReadSectors] = d.ReadBytes / 512
	c[DiskWriteIOs] = d.WriteIOs
	c[DiskWriteSectors] = d.WriteBytes / 512
	c[DiskDiscardIOs] = d.DiscardIOs
	c[DiskDiscardSectors] = d.DiscardBytes / 512
	if d.HasTimes {
		const nsPerMs = 1e6
		c[DiskReadTicks] = d.ReadNsec / nsPerMs
		c[DiskWriteTicks] = d.WriteNsec / nsPerMs
		c[DiskDiscardTicks] = d.DiscardNsec / nsPerMs
		c[DiskTimeInQueue] = (d.ReadNsec + d.WriteNsec + d.DiscardNsec) / nsPerMs
	}
	return c
}

// RenderDiskstats renders a container's /proc/diskstats: one line, in the
// host's order, for every device of the host's file that the container has
// counters for, named as the host names it and with as many counters as the
// host's line (extra counters of a newer kernel are 0). Devices the host no
// longer lists are left out. The layout is the kernel's diskstats_show:
// "%4d %7d %s %lu %lu ...".
func RenderDiskstats(host []DiskstatsLine, ctr map[Dev]DiskCounters) []byte {
	var b []byte
	for _, l := range host {
		c, ok := ctr[l.Dev]
		if !ok {
			continue
		}
		b = appendPadded(b, uint64(l.Dev.Major), 4)
		b = append(b, ' ')
		b = appendPadded(b, uint64(l.Dev.Minor), 7)
		b = append(b, ' ')
		b = append(b, l.Name...)
		for i := range l.Counters {
			var v uint64
			if i < len(c) {
				v = c[i]
			}
			b = append(b, ' ')
			b = strconv.AppendUint(b, v, 10)
		}
		b = append(b, '\n')
	}
	return b
}

// appendPadded appends v right-aligned in width, as printf's %Nd does.
func appendPadded(b []byte, v uint64, width int) []byte {
	var tmp [20]byte
	s := strconv.AppendUint(tmp[:0], v, 10)
	for i := len(s); i < width; i++ {
		b = append(b, ' ')
	}
	return append(b, s...)
}

// RenderBlockStat renders a container's /sys/block/<disk>/stat, the same
// counters as its diskstats line without device number and name, n of them
// (as many as the host's kernel prints), in the kernel's part_stat_show
// layout: each right-aligned in 8 columns, separated by a space. sysstat's
// iostat reads these files rather than /proc/diskstats whenever /sys is
// mounted.
func RenderBlockStat(c DiskCounters, n int) []byte {
	b := make([]byte, 0, 9*n+1)
	for i := range n {
		if i > 0 {
			b = append(b, ' ')
		}
		var v uint64
		if i < len(c) {
			v = c[i]
		}
		b = appendPadded(b, v, 8)
	}
	return append(b, '\n')
}
