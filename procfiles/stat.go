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

// ParseStat parses the host's /proc/stat.
func ParseStat(data []byte) (*Stat, error) {
	s := &Stat{}
	for n, line := range bytes.Split(data, []byte{'\n'}) {
		if len(line) == 0 {
			continue
		}
		if !bytes.HasPrefix(line, []byte("cpu")) {
			s.Lines = append(s.Lines, line)
			continue
		}
		f := bytes.Fields(line)
		if string(f[0]) != "cpu" {
			if _, err := strconv.ParseUint(string(f[0][3:]), 10, 32); err != nil {
				return nil, fmt.Errorf("stat line %d: bad cpu name %q", n+1, f[0])
			}
			continue
		}
		if s.CPUFields != 0 {
			return nil, fmt.Errorf("stat line %d: second cpu line", n+1)
		}
		if len(f) < 5 {
			return nil, fmt.Errorf("stat line %d: %d cpu fields, want at least 4", n+1, len(f)-1)
		}
		s.CPUFields = min(len(f)-1, 10)
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
	b = appendCPULine(b, "cpu ", total, host.CPUFields)
	for i, c := range cpus {
		b = appendCPULine(b, "cpu"+strconv.Itoa(i), c, host.CPUFields)
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

func appendCPULine(b []byte, name string, c CPUStat, n int) []byte {
	b = append(b, name...)
	f := c.fields()
	for _, v := range f[:n] {
		b = append(b, ' ')
		b = strconv.AppendUint(b, v, 10)
	}
	return append(b, '\n')
}
