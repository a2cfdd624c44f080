package fs

import (
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// directReadsOnly refuses the reads the kernel makes to fill the page cache,
// which every open of an inode shares: content built for one caller must
// never land where another's splice, sendfile or mmap finds it. Reads of an
// open with FOPEN_DIRECT_IO come from fuse_direct_io, which always sends the
// reader's lock owner (FUSE_READ_LOCKOWNER); page cache fills (readahead,
// read_folio: kernels 6.5 and later splice FOPEN_DIRECT_IO files through the
// page cache, and MAP_PRIVATE faults go there on every kernel) never do.
// With the size of 0 that Getattr reports the kernel stops at EOF before it
// asks, so this only guards against a kernel that asks anyway. EINVAL is
// what splice(2) and sendfile(2) document for a file that cannot do them,
// and what copy routines (Python's shutil, Go's os.File.ReadFrom) fall back
// to read(2) on.
type directReadsOnly struct {
	fuse.RawFileSystem
}

func (d directReadsOnly) Read(cancel <-chan struct{}, in *fuse.ReadIn, buf []byte) (fuse.ReadResult, fuse.Status) {
	if in.ReadFlags&fuse.READ_LOCKOWNER == 0 {
		return nil, fuse.Status(syscall.EINVAL)
	}
	return d.RawFileSystem.Read(cancel, in, buf)
}
