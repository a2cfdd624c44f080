package fs

import (
	"syscall"
	"testing"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// recordingFS counts the reads that get through to the tree.
type recordingFS struct {
	fuse.RawFileSystem
	reads int
}

func (r *recordingFS) Read(cancel <-chan struct{}, in *fuse.ReadIn, buf []byte) (fuse.ReadResult, fuse.Status) {
	r.reads++
	return fuse.ReadResultData([]byte("x")), fuse.OK
}

// A read without the reader's lock owner is the kernel filling the page
// cache, shared by every reader: refused with EINVAL before the tree sees
// it. Reads from read(2) carry the lock owner (every other test here reads).
func TestPageCacheFillsAreRefused(t *testing.T) {
	inner := &recordingFS{RawFileSystem: fuse.NewDefaultRawFileSystem()}
	d := directReadsOnly{inner}
	if _, st := d.Read(nil, &fuse.ReadIn{Size: 4096}, make([]byte, 4096)); st != fuse.Status(syscall.EINVAL) || inner.reads != 0 {
		t.Errorf("page cache fill: status %v, %d reads reached the tree; want EINVAL and none", st, inner.reads)
	}
	if _, st := d.Read(nil, &fuse.ReadIn{Size: 4096, ReadFlags: fuse.READ_LOCKOWNER}, make([]byte, 4096)); !st.Ok() || inner.reads != 1 {
		t.Errorf("direct read: status %v, %d reads reached the tree; want OK and one", st, inner.reads)
	}
}
