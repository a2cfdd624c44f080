package cgroupview

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
)

// MaxCPU bounds the CPU numbers a cpulist may hold. The kernel's NR_CPUS is
// at most 8192 today; the bound only keeps a corrupt "0-4000000000" from
// allocating gigabytes.
const MaxCPU = 1 << 16

// ErrBadCPUList is returned for a cpulist that is not "N", "N-M" or "N-M:S/G"
// items separated by commas.
var ErrBadCPUList = errors.New("malformed cpulist")

// ParseCPUList parses the kernel's cpulist format ("0,2-3,8", "" for none,
// also the "0-7:2/4" stride form of cpuset.cpus) into sorted, distinct CPU
// numbers.
func ParseCPUList(data []byte) ([]int, error) {
	s := bytes.TrimSpace(data)
	if len(s) == 0 {
		return nil, nil
	}
	var cpus []int
	// Item by item in place: a SplitSeq iterator's closure was an
	// allocation on every open of a CPU file.
	for rest := s; rest != nil; {
		item := rest
		if i := bytes.IndexByte(rest, ','); i >= 0 {
			item, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		if len(item) == 0 {
			return nil, fmt.Errorf("%w %q: empty item", ErrBadCPUList, s)
		}
		lo, hi, stride, group := 0, 0, 1, 1
		r := item
		if i := bytes.IndexByte(r, ':'); i >= 0 {
			sg := r[i+1:]
			r = r[:i]
			j := bytes.IndexByte(sg, '/')
			if j < 0 {
				return nil, fmt.Errorf("%w %q: stride without group", ErrBadCPUList, s)
			}
			var err1, err2 error
			group, err1 = cpuNumber(sg[:j])
			stride, err2 = cpuNumber(sg[j+1:])
			if err1 != nil || err2 != nil || group == 0 || stride == 0 || group > stride {
				return nil, fmt.Errorf("%w %q: bad stride %q", ErrBadCPUList, s, sg)
			}
		}
		var err error
		if i := bytes.IndexByte(r, '-'); i >= 0 {
			lo, err = cpuNumber(r[:i])
			if err == nil {
				hi, err = cpuNumber(r[i+1:])
			}
		} else {
			lo, err = cpuNumber(r)
			hi = lo
		}
		if err != nil || hi < lo {
			return nil, fmt.Errorf("%w %q: bad range %q", ErrBadCPUList, s, item)
		}
		for c := lo; c <= hi; c++ {
			if (c-lo)%stride < group {
				cpus = append(cpus, c)
			}
		}
	}
	slices.Sort(cpus)
	return slices.Compact(cpus), nil
}

func cpuNumber(b []byte) (int, error) {
	if len(b) == 0 || len(b) > 6 {
		return 0, strconv.ErrSyntax
	}
	n, err := strconv.Atoi(string(b))
	if err != nil || n < 0 || n >= MaxCPU || b[0] == '+' {
		return 0, strconv.ErrRange
	}
	return n, nil
}

// Intersect returns the CPUs in both sorted lists.
func Intersect(a, b []int) []int {
	var out []int
	for i, j := 0, 0; i < len(a) && j < len(b); {
		switch {
		case a[i] < b[j]:
			i++
		case a[i] > b[j]:
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	return out
}

// CPUSet is the effective cpuset of cgroup c: the CPUs its tasks may run
// on. An empty set (a v1 cpuset never configured) inherits the nearest
// ancestor's; nil means no ancestor says, i.e. every CPU.
func (r v1Reader) CPUSet(c *Cgroup) ([]int, error) {
	// Kernels before 4.x have no effective_cpus: cpuset.cpus then.
	return r.cpuSet(c, "cpuset.effective_cpus", "cpuset.cpus")
}

// CPUSet is the effective cpuset of cgroup c; a cgroup without the cpuset
// controller inherits the nearest ancestor's; nil means every CPU.
func (r v2Reader) CPUSet(c *Cgroup) ([]int, error) {
	return r.cpuSet(c, "cpuset.cpus.effective", "")
}

// cpuSet walks up from c to the first directory whose file name (or, where
// that is missing, fallback) names CPUs.
func (r files) cpuSet(c *Cgroup, name, fallback string) ([]int, error) {
	dirs, err := c.ancestors("cpuset")
	if errors.Is(err, ErrNoCgroup) {
		return nil, nil // no cpuset controller: no restriction
	}
	if err != nil {
		return nil, err
	}
	buf := r.fs.GetBuf()
	defer r.fs.PutBuf(buf)
	// Directory by directory, as the first usually tells: each is opened
	// (inode-checked) once for both names, and read as the one record a
	// cgroup file is.
	read := func(i int) ([]byte, error) {
		ds := r.openDirs(dirs[i : i+1]) // no slice made per open
		defer ds.release()
		data, err := ds.read(0, name, buf)
		if errors.Is(err, os.ErrNotExist) && fallback != "" {
			data, err = ds.read(0, fallback, buf)
		}
		return data, err
	}
	for i, d := range dirs {
		data, err := read(i)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("cpuset: %w", err)
		}
		cpus, err := ParseCPUList(data)
		if err != nil {
			return nil, fmt.Errorf("%s/%s: %w", d, name, err)
		}
		if len(cpus) > 0 {
			return cpus, nil
		}
	}
	return nil, nil
}
