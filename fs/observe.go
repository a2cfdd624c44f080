package fs

import (
	"syscall"
	"time"
)

// Observer is told what the tree does, for metrics; the fs package keeps no
// figures itself. Its methods run on the read path, so they must be cheap
// and must not block.
type Observer interface {
	// File is asked once per served file (its path, "proc/meminfo"),
	// when the tree is built; what it returns records that file's
	// requests, so that nothing is looked up by name per request.
	File(path string) FileObserver
	// OpenRefused is told each time an open fails on a container's cap
	// (MaxOpenPerOwner, MaxBytesPerOwner).
	OpenRefused()
}

// FileObserver records one file's requests: each open, and each read at
// offset 0 that builds the content afresh.
type FileObserver interface {
	// Begin is called as a request starts building content.
	Begin()
	// End is called once it is answered, with how long it took and the
	// errno the reader got (0: the content).
	End(took time.Duration, errno syscall.Errno)
}

// nopObserver is the Observer when none is given.
type nopObserver struct{}

func (nopObserver) File(string) FileObserver         { return nopObserver{} }
func (nopObserver) OpenRefused()                     {}
func (nopObserver) Begin()                           {}
func (nopObserver) End(time.Duration, syscall.Errno) {}
