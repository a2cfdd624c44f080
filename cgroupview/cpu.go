package cgroupview

import "errors"

// CPUUsage is the CPU time a cgroup and its descendants used, normalised
// over v1 and v2. Times are in nanoseconds.
type CPUUsage struct {
	// User and System are the cgroup's total user and system time.
	User, System uint64
	// PerCPU holds the same split per host CPU, indexed by CPU number, when
	// the kernel says (v1 cpuacct); nil on v2, which only has totals.
	PerCPU []CPUTime
	// Throttled is the time the CFS bandwidth controller held the cgroup's
	// runqueues back because the quota was spent (v1 throttled_time, v2
	// throttled_usec). It is summed over the CPUs that were throttled.
	Throttled uint64
}

// CPUTime is one CPU's user and system time in nanoseconds.
type CPUTime struct{ User, System uint64 }

// ErrNoCPUAccounting is returned when a cgroup has no CPU usage files (v1
// without cpuacct, v2 without cpu.stat).
var ErrNoCPUAccounting = errors.New("no CPU accounting for this cgroup")

// quotaCPUs rounds quota/period up to whole CPUs; 0 means no limit.
func quotaCPUs(quota, period uint64) int {
	if quota == NoLimit || period == 0 {
		return 0
	}
	n := (quota + period - 1) / period
	if n == 0 {
		return 1
	}
	if n > MaxCPU {
		return 0 // more CPUs than a kernel can have: no limit
	}
	return int(n)
}

// minCPUs keeps the smaller of two CPU counts where 0 is no limit.
func minCPUs(a, b int) int {
	switch {
	case a == 0:
		return b
	case b == 0:
		return a
	}
	return min(a, b)
}
