package procfiles

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
)

// Meminfo is a parsed /proc/meminfo that keeps every line, its order and its
// layout, so a rendered file looks like the host kernel's. The keys and
// units are a layout that reparses of one host's file share; each parse
// holds only the values and their widths, which hold no pointers, so that
// what every open of meminfo allocates is small and never scanned by the
// garbage collector.
type Meminfo struct {
	layout *meminfoLayout
	values []meminfoLineValue
}

// meminfoLayout is the keys and units of a meminfo, in file order.
type meminfoLayout struct {
	keys []string
	kB   []bool // the line ends in " kB"
	// index maps a key to its line.
	index map[string]int
}

type meminfoLineValue struct {
	value uint64
	width int
}

// MeminfoLine is one "Key:   value[ kB]" line.
type MeminfoLine struct {
	Key string
	// Value is as the file shows it (kB for lines with a kB unit).
	Value uint64
	// Width is the width of the padded value field after "Key:", which the
	// kernel sets by padding the name; Suffix is what follows (" kB" or "").
	Width  int
	Suffix string
}

// ParseMeminfo parses /proc/meminfo.
func ParseMeminfo(data []byte) (*Meminfo, error) {
	l := &meminfoLayout{index: map[string]int{}}
	m := &Meminfo{layout: l}
	for n, line := range bytes.Split(data, []byte{'\n'}) {
		if len(line) == 0 {
			continue
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return nil, fmt.Errorf("meminfo line %d: no key in %q", n+1, line)
		}
		rest := line[colon+1:]
		suffix := ""
		if bytes.HasSuffix(rest, []byte(" kB")) {
			suffix = " kB"
			rest = rest[:len(rest)-3]
		}
		v, err := strconv.ParseUint(string(bytes.TrimLeft(rest, " ")), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("meminfo line %d: %q: %w", n+1, line, err)
		}
		key := string(line[:colon])
		if _, dup := l.index[key]; dup {
			return nil, fmt.Errorf("meminfo line %d: duplicate key %q", n+1, key)
		}
		l.index[key] = len(l.keys)
		l.keys = append(l.keys, key)
		l.kB = append(l.kB, suffix != "")
		m.values = append(m.values, meminfoLineValue{value: v, width: len(rest)})
	}
	if len(l.keys) == 0 {
		return nil, fmt.Errorf("meminfo: empty")
	}
	return m, nil
}

// ReparseMeminfo parses /proc/meminfo like ParseMeminfo, taking the keys
// and layout from prev, an earlier parse of the same host, when they are
// unchanged: only the values are read then, which spares a map and a
// string per line on every open. prev may be nil.
func ReparseMeminfo(prev *Meminfo, data []byte) (*Meminfo, error) {
	if prev == nil {
		return ParseMeminfo(data)
	}
	l := prev.layout
	values := make([]meminfoLineValue, len(l.keys))
	i := 0
	rest := data
	for len(rest) > 0 {
		var line []byte
		if nl := bytes.IndexByte(rest, '\n'); nl >= 0 {
			line, rest = rest[:nl], rest[nl+1:]
		} else {
			line, rest = rest, nil
		}
		if len(line) == 0 {
			continue
		}
		if i >= len(values) {
			return ParseMeminfo(data)
		}
		key := l.keys[i]
		if len(line) <= len(key) || line[len(key)] != ':' || string(line[:len(key)]) != key {
			return ParseMeminfo(data)
		}
		val := line[len(key)+1:]
		kB := bytes.HasSuffix(val, []byte(" kB"))
		if kB != l.kB[i] {
			return ParseMeminfo(data)
		}
		if kB {
			val = val[:len(val)-3]
		}
		v, ok := parseDecimal(bytes.TrimLeft(val, " "))
		if !ok {
			return ParseMeminfo(data) // for its error
		}
		values[i] = meminfoLineValue{value: v, width: len(val)}
		i++
	}
	if i != len(values) {
		return ParseMeminfo(data)
	}
	return &Meminfo{layout: l, values: values}, nil
}

