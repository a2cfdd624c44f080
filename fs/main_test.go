package fs

import "runtime"

// The test binary's main goroutine keeps the main thread, as cgprocfs's
// does (main.go): AbortConnection ends a thread in a mount namespace of its
// own, which must never be the main thread that /proc/self shows.
func init() { runtime.LockOSThread() }
