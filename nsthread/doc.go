// Package nsthread runs a function on an OS thread of its own that has
// entered another namespace (setns into a container's mount namespace, an
// unshared one of its own). The thread is never given back to the Go
// scheduler: its goroutine ends locked to it, so the runtime ends the
// thread instead of running other goroutines in that namespace.
//
// A program using it keeps its main goroutine on the main thread
// (runtime.LockOSThread in an init): the runtime cannot end the main
// thread, and /proc/self, which is the main thread's, would otherwise show
// the entered namespace.
package nsthread
