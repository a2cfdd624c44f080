// Package loadavg computes per-cgroup load averages the way the kernel
// computes the host's: every 5 s it counts the cgroup's runnable (R) and
// uninterruptible (D) threads and folds the count into three fixed-point
// exponentially decaying averages. calc.go is the kernel's arithmetic
// (kernel/sched/loadavg.c), tracker.go the sampler, and three counters
// count: bpfcount.go (one BPF task iterator run per round, exact and
// cheapest), threads.go (each thread's /proc/<tid>/stat, exact) and
// cgroupstats.go (taskstats netlink, cgroup v1 only, misses some sleeps).
package loadavg
