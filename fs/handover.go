package fs

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/cgprocfs/cgprocfs/kernelfs"
	"github.com/cgprocfs/cgprocfs/nsthread"
)

// Handing the FUSE connection from one server process to the next (an
// upgrade, or a restart after a crash by the holder that kept the
// /dev/fuse descriptor). The kernel keeps what earlier servers told it:
// node ids (from LOOKUP replies, held for as long as a container binds a
// file) and file handles (from OPEN replies, held for as long as a reader
// keeps the file open). So that they mean the same to every server:
//
//   - a node's id is a hash of its path (NodeID), the same in every
//     process and every version;
//   - a file handle carries this server's generation in its high 32 bits.
//     A handle of another generation is foreign: it is adopted on first
//     use by opening the node afresh for the caller that uses it (our
//     files are per-open snapshots, rebuilt for the reader), never
//     resolved in this server's handle table, where the same number may
//     be another container's open;
//   - a server never gives the kernel the same handle twice (its low 32
//     bits count opens; the bridge's own numbers, which it reuses, stay
//     inside). In an upgrade both servers serve for a moment: a handle
//     one of them adopted may be released through the other, and had
//     the other given the same number to its next open, a reader in
//     another container would have been served the adopted open's
//     snapshot.

// NodeID is the FUSE node id and inode number of the node at the
// slash-separated path p under the mount point ("" is the root). Every node
// of the tree must use it (StableAttr.Ino), nodes added later included:
// a node id the kernel got from a previous server is found again by path.
func NodeID(p string) uint64 {
	if p == "" {
		return fuse.FUSE_ROOT_ID
	}
	h := fnv.New64a()
	h.Write([]byte(p))
	// Below 2^63: go-fuse's automatic inode numbers start there, and
	// its poll hack uses 2^64-1. 0 and 1 (the root) are taken.
	id := h.Sum64() &^ (1 << 63)
	if id <= fuse.FUSE_ROOT_ID {
		id += 2
	}
	return id
}

// checkNodeIDs refuses a tree in which two paths hash to the same node id.
func checkNodeIDs(files []File) error {
	seen := map[uint64]string{NodeID(""): ""}
	for _, f := range files {
		for p := f.Path; p != "." && p != "/"; p = path.Dir(p) {
			id := NodeID(p)
			if other, ok := seen[id]; ok && other != p {
				return fmt.Errorf("paths %q and %q have the same node id %d", p, other, id)
			}
			seen[id] = p
		}
	}
	return nil
}

// Conn is a mounted, initialized FUSE connection a new server can adopt.
type Conn struct {
	// File is the connection's /dev/fuse descriptor.
	File *os.File
	// Init is the INIT request the kernel sent the connection's first
	// server.
	Init fuse.InitIn
}

// fuseHasResend is FUSE_HAS_RESEND, bit 39 of INIT's flags (flags2 bit 7,
// Linux 6.9 and later): the kernel takes FUSE_NOTIFY_RESEND.
const fuseHasResend = 1 << 39

// notifyResend is FUSE_NOTIFY_RESEND, the notification code (sent in the
// error field of a reply whose unique is 0).
const notifyResend = 7

// CanResend tells whether the kernel of init takes FUSE_NOTIFY_RESEND.
func CanResend(init fuse.InitIn) bool { return init.Flags64()&fuseHasResend != 0 }

// Resend asks the kernel to send again every request that a server read
// from the connection f and did not answer (a server that was killed). The
// kernel puts them back in the queue, marked with FUSE_UNIQUE_RESEND in
// their unique, which the server echoes in its reply like any other.
func Resend(f *os.File) error {
	var h [16]byte // fuse_out_header: len, error, unique
	binary.NativeEndian.PutUint32(h[0:], uint32(len(h)))
	binary.NativeEndian.PutUint32(h[4:], notifyResend)
	if _, err := f.Write(h[:]); err != nil {
		return fmt.Errorf("FUSE_NOTIFY_RESEND: %w", err)
	}
	return nil
}

