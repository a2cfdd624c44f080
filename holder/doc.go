// Package holder keeps a cgprocfs mount's FUSE connection alive across the
// processes that serve it. `cgprocfs mount` runs as the holder: a small
// parent that starts the serving process (the same binary, as its child),
// receives the connection's /dev/fuse descriptor from it once mounted, and
// keeps it. When the server dies (a crash, an OOM kill), the connection
// does not: the holder starts a next server that adopts it, and asks the
// kernel to send again what the dead one had read but not answered
// (FUSE_NOTIFY_RESEND, Linux 6.9+). On SIGHUP it starts the binary at its
// path (maybe replaced) the same way, and stops the old server only once
// the new one serves. The holder never reads the connection itself. It
// keeps the seccomp agent's listener fds the same way (notify.go).
package holder
