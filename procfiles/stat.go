package procfiles

import (
	"bytes"
	"fmt"
	"strconv"
)

// Stat is a parsed host /proc/stat: how many counters its cpu lines carry
// and every other line as the host wrote it.
type Stat struct {
	// CPUFields is the number of counters on the host's "cpu" line (10
	// since Linux 2.6.33: user nice system idle iowait irq softirq steal
	// guest guest_nice).
	CPUFields int
	// Lines are the host's lines other than cpu and cpuN, in order.
	Lines [][]byte
}

// CPUStat is one cpu line of /proc/stat, in USER_HZ ticks.
type CPUStat struct {
	User, Nice, System, Idle, IOWait, IRQ, SoftIRQ, Steal, Guest, GuestNice uint64
}

func (c CPUStat) fields() [10]uint64 {
	return [10]uint64{c.User, c.Nice, c.System, c.Idle, c.IOWait, c.IRQ, c.SoftIRQ, c.Steal, c.Guest, c.GuestNice}
}

// ParseStat parses the host's /proc/stat. It runs on every open of stat, so
// it walks lines and fields in place rather than splitting them out.
func ParseStat(data []byte) (*Stat, error) {
	// Seven other lines on current kernels (intr, ctxt, btime,
	// processes, procs_running, procs_blocked, softirq).
	s := &Stat{Lines: make([][]byte, 0, 8)}
	n := 0
	for line := range bytes.Lines(data) {
		n++
		line = bytes.TrimSuffix(line, []byte{'\n'})
		if len(line) == 0 {
			continue
		}
		if !bytes.HasPrefix(line, []byte("cpu")) {
			s.Lines = append(s.Lines, line)
			continue
		}
		var name []byte
		fields := 0
		for f := range bytes.FieldsSeq(line) {
			if fields == 0 {
				name = f
			}
			fields++
		}
		if string(name) != "cpu" {
			if _, err := strconv.ParseUint(string(name[3:]), 10, 32); err != nil {
				return nil, fmt.Errorf("stat line %d: bad cpu name %q", n, name)
			}
			continue
		}
		if s.CPUFields != 0 {
			return nil, fmt.Errorf("stat line %d: second cpu line", n)
		}
		if fields < 5 {
			return nil, fmt.Errorf("stat line %d: %d cpu fields, want at least 4", n, fields-1)
		}
		s.CPUFields = min(fields-1, 10)
	}
	if s.CPUFields == 0 {
		return nil, fmt.Errorf("stat: no cpu line")
	}
	return s, nil
}

// RenderStat renders /proc/stat: the "cpu" line from total and one cpuN
// line per element of cpus, with as many counters as the host's lines,
// then the host's other lines with procs_running and procs_blocked set to
// the given counts.
func RenderStat(host *Stat, total CPUStat, cpus []CPUStat, running, blocked uint64) []byte {
	b := make([]byte, 0, 96*(len(cpus)+1)+64*len(host.Lines))
	b = appendCPULine(b, -1, total, host.CPUFields)
	for i, c := range cpus {
		b = appendCPULine(b, i, c, host.CPUFields)
	}
	for _, l := range host.Lines {
		switch {
		case bytes.HasPrefix(l, []byte("procs_running ")):
			b = append(b, "procs_running "...)
			b = strconv.AppendUint(b, running, 10)
		case bytes.HasPrefix(l, []byte("procs_blocked ")):
			b = append(b, "procs_blocked "...)
			b = strconv.AppendUint(b, blocked, 10)
		default:
			b = append(b, l...)
		}
		b = append(b, '\n')
	}
	return b
}

// appendCPULine appends the line of CPU cpu, or with cpu -1 the total
// ("cpu " with two spaces before the first counter, as the kernel writes it).
func appendCPULine(b []byte, cpu int, c CPUStat, n int) []byte {
	b = append(b, "cpu"...)
	if cpu < 0 {
		b = append(b, ' ')
	} else {
		b = strconv.AppendInt(b, int64(cpu), 10)
	}
	f := c.fields()
	for _, v := range f[:n] {
		b = append(b, ' ')
		b = strconv.AppendUint(b, v, 10)
	}
	return append(b, '\n')
}
