// Package seccompagent answers sysinfo(2) for containers: it is the seccomp
// agent an OCI runtime connects to when a container's seccomp profile has a
// listenerPath (runc sends the container's state and, with SCM_RIGHTS, the
// listener fd of its filter; see specs.ContainerProcessState), and it
// answers the notifications of every such fd. A sysinfo call of the native
// ABI gets the struct its container's served files describe (a Source,
// provider.Provider.Sysinfo in the daemon), written into the caller's
// buffer; every other call, and every failure, is answered with
// SECCOMP_USER_NOTIF_FLAG_CONTINUE, so the kernel runs the real call and no
// bug here can break a container. Under `cgprocfs mount`'s holder a
// Keeper holds a copy of every listener fd with the slot its notifications
// are received into (keep.go), so that the fds outlive the server and
// nothing it received is left unanswered.
package seccompagent