// EncodeInit turns an INIT request into text for a child's environment.
func EncodeInit(in fuse.InitIn) string {
	var b bytes.Buffer
	binary.Write(&b, binary.NativeEndian, in)
	return base64.StdEncoding.EncodeToString(b.Bytes())
}

// DecodeInit is EncodeInit's inverse.
func DecodeInit(s string) (fuse.InitIn, error) {
	var in fuse.InitIn
	data, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return in, fmt.Errorf("INIT of the connection: %w", err)
	}
	if err := binary.Read(bytes.NewReader(data), binary.NativeEndian, &in); err != nil {
		return in, fmt.Errorf("INIT of the connection: %w", err)
	}
	return in, nil
}

// OpenConnFile finds the /dev/fuse descriptor of this process's server (one
// per process) and returns a duplicate of it, for the holder.
func OpenConnFile() (*os.File, error) {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil, fmt.Errorf("finding the FUSE descriptor: %w", err)
	}
	for _, e := range entries {
		if t, err := os.Readlink("/proc/self/fd/" + e.Name()); err != nil || t != "/dev/fuse" {
			continue
		}
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		dup, err := syscall.Dup(fd)
		if err != nil {
			return nil, fmt.Errorf("duplicating the FUSE descriptor: %w", err)
		}
		syscall.CloseOnExec(dup)
		return os.NewFile(uintptr(dup), "/dev/fuse"), nil
	}
	return nil, errors.New("no /dev/fuse descriptor in this process")
}

// ConnectionID is the name of the FUSE connection mounted at mountpoint
// under /sys/fs/fuse/connections (its device number, major 0).
func ConnectionID(mountpoint string) (string, error) {
	// thread-self: this thread's mount namespace, whatever another thread
	// of the process entered.
	data, err := os.ReadFile("/proc/thread-self/mountinfo")
	if err != nil {
		return "", fmt.Errorf("reading mounts: %w", err)
	}
	id := ""
	for line := range strings.Lines(string(data)) {
		f := strings.Fields(line)
		if len(f) < 5 || kernelfs.UnescapeMountinfo(f[4]) != mountpoint {
			continue
		}
		sep := strings.Index(line, " - ")
		if sep < 0 || !strings.HasPrefix(line[sep+3:], FSType+" ") {
			continue
		}
		_, minor, ok := strings.Cut(f[2], ":")
		if ok {
			id = minor // the last mount on the point is the visible one
		}
	}
	if id == "" {
		return "", fmt.Errorf("no cgprocfs mount at %s", mountpoint)
	}
	return id, nil
}

// AbortConnection ends the FUSE connection id: every request waiting for
// an answer fails (ECONNABORTED) and every later one too (ENOTCONN). A
// kernel without FUSE_NOTIFY_RESEND leaves the requests a killed server had
// read waiting for ever; this is what ends them.
//
// Where fusectl is not mounted (a host without systemd), it mounts one for
// the moment in a mount namespace of a thread of its own (nsthread), so the
// host sees no mount.
func AbortConnection(id string) error {
	err := writeAbort(id)
	if errors.Is(err, os.ErrNotExist) {
		err = nsthread.Run(privateMountNS, func() error {
			if err := unix.Mount("fusectl", fusectlDir, "fusectl", 0, ""); err != nil {
				return fmt.Errorf("mounting fusectl: %w", err)
			}
			return writeAbort(id)
		})
	}
	if err != nil {
		return fmt.Errorf("aborting FUSE connection %s: %w", id, err)
	}
	return nil
}

// fusectlDir is where fusectl is mounted: the fuse module makes the
// directory, systemd mounts it.
const fusectlDir = "/sys/fs/fuse/connections"

func writeAbort(id string) error {
	return os.WriteFile(path.Join(fusectlDir, id, "abort"), []byte("1"), 0)
}

