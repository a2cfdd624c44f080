package cgroupview

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
)

func (r v2Reader) CPUUsage(c *Cgroup) (CPUUsage, error) {
	var u CPUUsage
	dir, err := c.dir("cpu")
	if err != nil {
		return u, fmt.Errorf("%w: %v", ErrNoCPUAccounting, err)
	}
	// cpu.stat exists in every v2 cgroup: usage is core accounting; the
	// throttling keys appear only with the cpu controller enabled.
	data, err := r.readFile(dir + "/cpu.stat")
	if errors.Is(err, os.ErrNotExist) {
		return u, fmt.Errorf("%w: %s has no cpu.stat", ErrNoCPUAccounting, dir)
	}
	if err != nil {
		return u, fmt.Errorf("cpu stat: %w", err)
	}
	if u, err = ParseCPUStatV2(data); err != nil {
		return u, fmt.Errorf("%s/cpu.stat: %w", dir, err)
	}
	return u, nil
}

// ParseCPUStatV2 reads v2 cpu.stat. The kernel scales user_usec and
// system_usec so that they add up to usage_usec; should a kernel not, the
// missing part of usage counts as system time.
func ParseCPUStatV2(data []byte) (CPUUsage, error) {
	var u CPUUsage
	var usage uint64
	err := ParseFlatKeyed(data, func(k string, v uint64) {
		switch k {
		case "usage_usec":
			usage = v
		case "user_usec":
			u.User = v
		case "system_usec":
			u.System = v
		case "throttled_usec":
			u.Throttled = v
		}
	})
	if err != nil {
		return u, err
	}
	const us = 1000
	if u.User+u.System < usage {
		u.System = usage - u.User
	}
	u.User, u.System, u.Throttled = sat(u.User, us), sat(u.System, us), sat(u.Throttled, us)
	return u, nil
}

// sat multiplies without wrapping around.
func sat(v, m uint64) uint64 {
	if v > NoLimit/m {
		return NoLimit
	}
	return v * m
}

// ParseCPUMax parses v2 cpu.max, "QUOTA PERIOD" or "max PERIOD" in
// microseconds; a quota of "max" is NoLimit.
func ParseCPUMax(data []byte) (quota, period uint64, err error) {
	f := bytes.Fields(data)
	if len(f) != 2 {
		return 0, 0, fmt.Errorf("malformed cpu.max %q", data)
	}
	if period, err = strconv.ParseUint(string(f[1]), 10, 64); err != nil || period == 0 {
		return 0, 0, fmt.Errorf("malformed cpu.max period %q", f[1])
	}
	if string(f[0]) == "max" {
		return NoLimit, period, nil
	}
	if quota, err = strconv.ParseUint(string(f[0]), 10, 64); err != nil {
		return 0, 0, fmt.Errorf("malformed cpu.max quota %q", f[0])
	}
	return quota, period, nil
}

func (r v2Reader) CPUQuota(c *Cgroup) (int, error) {
	dirs, err := c.ancestors("cpu")
	if err != nil {
		return 0, err
	}
	n := 0
	for _, d := range limitDirs(dirs) {
		data, err := r.readFile(d + "/cpu.max")
		if errors.Is(err, os.ErrNotExist) {
			continue // the cpu controller is not enabled here
		}
		if err != nil {
			return 0, fmt.Errorf("cpu quota: %w", err)
		}
		quota, period, err := ParseCPUMax(data)
		if err != nil {
			return 0, fmt.Errorf("%s/cpu.max: %w", d, err)
		}
		n = minCPUs(n, quotaCPUs(quota, period))
	}
	return n, nil
}
