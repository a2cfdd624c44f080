package cgroupview

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
)

func (r v1Reader) CPUUsage(c *Cgroup) (CPUUsage, error) {
	var u CPUUsage
	dir, err := c.dir("cpuacct")
	if err != nil {
		return u, fmt.Errorf("%w: %v", ErrNoCPUAccounting, err)
	}
	data, err := r.readFile(dir + "/cpuacct.usage_all")
	switch {
	case err == nil:
		if u.PerCPU, err = ParseUsageAll(data); err != nil {
			return u, fmt.Errorf("%s/cpuacct.usage_all: %w", dir, err)
		}
	case errors.Is(err, os.ErrNotExist):
		// Kernels before 4.7 have no usage_all: take usage_percpu and
		// count it all as user time.
		data, err = r.readFile(dir + "/cpuacct.usage_percpu")
		if errors.Is(err, os.ErrNotExist) {
			return u, fmt.Errorf("%w: %s has no cpuacct.usage_percpu", ErrNoCPUAccounting, dir)
		}
		if err != nil {
			return u, fmt.Errorf("cpuacct usage: %w", err)
		}
		if u.PerCPU, err = ParseUsagePerCPU(data); err != nil {
			return u, fmt.Errorf("%s/cpuacct.usage_percpu: %w", dir, err)
		}
	default:
		return u, fmt.Errorf("cpuacct usage: %w", err)
	}
	for _, t := range u.PerCPU {
		u.User += t.User
		u.System += t.System
	}

	// Throttling lives in the cpu controller, which may sit elsewhere.
	if cpuDir, err := c.dir("cpu"); err == nil {
		data, err := r.readFile(cpuDir + "/cpu.stat")
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return u, fmt.Errorf("cpu stat: %w", err)
		}
		if err == nil {
			if u.Throttled, err = ParseCPUStatV1(data); err != nil {
				return u, fmt.Errorf("%s/cpu.stat: %w", cpuDir, err)
			}
		}
	}
	return u, nil
}

// ParseUsageAll parses v1 cpuacct.usage_all: a "cpu user system" header
// and one "N user_ns system_ns" line per possible CPU.
func ParseUsageAll(data []byte) ([]CPUTime, error) {
	// Line by line and field by field in place (splitFields): this file
	// is parsed on every open of stat and cpuinfo.
	data = bytes.TrimRight(data, "\n")
	var out []CPUTime
	n := 0
	for line := range bytes.Lines(data) {
		n++
		var f [3][]byte
		nf := splitFields(bytes.TrimSuffix(line, []byte{'\n'}), f[:])
		if n == 1 {
			if nf != 3 || string(f[0]) != "cpu" || string(f[1]) != "user" || string(f[2]) != "system" {
				return nil, fmt.Errorf("missing header %q", "cpu user system")
			}
			out = make([]CPUTime, 0, bytes.Count(data, []byte{'\n'}))
			continue
		}
		if nf != 3 {
			return nil, fmt.Errorf("line %d: want 3 fields, got %q", n, bytes.TrimSuffix(line, []byte{'\n'}))
		}
		cpu, err := cpuNumber(f[0])
		if err != nil || cpu != len(out) {
			return nil, fmt.Errorf("line %d: CPU %q out of order", n, f[0])
		}
		user, err1 := strconv.ParseUint(string(f[1]), 10, 64)
		sys, err2 := strconv.ParseUint(string(f[2]), 10, 64)
		if err := errors.Join(err1, err2); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		out = append(out, CPUTime{User: user, System: sys})
	}
	if n == 0 {
		return nil, fmt.Errorf("missing header %q", "cpu user system")
	}
	return out, nil
}

// ParseUsagePerCPU parses v1 cpuacct.usage_percpu, one number per possible
// CPU on one line, as user time.
func ParseUsagePerCPU(data []byte) ([]CPUTime, error) {
	f := bytes.Fields(data)
	if len(f) > MaxCPU {
		return nil, fmt.Errorf("%d CPUs, more than %d", len(f), MaxCPU)
	}
	out := make([]CPUTime, len(f))
	for i, v := range f {
		n, err := strconv.ParseUint(string(v), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("CPU %d: %w", i, err)
		}
		out[i].User = n
	}
	return out, nil
}

// ParseCPUStatV1 takes throttled_time (ns) out of v1 cpu.stat.
func ParseCPUStatV1(data []byte) (throttled uint64, err error) {
	err = ParseFlatKeyed(data, func(k string, v uint64) {
		if k == "throttled_time" {
			throttled = v
		}
	})
	return throttled, err
}

func (r v1Reader) CPUQuota(c *Cgroup) (int, error) {
	// One opening (one rename check) of each directory for both files.
	ds, buf, err := r.holdAncestors(c, "cpu")
	if errors.Is(err, ErrNoCgroup) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer r.letGo(ds, buf)
	n := 0
	for i := range ds.limited() {
		quota, err := ds.readLimit(i, "cpu.cfs_quota_us", buf)
		if err != nil {
			return 0, fmt.Errorf("cpu quota: %w", err)
		}
		if quota == NoLimit {
			continue
		}
		period, err := ds.readUint(i, "cpu.cfs_period_us", buf)
		if err != nil {
			return 0, fmt.Errorf("cpu period: %w", err)
		}
		n = minCPUs(n, quotaCPUs(quota, period))
	}
	return n, nil
}
