// Package provider joins the pieces for each served file: who is asking
// (caller), what their cgroup says (cgroupview), what the host says (kernel
// files under ProcRoot and SysRoot), and the pure renderers of procfiles. It
// keeps the per-container state that makes counters monotonic and the load
// average. One file per served file: meminfo.go (meminfo and swaps),
// cpuinfo.go, stat.go, cputree.go (the sys/devices/system/cpu and node
// directories), diskstats.go (diskstats and sys/block/DISK/stat),
// blockdir.go (the sys/block directory), loadavg.go, uptime.go; cpuview.go
// is the CPU view they share. containers.go lists the containers read lately and computes
// their figures for metrics; explain.go says where a file's computed lines
// came from (cgprocfs show --explain).
package provider
