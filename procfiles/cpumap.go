package procfiles

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// The files of /sys/devices/system/cpu and /sys/devices/system/node that
// name CPUs, rewritten for a container: only the CPUs it sees, numbered as
// its cpuinfo and stat number them.

// maxCPUs bounds the CPU numbers a file may name: the kernel's NR_CPUS is
// at most 8192 today; the bound keeps a corrupt "0-4000000000" from
// allocating gigabytes.
const maxCPUs = 1 << 16

// ErrBadCPUs is returned for a CPU list or mask the kernel would not write.
var ErrBadCPUs = errors.New("malformed CPU list or mask")

// CPUMap renumbers host CPUs as a container sees them: the i-th visible
// host CPU (in ascending order) is the container's CPU i.
type CPUMap struct {
	host []int // sorted and distinct: searched, no index to build per open
}

// NewCPUMap makes the map for the visible host CPUs, sorted and distinct.
func NewCPUMap(visible []int) CPUMap {
	return CPUMap{host: visible}
}

// Len is how many CPUs the container sees.
func (m CPUMap) Len() int { return len(m.host) }

// Host is the host CPU shown as the container's CPU i; ok is false when the
// container has no CPU i.
func (m CPUMap) Host(i int) (cpu int, ok bool) {
	if i < 0 || i >= len(m.host) {
		return 0, false
	}
	return m.host[i], true
}

// Container is the container's number for host CPU cpu; ok is false when
// the container does not see it.
func (m CPUMap) Container(cpu int) (i int, ok bool) {
	return slices.BinarySearch(m.host, cpu)
}

// renumber keeps the visible CPUs of host, as the container numbers them,
// sorted.
func (m CPUMap) renumber(host []int) []int {
	out := make([]int, 0, len(host))
	for _, c := range host {
		if i, ok := m.Container(c); ok {
			out = append(out, i)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// TranslateCPUList rewrites a cpulist file ("0-3,8\n": online, node0/cpulist,
// topology/core_cpus_list, cache/index0/shared_cpu_list) for the container.
func TranslateCPUList(data []byte, m CPUMap) ([]byte, error) {
	cpus, err := parseCPUList(data)
	if err != nil {
		return nil, err
	}
	return []byte(FormatCPUList(m.renumber(cpus)) + "\n"), nil
}

// TranslateCPUWords rewrites a file listing CPUs separated by spaces
// ("0 1 2 3\n": cpufreq's affected_cpus and related_cpus).
func TranslateCPUWords(data []byte, m CPUMap) ([]byte, error) {
	var cpus []int
	for _, f := range strings.Fields(string(data)) {
		c, err := cpuNumber(f)
		if err != nil {
			return nil, fmt.Errorf("%w: %q", ErrBadCPUs, f)
		}
		cpus = append(cpus, c)
	}
	var b strings.Builder
	for i, c := range m.renumber(cpus) {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.Itoa(c))
	}
	b.WriteByte('\n')
	return []byte(b.String()), nil
}

// TranslateCPUMask rewrites a CPU mask file ("00000000,0000000f\n": node0/
// cpumap, topology/core_cpus, cache/index0/shared_cpu_map): hexadecimal
// 32-bit words, the highest first, as many words as the host's file has so
// that readers sized for the kernel's nr_cpu_ids keep working.
func TranslateCPUMask(data []byte, m CPUMap) ([]byte, error) {
	s := strings.TrimSpace(string(data))
	if s == "" {
		return nil, fmt.Errorf("%w: empty mask", ErrBadCPUs)
	}
	words := strings.Split(s, ",")
	if len(words) > maxCPUs/32 {
		return nil, fmt.Errorf("%w: %d words", ErrBadCPUs, len(words))
	}
	var cpus []int
	for i, w := range words {
		if len(w) == 0 || len(w) > 8 {
			return nil, fmt.Errorf("%w: word %q", ErrBadCPUs, w)
		}
		v, err := strconv.ParseUint(w, 16, 32)
		if err != nil {
			return nil, fmt.Errorf("%w: word %q", ErrBadCPUs, w)
		}
		base := (len(words) - 1 - i) * 32
		for bit := range 32 {
			if v&(1<<bit) != 0 {
				cpus = append(cpus, base+bit)
			}
		}
	}
	out := make([]uint32, len(words))
	for _, c := range m.renumber(cpus) {
		// A container has no more CPUs than the host, so its highest
		// number fits in the host's words.
		if w := c / 32; w < len(out) {
			out[w] |= 1 << (c % 32)
		}
	}
	// The first word keeps the host's width: the kernel trims it to
	// nr_cpu_ids bits ("3" on a 2-CPU machine).
	var b strings.Builder
	for i := len(out) - 1; i >= 0; i-- {
		width := 8
		if i == len(out)-1 {
			width = len(words[0])
		}
		fmt.Fprintf(&b, "%0*x", width, out[i])
		if i > 0 {
			b.WriteByte(',')
		}
	}
	b.WriteByte('\n')
	return []byte(b.String()), nil
}

// parseCPUList parses the kernel's cpulist output ("0,2-3,8", empty for
// none) into sorted, distinct CPU numbers.
func parseCPUList(data []byte) ([]int, error) {
	s := bytes.TrimSpace(data)
	if len(s) == 0 {
		return nil, nil
	}
	var cpus []int
	for item := range strings.SplitSeq(string(s), ",") {
		lo, hi, found := strings.Cut(item, "-")
		a, err := cpuNumber(lo)
		b := a
		if err == nil && found {
			b, err = cpuNumber(hi)
		}
		if err != nil || b < a {
			return nil, fmt.Errorf("%w: %q", ErrBadCPUs, item)
		}
		for c := a; c <= b; c++ {
			cpus = append(cpus, c)
		}
	}
	slices.Sort(cpus)
	return slices.Compact(cpus), nil
}

func cpuNumber(s string) (int, error) {
	if len(s) == 0 || len(s) > 6 || s[0] == '+' || s[0] == '-' {
		return 0, strconv.ErrSyntax
	}
	n, err := strconv.Atoi(s)
	if err != nil || n >= maxCPUs {
		return 0, strconv.ErrRange
	}
	return n, nil
}

// FormatCPUList renders sorted, distinct CPU numbers in the kernel's cpulist
// format, ranges folded ("0,2-3,8"), without a newline; none gives "".
func FormatCPUList(cpus []int) string {
	var b strings.Builder
	for i := 0; i < len(cpus); {
		j := i
		for j+1 < len(cpus) && cpus[j+1] == cpus[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(cpus[i]))
		if j > i {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(cpus[j]))
		}
		i = j + 1
	}
	return b.String()
}
