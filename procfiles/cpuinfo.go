package procfiles

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// CPUInfo is a parsed /proc/cpuinfo that keeps the host's text: blank-line
// separated blocks of "key\t: value" lines, one block per CPU on x86, arm64,
// ppc64, riscv, mips and loongarch (plus machine-wide blocks, such as ppc's
// trailer, that are kept as they are), or s390x's layout (see
// RenderCPUInfo).
type CPUInfo struct {
	Blocks []CPUInfoBlock
}

// CPUInfoBlock is one block of lines. Processor is the CPU number of a
// per-CPU block ("processor" on most architectures, "cpu number" on s390x),
// or -1 for a machine-wide block.
type CPUInfoBlock struct {
	Processor int
	Lines     [][]byte
}

// ErrNoProcessors is returned for a cpuinfo without a single CPU in it.
var ErrNoProcessors = errors.New("cpuinfo lists no processor")

// ParseCPUInfo splits /proc/cpuinfo into blocks. Every open of a
// container's cpuinfo parses the host's whole file (a block of some 27 lines
// per host CPU), so it walks the lines in place and allocates per block, not
// per line.
func ParseCPUInfo(data []byte) (*CPUInfo, error) {
	ci := &CPUInfo{}
	var cur *CPUInfoBlock
	found := false
	blockLines := 0
	n := 0
	for line := range bytes.Lines(data) {
		n++
		line = bytes.TrimSuffix(line, []byte{'\n'})
		if len(bytes.TrimSpace(line)) == 0 {
			if cur != nil {
				blockLines = len(cur.Lines)
			}
			cur = nil
			continue
		}
		if cur == nil {
			// The blocks of one file are alike: size each like the
			// last.
			ci.Blocks = append(ci.Blocks, CPUInfoBlock{Processor: -1, Lines: make([][]byte, 0, blockLines)})
			cur = &ci.Blocks[len(ci.Blocks)-1]
		}
		cur.Lines = append(cur.Lines, line)
		if line[0] != 'p' && line[0] != 'c' {
			continue // not "processor" nor "cpu number": skip the split
		}
		key, val, ok := cpuinfoField(line)
		if ok && (string(key) == "processor" || string(key) == "cpu number") {
			if cur.Processor >= 0 {
				return nil, fmt.Errorf("cpuinfo line %d: second %q in one block", n, key)
			}
			p, err := strconv.Atoi(string(val))
			if err != nil || p < 0 {
				return nil, fmt.Errorf("cpuinfo line %d: bad %s %q", n, key, val)
			}
			cur.Processor = p
			found = true
		}
	}
	if !found && !ci.s390Processors() {
		return nil, ErrNoProcessors
	}
	return ci, nil
}

// cpuinfoField splits "key\t\t: value" into its trimmed key and value, both
// slices of line.
func cpuinfoField(line []byte) (key, val []byte, ok bool) {
	i := bytes.IndexByte(line, ':')
	if i < 0 {
		return nil, nil, false
	}
	return bytes.TrimRight(line[:i], " \t"), bytes.TrimSpace(line[i+1:]), true
}

// s390Processors tells whether the file has s390x "processor N: ..." lines.
func (ci *CPUInfo) s390Processors() bool {
	for _, b := range ci.Blocks {
		for _, l := range b.Lines {
			if _, ok := s390ProcessorLine(l); ok {
				return true
			}
		}
	}
	return false
}

// s390ProcessorLine parses the number of an s390x "processor N: ..." line.
func s390ProcessorLine(line []byte) (int, bool) {
	rest, ok := bytes.CutPrefix(line, []byte("processor "))
	if !ok {
		return 0, false
	}
	i := bytes.IndexByte(rest, ':')
	if i <= 0 {
		return 0, false
	}
	p, err := strconv.Atoi(string(rest[:i]))
	return p, err == nil && p >= 0
}

// RenderCPUInfo renders cpuinfo for the host CPUs cpus (sorted), shown as
// CPUs 0, 1, ...: their blocks in the host's order with "processor" (or
// s390x's "cpu number") renumbered, "siblings" and "cpu cores" (x86)
// counting only the CPUs shown in the same package, and machine-wide blocks
// unchanged. On s390x the "processor N:" lines of the CPUs shown are kept
// and renumbered and "# processors" is their count.
func RenderCPUInfo(host *CPUInfo, cpus []int) []byte {
	index := make(map[int]int, len(cpus))
	for i, c := range cpus {
		index[c] = i
	}
	// Per physical package: how many shown CPUs and distinct cores.
	siblings := map[string]int{}
	cores := map[string]map[string]bool{}
	for _, b := range host.Blocks {
		if _, ok := index[b.Processor]; !ok || b.Processor < 0 {
			continue
		}
		pkg, core := blockValue(b, "physical id"), blockValue(b, "core id")
		siblings[pkg]++
		if cores[pkg] == nil {
			cores[pkg] = map[string]bool{}
		}
		cores[pkg][core] = true
	}

	// Each shown block is at most its host length (CPU numbers and counts
	// only shrink), so one allocation holds the whole view.
	size := 0
	for _, b := range host.Blocks {
		if _, shown := index[b.Processor]; shown || b.Processor < 0 {
			for _, l := range b.Lines {
				size += len(l) + 1
			}
			size++
		}
	}
	out := make([]byte, 0, size+16)
	for _, b := range host.Blocks {
		idx, shown := index[b.Processor]
		if b.Processor >= 0 && !shown {
			continue
		}
		if len(out) > 0 {
			out = append(out, '\n')
		}
		pkg := blockValue(b, "physical id")
		for _, l := range b.Lines {
			if p, ok := s390ProcessorLine(l); ok && b.Processor < 0 {
				i, ok := index[p]
				if !ok {
					continue
				}
				rest := l[bytes.IndexByte(l, ':'):]
				out = append(out, "processor "...)
				out = strconv.AppendInt(out, int64(i), 10)
				out = append(out, rest...)
				out = append(out, '\n')
				continue
			}
			k, _, ok := cpuinfoField(l)
			switch key := string(k); {
			case !ok:
			case b.Processor >= 0 && (key == "processor" || key == "cpu number"):
				out = replaceValue(out, l, strconv.Itoa(idx))
				continue
			case b.Processor >= 0 && key == "siblings":
				out = replaceValue(out, l, strconv.Itoa(siblings[pkg]))
				continue
			case b.Processor >= 0 && key == "cpu cores":
				out = replaceValue(out, l, strconv.Itoa(len(cores[pkg])))
				continue
			case b.Processor < 0 && key == "# processors":
				out = replaceValue(out, l, strconv.Itoa(len(cpus)))
				continue
			}
			out = append(out, l...)
			out = append(out, '\n')
		}
	}
	if len(out) > 0 && host.Blocks[len(host.Blocks)-1].Processor >= 0 {
		// The kernel ends each CPU's block with a blank line.
		out = append(out, '\n')
	}
	return out
}

func blockValue(b CPUInfoBlock, key string) string {
	for _, l := range b.Lines {
		if k, v, ok := cpuinfoField(l); ok && string(k) == key {
			return string(v)
		}
	}
	return ""
}

// replaceValue appends line with the text after ": " replaced by v.
func replaceValue(out, line []byte, v string) []byte {
	i := bytes.IndexByte(line, ':')
	out = append(out, line[:i+1]...)
	out = append(out, ' ')
	out = append(out, v...)
	return append(out, '\n')
}
