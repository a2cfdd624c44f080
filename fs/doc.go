// Package fs is the read-only FUSE tree cgprocfs serves. It knows nothing of
// cgroups: each file has a Content function that builds the file's bytes for
// the calling process, once per open. The snapshot is what every later read
// of that open is served from, and it is served with direct I/O so that the
// kernel's page cache never hands one container's bytes to another. A
// directory may instead have a DirSource (sourcedir.go) that gives its
// entries per caller: sys/devices/system/cpu lists the caller's CPUs only.
// Its entries that differ between callers are never cached by the kernel,
// and a directory served whole is bound into containers as one. An
// Observer (metrics) is told of every request; failures to build content
// are logged once per container and file, then counted a minute at a time
// (errlog.go).
package fs
