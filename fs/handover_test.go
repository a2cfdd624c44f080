package fs

import (
	"syscall"
	"testing"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

func TestNodeIDFixedPerPath(t *testing.T) {
	if NodeID("") != fuse.FUSE_ROOT_ID {
		t.Errorf("root: %d", NodeID(""))
	}
	// The same in every process and version: a constant.
	if got := NodeID("proc/meminfo"); got != NodeID("proc/meminfo") || got <= fuse.FUSE_ROOT_ID || got >= 1<<63 {
		t.Errorf("proc/meminfo: %d", got)
	}
	if NodeID("proc") == NodeID("proc/meminfo") {
		t.Error("a directory and its file share an id")
	}
	if err := checkNodeIDs([]File{{Path: "proc/meminfo"}, {Path: "proc/stat"}, {Path: "sys/devices/system/cpu/online"}}); err != nil {
		t.Error(err)
	}
}

func TestInitRoundTrip(t *testing.T) {
	in := fuse.InitIn{Major: 7, Minor: 41, MaxReadAhead: 131072, Flags: 0x73fffffb, Flags2: 0x80}
	got, err := DecodeInit(EncodeInit(in))
	if err != nil || got != in {
		t.Fatalf("round trip: %+v, %v; want %+v", got, err, in)
	}
	if !CanResend(got) {
		t.Error("flags2 bit 7 (FUSE_HAS_RESEND) not seen")
	}
	if _, err := DecodeInit("not base64!"); err == nil {
		t.Error("bad INIT accepted")
	}
}

// bridgeStandIn stands for go-fuse's bridge: it hands out handles from 1 and
// records what it is asked.
type bridgeStandIn struct {
	fuse.RawFileSystem
	next     uint64
	reads    []uint64
	released []uint64
	opens    int
}

func (r *bridgeStandIn) Open(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	r.next++
	r.opens++
	out.Fh = r.next
	return fuse.OK
}

func (r *bridgeStandIn) Read(cancel <-chan struct{}, in *fuse.ReadIn, buf []byte) (fuse.ReadResult, fuse.Status) {
	r.reads = append(r.reads, in.Fh)
	return fuse.ReadResultData(nil), fuse.OK
}

func (r *bridgeStandIn) Release(cancel <-chan struct{}, in *fuse.ReleaseIn) {
	r.released = append(r.released, in.Fh)
}

// A handle of another server is never taken for one of ours, even with the
// same low bits: it gets its own open.
func TestForeignHandlesAreReopened(t *testing.T) {
	raw := &bridgeStandIn{RawFileSystem: fuse.NewDefaultRawFileSystem()}
	h := newHandoverFS(raw, &gofs.Inode{}, 0xabc)
	// Known node: no lookup needed.
	h.known.Store(uint64(42), true)
	var out fuse.OpenOut
	if st := h.Open(nil, &fuse.OpenIn{InHeader: fuse.InHeader{NodeId: 42}}, &out); !st.Ok() {
		t.Fatal(st)
	}
	if out.Fh>>32 != 0xabc {
		t.Fatalf("our handle %#x, want the generation in the high bits", out.Fh)
	}
	foreign := uint64(0x123)<<32 | out.Fh&handleMask // same low bits, another server's
	for range 2 {
		in := fuse.ReadIn{InHeader: fuse.InHeader{NodeId: 42}, Fh: foreign}
		if _, st := h.Read(nil, &in, nil); !st.Ok() {
			t.Fatal(st)
		}
	}
	in := fuse.ReadIn{InHeader: fuse.InHeader{NodeId: 42}, Fh: out.Fh}
	h.Read(nil, &in, nil)
	// The foreign handle got one open of its own (handle 2), reused.
	if raw.opens != 2 || len(raw.reads) != 3 || raw.reads[0] != 2 || raw.reads[1] != 2 || raw.reads[2] != 1 {
		t.Fatalf("opens %d, reads on %v: want 2 opens, reads on [2 2 1]", raw.opens, raw.reads)
	}
	h.Release(nil, &fuse.ReleaseIn{InHeader: fuse.InHeader{NodeId: 42}, Fh: foreign})
	h.Release(nil, &fuse.ReleaseIn{InHeader: fuse.InHeader{NodeId: 42}, Fh: uint64(0x999) << 32})
	h.Release(nil, &fuse.ReleaseIn{InHeader: fuse.InHeader{NodeId: 42}, Fh: out.Fh})
	if len(raw.released) != 2 || raw.released[0] != 2 || raw.released[1] != 1 {
		t.Fatalf("released %v, want [2 1] (a foreign handle never read is nothing of ours)", raw.released)
	}
	// A node id that is in no tree: ESTALE, never a panic in the bridge.
	if st := h.Open(nil, &fuse.OpenIn{InHeader: fuse.InHeader{NodeId: 7777}}, &out); st != fuse.Status(syscall.ESTALE) {
		t.Fatalf("unknown node: %v, want ESTALE", st)
	}
}

func TestConnectionIDOfAMountPointWithASpace(t *testing.T) {
	// Nothing is mounted there: an error naming it, not a guess.
	if _, err := ConnectionID("/no such/mount point"); err == nil {
		t.Error("a connection id for a mount point with nothing mounted")
	}
}

// reusingBridge hands out the lowest free handle, as go-fuse's bridge does.
type reusingBridge struct {
	fuse.RawFileSystem
	open  map[uint64]string // handle: the caller's container
	reads []string
}

func (r *reusingBridge) Open(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	fh := uint64(1)
	for r.open[fh] != "" {
		fh++
	}
	r.open[fh] = map[uint32]string{1: "container1", 2: "container2"}[in.Caller.Pid]
	out.Fh = fh
	return fuse.OK
}

func (r *reusingBridge) Read(cancel <-chan struct{}, in *fuse.ReadIn, buf []byte) (fuse.ReadResult, fuse.Status) {
	r.reads = append(r.reads, r.open[in.Fh])
	return fuse.ReadResultData(nil), fuse.OK
}

func (r *reusingBridge) Release(cancel <-chan struct{}, in *fuse.ReleaseIn) {
	delete(r.open, in.Fh)
}

// In an upgrade both servers serve for a moment. A handle of the old server
// adopted by the new one and then released through the old one must not
// come back as the old server's next handle: the new server would serve
// that open (another container's) the adopted snapshot.
func TestHandleNeverGivenTwice(t *testing.T) {
	oldRaw := &reusingBridge{RawFileSystem: fuse.NewDefaultRawFileSystem(), open: map[uint64]string{}}
	newRaw := &reusingBridge{RawFileSystem: fuse.NewDefaultRawFileSystem(), open: map[uint64]string{}}
	oldFS := newHandoverFS(oldRaw, &gofs.Inode{}, 1)
	newFS := newHandoverFS(newRaw, &gofs.Inode{}, 2)
	oldFS.known.Store(uint64(42), true)
	newFS.known.Store(uint64(42), true)
	caller := func(pid uint32) fuse.InHeader {
		return fuse.InHeader{NodeId: 42, Caller: fuse.Caller{Pid: pid}}
	}

	var first fuse.OpenOut
	oldFS.Open(nil, &fuse.OpenIn{InHeader: caller(1)}, &first)
	newFS.Read(nil, &fuse.ReadIn{InHeader: caller(1), Fh: first.Fh}, nil) // adopted
	oldFS.Release(nil, &fuse.ReleaseIn{InHeader: caller(1), Fh: first.Fh})
	var second fuse.OpenOut
	oldFS.Open(nil, &fuse.OpenIn{InHeader: caller(2)}, &second)
	if second.Fh == first.Fh {
		t.Fatalf("the old server gave handle %#x twice", first.Fh)
	}
	newFS.Read(nil, &fuse.ReadIn{InHeader: caller(2), Fh: second.Fh}, nil)
	if len(newRaw.reads) != 2 || newRaw.reads[1] != "container2" {
		t.Fatalf("the new server's reads were served from %v, want the second from container2's open", newRaw.reads)
	}
	// A handle of ours after its release is not read from whatever the
	// bridge reused its number for.
	if _, st := oldFS.Read(nil, &fuse.ReadIn{InHeader: caller(1), Fh: first.Fh}, nil); st != fuse.EBADF {
		t.Fatalf("read of a released handle: %v, want EBADF", st)
	}
}