// privateMountNS gives the calling thread a mount namespace of its own,
// with no propagation to the host's.
func privateMountNS() error {
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("a mount namespace of its own: %w", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making its mounts private: %w", err)
	}
	return nil
}

// handoverFS sits between the kernel and go-fuse's bridge: it gives the
// bridge only node ids and file handles the bridge knows, whichever server
// the kernel got them from.
type handoverFS struct {
	fuse.RawFileSystem
	// gen is this server's handle generation, shifted to the high 32
	// bits; the low 32 count this server's opens (see own).
	gen  uint64
	root *gofs.Inode

	// known holds the node ids the bridge has (found by a LOOKUP of
	// this server): for them the request goes straight through.
	known sync.Map

	mu sync.Mutex
	// lookups counts the LOOKUP replies this server gave per node id:
	// the most a FORGET may take off the bridge's count.
	lookups map[uint64]uint64
	// paths maps node ids to paths, built from the tree when an id is
	// not found.
	paths map[uint64]string
	// foreign maps a handle of another server to the bridge handle
	// opened for it here.
	foreign map[uint64]uint64

	ownMu sync.Mutex
	// own maps the low 32 bits of the handles this server gave out to
	// the bridge's handles; lastOwn is the last number given.
	own     map[uint32]uint64
	lastOwn uint32
}

const handleMask = 1<<32 - 1

func newHandoverFS(raw fuse.RawFileSystem, root *gofs.Inode, gen uint32) *handoverFS {
	h := &handoverFS{
		RawFileSystem: raw,
		gen:           uint64(gen) << 32,
		root:          root,
		lookups:       map[uint64]uint64{},
		foreign:       map[uint64]uint64{},
		own:           map[uint32]uint64{},
	}
	h.known.Store(uint64(fuse.FUSE_ROOT_ID), true)
	return h
}

// issue gives the kernel a handle for the bridge's handle local, never one
// given before (while one is open, its number is skipped at a wrap).
func (h *handoverFS) issue(local uint64) uint64 {
	h.ownMu.Lock()
	defer h.ownMu.Unlock()
	for {
		h.lastOwn++
		if _, taken := h.own[h.lastOwn]; !taken {
			break
		}
	}
	h.own[h.lastOwn] = local
	return h.gen | uint64(h.lastOwn)
}

// ownHandle is the bridge's handle behind fh if this server gave fh out
// and it is still open.
func (h *handoverFS) ownHandle(fh uint64) (uint64, bool) {
	if fh&^handleMask != h.gen {
		return 0, false
	}
	h.ownMu.Lock()
	local, ok := h.own[uint32(fh)]
	h.ownMu.Unlock()
	return local, ok
}

// dropOwn forgets the handle fh of this server (its RELEASE).
func (h *handoverFS) dropOwn(fh uint64) (uint64, bool) {
	if fh&^handleMask != h.gen {
		return 0, false
	}
	h.ownMu.Lock()
	defer h.ownMu.Unlock()
	local, ok := h.own[uint32(fh)]
	delete(h.own, uint32(fh))
	return local, ok
}