// parseDecimal parses an unsigned decimal number without allocating.
func parseDecimal(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 19 {
		v, err := strconv.ParseUint(string(b), 10, 64)
		return v, err == nil
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	return v, true
}

// Get returns the value of key as the file shows it.
func (m *Meminfo) Get(key string) (uint64, bool) {
	i, ok := m.layout.index[key]
	if !ok {
		return 0, false
	}
	return m.values[i].value, true
}

// Lines returns the file's lines in order.
func (m *Meminfo) Lines() []MeminfoLine {
	lines := make([]MeminfoLine, len(m.values))
	for i := range lines {
		lines[i] = m.line(i)
	}
	return lines
}

func (m *Meminfo) line(i int) MeminfoLine {
	l := MeminfoLine{Key: m.layout.keys[i], Value: m.values[i].value, Width: m.values[i].width}
	if m.layout.kB[i] {
		l.Suffix = " kB"
	}
	return l
}

// SameLayout tells whether m and o have the same keys and units in the
// same order.
func (m *Meminfo) SameLayout(o *Meminfo) bool {
	if m == nil || o == nil {
		return false
	}
	a, b := m.layout, o.layout
	return a == b || slices.Equal(a.keys, b.keys) && slices.Equal(a.kB, b.kB)
}

// Bytes renders the file in the kernel's layout.
func (m *Meminfo) Bytes() []byte {
	b := make([]byte, 0, 48*len(m.values))
	for i := range m.values {
		l := m.line(i)
		b = appendMeminfoLine(b, l.Key, l.Value, l.Width, l.Suffix)
	}
	return b
}

func appendMeminfoLine(b []byte, key string, v uint64, width int, suffix string) []byte {
	b = append(b, key...)
	b = append(b, ':')
	var num [20]byte
	digits := strconv.AppendUint(num[:0], v, 10)
	// At least one space, as the kernel's padded names always leave one.
	for pad := max(width-len(digits), 1); pad > 0; pad-- {
		b = append(b, ' ')
	}
	b = append(b, digits...)
	b = append(b, suffix...)
	return append(b, '\n')
}

// CgroupMemory is what a container's memory cgroup says about itself, over
// cgroup v1 or v2: the cgroup's input to ComputeMemory.
type CgroupMemory struct {
	// Limit is the memory limit in bytes, the smallest over the cgroup and
	// its ancestors; math.MaxUint64 when there is none.
	Limit uint64
	// Usage is the memory charged to the cgroup in bytes.
	Usage uint64
	// SwapAccounting is false when the kernel does not account swap.
	SwapAccounting bool
	// SwapLimit is how much the cgroup may swap in bytes; math.MaxUint64
	// when there is no limit.
	SwapLimit uint64
	// SwapUsage is the cgroup's swap in use, in bytes.
	SwapUsage uint64
	Stat      MemoryStat
}

// MemoryStat holds the memory.stat counters the memory view uses, in bytes,
// counting the cgroup's descendants too.
type MemoryStat struct {
	Anon, AnonTHP                   uint64
	File, FileMapped                uint64
	Shmem, FileDirty, FileWriteback uint64
	ActiveAnon, InactiveAnon        uint64
	ActiveFile, InactiveFile        uint64
	Unevictable                     uint64
	Slab, SlabReclaimable           uint64
	SlabUnreclaimable               uint64
}

// ContainerMemory is the container's memory figures in bytes, derived from
// host meminfo, cgroup data and policy. Both meminfo and swaps use it, so
// they agree.
type ContainerMemory struct {
	Total, Free, Available, Cached uint64
	SwapTotal, SwapFree            uint64
	Stat                           MemoryStat
}

// ComputeMemory applies the memory formula (see README):
//
//	MemTotal     = min(host MemTotal, limit)
//	MemFree      = MemTotal - usage, at least 0
//	pinned       = shmem + dirty + writeback + share x active_file
//	Cached       = file - pinned, at least 0
//	MemAvailable = min(MemTotal, MemFree + Cached + reclaimable slab)
//
// Pinned page cache cannot be dropped on demand (a memcg neither reclaims
// tmpfs nor limits dirty cache), so it counts as used. The share is
// activeFileUsedPercent (capped at 100) of the cgroup's active file pages,
// its working set, which an operator may choose to count as used rather
// than as cache. hideSwap shows no swap at all.
func ComputeMemory(host *Meminfo, mem CgroupMemory, activeFileUsedPercent uint64, hideSwap bool) ContainerMemory {
	hostTotal, _ := host.Get("MemTotal")
	hostSwap, _ := host.Get("SwapTotal")
	s := mem.Stat
	c := ContainerMemory{Stat: s}
	c.Total = min(hostTotal*1024, mem.Limit)
	c.Free = c.Total - min(c.Total, mem.Usage)
	pinned := s.Shmem + s.FileDirty + s.FileWriteback + s.ActiveFile*min(activeFileUsedPercent, 100)/100
	c.Cached = s.File - min(s.File, pinned)
	c.Available = min(c.Total, c.Free+c.Cached+s.SlabReclaimable)
	if mem.SwapAccounting && !hideSwap {
		c.SwapTotal = min(hostSwap*1024, mem.SwapLimit)
		c.SwapFree = c.SwapTotal - min(c.SwapTotal, mem.SwapUsage)
	}
	return c
}

// RenderMeminfo renders /proc/meminfo for a container: the host's lines in
// the host's order and layout, with the container's values where it has them.
func RenderMeminfo(host *Meminfo, c ContainerMemory) []byte {
	b := make([]byte, 0, 48*len(host.values))
	for i := range host.values {
		l := host.line(i)
		v, ok := containerValue(l.Key, &c)
		if !ok {
			v = l.Value
		}
		b = appendMeminfoLine(b, l.Key, v, l.Width, l.Suffix)
	}
	return b
}

// containerValue is the container's value of a meminfo key in kB, if it
// has its own. A switch rather than a map: this runs for every line of
// every open.
func containerValue(key string, c *ContainerMemory) (uint64, bool) {
	s := &c.Stat
	var v uint64
	switch key {
	case "MemTotal":
		v = c.Total
	case "MemFree":
		v = c.Free
	case "MemAvailable":
		v = c.Available
	case "Buffers", "SwapCached":
		v = 0
	case "Cached":
		v = c.Cached
	case "Active":
		v = s.ActiveAnon + s.ActiveFile
	case "Inactive":
		v = s.InactiveAnon + s.InactiveFile
	case "Active(anon)":
		v = s.ActiveAnon
	case "Inactive(anon)":
		v = s.InactiveAnon
	case "Active(file)":
		v = s.ActiveFile
	case "Inactive(file)":
		v = s.InactiveFile
	case "Unevictable":
		v = s.Unevictable
	case "SwapTotal":
		v = c.SwapTotal
	case "SwapFree":
		v = c.SwapFree
	case "Dirty":
		v = s.FileDirty
	case "Writeback":
		v = s.FileWriteback
	case "AnonPages":
		v = s.Anon
	case "Mapped":
		v = s.FileMapped
	case "Shmem":
		v = s.Shmem
	case "KReclaimable", "SReclaimable":
		v = s.SlabReclaimable
	case "Slab":
		v = s.Slab
	case "SUnreclaim":
		v = s.SlabUnreclaimable
	case "AnonHugePages":
		v = s.AnonTHP
	default:
		return 0, false
	}
	return v / 1024, true
}
