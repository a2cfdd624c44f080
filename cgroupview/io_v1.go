package cgroupview

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
)

// RWStat is one device's counters in a v1 blkio "rwstat" file, split by
// operation the way the kernel prints them. Read, Write and Discard are
// disjoint; Sync and Async split the same I/Os again; Total is their sum.
type RWStat struct {
	Read, Write, Sync, Async, Discard, Total uint64
}

// ParseBlkioRWStat parses a v1 blkio rwstat file such as
// blkio.throttle.io_serviced_recursive:
//
//	254:0 Read 10
//	254:0 Write 16
//	...
//	254:0 Total 28
//	Total 28
//
// The last line sums every device and is skipped.
func ParseBlkioRWStat(data []byte) (map[Dev]RWStat, error) {
	out := map[Dev]RWStat{}
	// Line by line and field by field in place, without bytes.Split and
	// bytes.Fields: three or four of these files are parsed on every
	// diskstats open.
	n := 0
	for line := range bytes.Lines(data) {
		n++
		line = bytes.TrimSuffix(line, []byte{'\n'})
		var f [3][]byte
		nf := splitFields(line, f[:])
		if nf == 0 || (nf == 2 && string(f[0]) == "Total") {
			continue
		}
		if nf != 3 {
			return nil, fmt.Errorf("blkio stat line %d: malformed %q", n, line)
		}
		dev, err := ParseDev(string(f[0]))
		if err != nil {
			return nil, fmt.Errorf("blkio stat line %d: %w", n, err)
		}
		v, err := strconv.ParseUint(string(f[2]), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("blkio stat line %d: %q: %w", n, line, err)
		}
		s := out[dev]
		switch string(f[1]) {
		case "Read":
			s.Read = v
		case "Write":
			s.Write = v
		case "Sync":
			s.Sync = v
		case "Async":
			s.Async = v
		case "Discard":
			s.Discard = v
		case "Total":
			s.Total = v
		default:
			// A future kernel's new operation: ignore it rather than
			// lose the whole file.
		}
		out[dev] = s
	}
	return out, nil
}

// splitFields puts the space-separated fields of line into f, as far as
// it holds them, and returns how many line has: len(f)+1 for more than f
// holds.
func splitFields(line []byte, f [][]byte) int {
	n := 0
	for {
		for len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
			line = line[1:]
		}
		if len(line) == 0 {
			return n
		}
		if n == len(f) {
			return n + 1
		}
		end := 0
		for end < len(line) && line[end] != ' ' && line[end] != '\t' {
			end++
		}
		f[n], line = line[:end], line[end:]
		n++
	}
}

// The v1 files read. The _recursive ones include descendant cgroups, as a
// container's view must. The bfq time files exist only on kernels built
// with CONFIG_BFQ_CGROUP_DEBUG.
const (
	blkioThrottleIOs   = "blkio.throttle.io_serviced_recursive"
	blkioThrottleBytes = "blkio.throttle.io_service_bytes_recursive"
	blkioBFQIOs        = "blkio.bfq.io_serviced_recursive"
	blkioBFQBytes      = "blkio.bfq.io_service_bytes_recursive"
	blkioBFQService    = "blkio.bfq.io_service_time_recursive"
	blkioBFQWait       = "blkio.bfq.io_wait_time_recursive"
)

// readIOV1 joins the throttle and bfq counters per device. The throttle
// files count a cgroup's bios only on devices where throttling is active (a
// throttle rule exists for the device); bfq counts every request on devices
// that use the bfq scheduler, whatever the rules. Where bfq has a device,
// its counters are used (they are requests after merging, as the kernel's
// diskstats counts, and they may carry times); elsewhere the throttle ones.
func (r v1Reader) IO(c *Cgroup) (IO, error) {
	dir, err := c.dir("blkio")
	if errors.Is(err, ErrNoCgroup) {
		return IO{}, nil
	}
	if err != nil {
		return nil, err
	}
	// One opening of the directory (one rename check) for all its files.
	ds := r.openDirs([]string{dir})
	defer ds.release()
	buf := r.fs.GetBuf()
	defer r.fs.PutBuf(buf)
	read := func(name string) (map[Dev]RWStat, error) {
		data, err := ds.read(0, name, buf)
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		m, err := ParseBlkioRWStat(data)
		if err != nil {
			return nil, fmt.Errorf("%s/%s: %w", dir, name, err)
		}
		return m, nil
	}
	var stats [6]map[Dev]RWStat
	for i, name := range []string{blkioThrottleIOs, blkioThrottleBytes, blkioBFQIOs, blkioBFQBytes, blkioBFQService, blkioBFQWait} {
		// The time files are only worth reading where bfq counts.
		if i >= 4 && len(stats[2]) == 0 {
			break
		}
		if stats[i], err = read(name); err != nil {
			return nil, err
		}
	}
	return joinIOV1(stats[0], stats[1], stats[2], stats[3], stats[4], stats[5]), nil
}

// joinIOV1 builds the per-device view from the parsed v1 files (nil for a
// file that is absent); see readIOV1 for the rule.
func joinIOV1(thrIOs, thrBytes, bfqIOs, bfqBytes, bfqService, bfqWait map[Dev]RWStat) IO {
	out := fromRWStats(thrIOs, thrBytes)
	for dev, d := range fromRWStats(bfqIOs, bfqBytes) {
		s, okS := bfqService[dev]
		w, okW := bfqWait[dev]
		if okS || okW {
			d.HasTimes = true
			d.ReadNsec = s.Read + w.Read
			d.WriteNsec = s.Write + w.Write
			d.DiscardNsec = s.Discard + w.Discard
		}
		// A bfq entry that counted nothing yet must not hide throttle
		// counts for the same device.
		if _, ok := out[dev]; ok && d == (DeviceIO{}) {
			continue
		}
		out[dev] = d
	}
	return out
}

// fromRWStats pairs an I/O count file with a byte count file, per device
// found in either.
func fromRWStats(ios, bytes map[Dev]RWStat) IO {
	out := IO{}
	for _, m := range []map[Dev]RWStat{ios, bytes} {
		for dev := range m {
			i, b := ios[dev], bytes[dev]
			out[dev] = DeviceIO{
				ReadIOs: i.Read, WriteIOs: i.Write, DiscardIOs: i.Discard,
				ReadBytes: b.Read, WriteBytes: b.Write, DiscardBytes: b.Discard,
			}
		}
	}
	return out
}