// ensure makes the bridge know node id, by looking it up from the root
// by path, as the caller of hdr, if this server never did; false if no node
// has that id (for that caller).
func (h *handoverFS) ensure(cancel <-chan struct{}, hdr *fuse.InHeader, id uint64) bool {
	if _, ok := h.known.Load(id); ok {
		return true
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	p, ok := h.paths[id]
	if !ok {
		h.indexPaths()
		if p, ok = h.paths[id]; !ok {
			if p, ok = h.searchSources(hdr.Caller.Pid, id); !ok {
				return false
			}
		}
	}
	parent := uint64(fuse.FUSE_ROOT_ID)
	for name := range strings.SplitSeq(p, "/") {
		in := fuse.InHeader{NodeId: parent, Caller: hdr.Caller}
		var out fuse.EntryOut
		if st := h.RawFileSystem.Lookup(cancel, &in, name, &out); !st.Ok() || out.NodeId == 0 {
			return false
		}
		h.known.Store(out.NodeId, true)
		parent = out.NodeId
	}
	return parent == id
}

// indexPaths maps the node id of every node in the tree (the static one,
// and the nodes of per-caller directories this server has looked up) to
// its path.
func (h *handoverFS) indexPaths() {
	h.paths = map[uint64]string{}
	var walk func(n *gofs.Inode, p string)
	walk = func(n *gofs.Inode, p string) {
		for name, c := range n.Children() {
			cp := path.Join(p, name)
			h.paths[c.StableAttr().Ino] = cp
			walk(c, cp)
		}
	}
	walk(h.root, "")
}

// maxSearch bounds how many entries searchSources lists for one id.
const maxSearch = 4096

// searchSources finds id below the per-caller directories (sourcedir.go)
// as the caller pid sees them: a node a previous server made there that
// this one has not (a reader's open file below cpuN, say).
func (h *handoverFS) searchSources(pid uint32, id uint64) (string, bool) {
	seen := 0
	for _, p := range h.paths {
		n := h.root
		for name := range strings.SplitSeq(p, "/") {
			if n = n.GetChild(name); n == nil {
				break
			}
		}
		d, ok := nodeOps(n).(*sourceDir)
		if !ok || d.rel != "" {
			continue
		}
		queue := []string{""}
		for len(queue) > 0 && seen < maxSearch {
			rel := queue[0]
			queue = queue[1:]
			entries, err := d.t.src.List(context.Background(), pid, rel)
			if err != nil {
				continue
			}
			for _, e := range entries {
				seen++
				child := e.Name
				if rel != "" {
					child = rel + "/" + e.Name
				}
				typ := e.Mode & syscall.S_IFMT
				if d.t.ino(child, typ) == id {
					return d.t.full(child), true
				}
				if typ == syscall.S_IFDIR {
					queue = append(queue, child)
				}
			}
		}
	}
	return "", false
}

func nodeOps(n *gofs.Inode) gofs.InodeEmbedder {
	if n == nil {
		return nil
	}
	return n.Operations()
}

// handle turns the kernel's handle fh into the bridge's: this server's
// own, or the one opened for a foreign handle (opening it now if needed).
func (h *handoverFS) handle(cancel <-chan struct{}, hdr *fuse.InHeader, fh uint64, dir bool) (uint64, fuse.Status) {
	if fh&^handleMask == h.gen {
		if local, ok := h.ownHandle(fh); ok {
			return local, fuse.OK
		}
		// Ours but released: the kernel never uses a handle after its
		// RELEASE.
		return 0, fuse.EBADF
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if local, ok := h.foreign[fh]; ok {
		return local, fuse.OK
	}
	in := fuse.OpenIn{InHeader: *hdr, Flags: syscall.O_RDONLY}
	var out fuse.OpenOut
	var st fuse.Status
	if dir {
		st = h.RawFileSystem.OpenDir(cancel, &in, &out)
	} else {
		st = h.RawFileSystem.Open(cancel, &in, &out)
	}
	if !st.Ok() {
		return 0, st
	}
	h.foreign[fh] = out.Fh
	return out.Fh, fuse.OK
}

// release turns fh into the bridge's handle for a RELEASE; false if this
// server never opened anything for it.
func (h *handoverFS) release(fh uint64) (uint64, bool) {
	if fh&^handleMask == h.gen {
		return h.dropOwn(fh)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	local, ok := h.foreign[fh]
	delete(h.foreign, fh)
	return local, ok
}

func (h *handoverFS) Lookup(cancel <-chan struct{}, hdr *fuse.InHeader, name string, out *fuse.EntryOut) fuse.Status {
	if !h.ensure(cancel, hdr, hdr.NodeId) {
		return fuse.Status(syscall.ESTALE)
	}
	st := h.RawFileSystem.Lookup(cancel, hdr, name, out)
	if st.Ok() && out.NodeId != 0 {
		h.known.Store(out.NodeId, true)
		h.mu.Lock()
		h.lookups[out.NodeId]++
		h.mu.Unlock()
	}
	return st
}

// Forget passes on no more than this server's own lookups of the node: the
// kernel's count includes those of previous servers, which the bridge
// never counted.
func (h *handoverFS) Forget(id, n uint64) {
	h.mu.Lock()
	c := h.lookups[id]
	n = min(n, c)
	if c -= n; c == 0 {
		delete(h.lookups, id)
	} else {
		h.lookups[id] = c
	}
	h.mu.Unlock()
	if n > 0 {
		h.RawFileSystem.Forget(id, n)
	}
}

func (h *handoverFS) GetAttr(cancel <-chan struct{}, in *fuse.GetAttrIn, out *fuse.AttrOut) fuse.Status {
	if !h.ensure(cancel, &in.InHeader, in.NodeId) {
		return fuse.Status(syscall.ESTALE)
	}
	if in.Fh_ != 0 {
		if local, ok := h.ownHandle(in.Fh_); ok {
			in.Fh_ = local
		} else {
			// Our attributes do not depend on the open.
			in.Fh_, in.Flags_ = 0, in.Flags_&^fuse.FUSE_GETATTR_FH
		}
	}
	return h.RawFileSystem.GetAttr(cancel, in, out)
}

func (h *handoverFS) Open(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	if !h.ensure(cancel, &in.InHeader, in.NodeId) {
		return fuse.Status(syscall.ESTALE)
	}
	st := h.RawFileSystem.Open(cancel, in, out)
	if st.Ok() {
		out.Fh = h.issue(out.Fh)
	}
	return st
}

func (h *handoverFS) OpenDir(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	if !h.ensure(cancel, &in.InHeader, in.NodeId) {
		return fuse.Status(syscall.ESTALE)
	}
	st := h.RawFileSystem.OpenDir(cancel, in, out)
	if st.Ok() {
		out.Fh = h.issue(out.Fh)
	}
	return st
}

func (h *handoverFS) Read(cancel <-chan struct{}, in *fuse.ReadIn, buf []byte) (fuse.ReadResult, fuse.Status) {
	if !h.ensure(cancel, &in.InHeader, in.NodeId) {
		return nil, fuse.Status(syscall.ESTALE)
	}
	fh, st := h.handle(cancel, &in.InHeader, in.Fh, false)
	if !st.Ok() {
		return nil, st
	}
	in.Fh = fh
	return h.RawFileSystem.Read(cancel, in, buf)
}

func (h *handoverFS) Release(cancel <-chan struct{}, in *fuse.ReleaseIn) {
	if fh, ok := h.release(in.Fh); ok {
		in.Fh = fh
		h.RawFileSystem.Release(cancel, in)
	}
}

func (h *handoverFS) ReadDir(cancel <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	if !h.ensure(cancel, &in.InHeader, in.NodeId) {
		return fuse.Status(syscall.ESTALE)
	}
	fh, st := h.handle(cancel, &in.InHeader, in.Fh, true)
	if !st.Ok() {
		return st
	}
	in.Fh = fh
	return h.RawFileSystem.ReadDir(cancel, in, out)
}

func (h *handoverFS) ReadDirPlus(cancel <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	if !h.ensure(cancel, &in.InHeader, in.NodeId) {
		return fuse.Status(syscall.ESTALE)
	}
	fh, st := h.handle(cancel, &in.InHeader, in.Fh, true)
	if !st.Ok() {
		return st
	}
	in.Fh = fh
	return h.RawFileSystem.ReadDirPlus(cancel, in, out)
}

func (h *handoverFS) ReleaseDir(in *fuse.ReleaseIn) {
	if fh, ok := h.release(in.Fh); ok {
		in.Fh = fh
		h.RawFileSystem.ReleaseDir(in)
	}
}

func (h *handoverFS) Lseek(cancel <-chan struct{}, in *fuse.LseekIn, out *fuse.LseekOut) fuse.Status {
	if !h.ensure(cancel, &in.InHeader, in.NodeId) {
		return fuse.Status(syscall.ESTALE)
	}
	fh, st := h.handle(cancel, &in.InHeader, in.Fh, false)
	if !st.Ok() {
		return st
	}
	in.Fh = fh
	return h.RawFileSystem.Lseek(cancel, in, out)
}

func (h *handoverFS) Flush(cancel <-chan struct{}, in *fuse.FlushIn) fuse.Status {
	local, ok := h.ownHandle(in.Fh)
	if !ok {
		// Nothing is ever written: nothing to flush.
		return fuse.OK
	}
	in.Fh = local
	return h.RawFileSystem.Flush(cancel, in)
}

func (h *handoverFS) Fsync(cancel <-chan struct{}, in *fuse.FsyncIn) fuse.Status {
	local, ok := h.ownHandle(in.Fh)
	if !ok {
		return fuse.OK
	}
	in.Fh = local
	return h.RawFileSystem.Fsync(cancel, in)
}

func (h *handoverFS) FsyncDir(cancel <-chan struct{}, in *fuse.FsyncIn) fuse.Status {
	local, ok := h.ownHandle(in.Fh)
	if !ok {
		return fuse.OK
	}
	in.Fh = local
	return h.RawFileSystem.FsyncDir(cancel, in)
}

func (h *handoverFS) Access(cancel <-chan struct{}, in *fuse.AccessIn) fuse.Status {
	if !h.ensure(cancel, &in.InHeader, in.NodeId) {
		return fuse.Status(syscall.ESTALE)
	}
	return h.RawFileSystem.Access(cancel, in)
}

func (h *handoverFS) StatFs(cancel <-chan struct{}, in *fuse.InHeader, out *fuse.StatfsOut) fuse.Status {
	if !h.ensure(cancel, in, in.NodeId) {
		return fuse.Status(syscall.ESTALE)
	}
	return h.RawFileSystem.StatFs(cancel, in, out)
}

func (h *handoverFS) Statx(cancel <-chan struct{}, in *fuse.StatxIn, out *fuse.StatxOut) fuse.Status {
	if !h.ensure(cancel, &in.InHeader, in.NodeId) {
		return fuse.Status(syscall.ESTALE)
	}
	if local, ok := h.ownHandle(in.Fh); ok {
		in.Fh = local
	} else {
		in.Fh, in.GetattrFlags = 0, in.GetattrFlags&^fuse.FUSE_GETATTR_FH
	}
	return h.RawFileSystem.Statx(cancel, in, out)
}

func (h *handoverFS) SetAttr(cancel <-chan struct{}, in *fuse.SetAttrIn, out *fuse.AttrOut) fuse.Status {
	// Nothing served may be changed (dirNode and fileNode refuse it).
	return fuse.EPERM
}

// handleGeneration picks this server's handle generation: random, so that
// it differs from the previous servers' (a clash is 1 in 2^32 per pair).
func handleGeneration() (uint32, error) {
	var b [4]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			return 0, fmt.Errorf("handle generation: %w", err)
		}
		if g := binary.NativeEndian.Uint32(b[:]); g != 0 {
			return g, nil
		}
	}
}

// ConnEnded tells whether the connection f has ended (aborted, or its mount
// gone): the device then polls with POLLERR. It never reads a request.
func ConnEnded(f *os.File) bool {
	fds := []unix.PollFd{{Fd: int32(f.Fd()), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, 0)
	return err == nil && n == 1 && fds[0].Revents&unix.POLLERR != 0
}
