// Package kernelfs reads the kernel files cgprocfs needs on every open of a
// served file: cgroup files, /proc/<pid> files and host /proc files. It is
// shaped like github.com/prometheus/procfs (an FS value holding the roots,
// methods that read, private parsers over bytes beside their fixtures), but
// it keeps descriptors open and re-reads them with pread, which procfs does
// not: opening a kernel file costs several times reading it, and this is the
// hot path. Files read once at start use prometheus/procfs itself.
//
// One descriptor cache serves every reader (see cache.go): v1 cgroup
// directories are checked for a rename by an inotify watch (renames.go, or
// by inode where there is none), removed ones by ENODEV, processes by
// ESRCH; the number of kept descriptors is a share of RLIMIT_NOFILE, and a
// background sweep lets go of removed cgroups and exited processes within
// seconds.
package kernelfs
