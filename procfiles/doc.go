// Package procfiles renders the files cgprocfs serves. It is a leaf: pure
// functions from input values (parsed host /proc data, a cgroup's counters
// already read, load averages already computed) to file bytes, importing no
// package of this module. It owns its input types (CgroupMemory, DiskIO,
// Dev, LoadAverages); package provider converts what cgroupview and loadavg
// produce into them.
//
// The renderers hold every rule of what a container sees, so keeping them
// free of cgroup reading, caller resolution and sampling lets each rule be
// tested on fixtures alone, with no cgroup tree, no process and no clock,
// and lets those other packages change without touching the output.
package procfiles
