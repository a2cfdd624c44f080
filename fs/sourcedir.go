package fs

import (
	"context"
	"errors"
	"hash/fnv"
	"os"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// A directory whose entries depend on who asks (sys/devices/system/cpu: a
// container sees only its cpuN) or on the host at the time of asking
// (sys/block: disks come and go). Its nodes hold nothing but their path
// under the directory: every answer is rebuilt from the path and the
// caller, so a node can be made again at any time.
//
// The kernel must never answer one caller from another's listing. The
// entries whose existence differs between callers (DirSource.EntryTimeout
// says 0: cpuN) are given with an entry timeout of 0, so that every path walk through
// them asks again (LOOKUP, as the walking process); directory listings are
// never cached by the kernel (no FOPEN_CACHE_DIR); files are opened with
// direct I/O like every other served file. Other entries and every node's
// attributes (a fixed type and mode, size 0) are cached for staticTimeout:
// below a cpuN that the walk has just looked up as its caller, a cached
// name is the same path for everyone, and its content is built per caller
// at each open.

// staticTimeout is the entry and attribute timeout of the static tree:
// everything there is fixed but content, so the kernel may cache names and
// attributes for long.
const staticTimeout = time.Hour

// DirSource answers for a directory File (File.Dir). rel is a
// slash-separated path under the directory, "" for the directory itself.
// An error matching os.ErrNotExist gives ENOENT; one with an errno
// (ErrorErrno, syscall.Errno), that errno; any other, EIO.
type DirSource interface {
	// Stat says what rel is for the caller pid: its type and permission
	// bits (syscall.S_IFDIR|0o755, S_IFREG|0o444, S_IFLNK|0o777).
	Stat(ctx context.Context, pid uint32, rel string) (mode uint32, err error)
	// List lists directory rel for the caller.
	List(ctx context.Context, pid uint32, rel string) ([]DirEntry, error)
	// Content builds regular file rel for the caller, once per open.
	Content(ctx context.Context, pid uint32, rel string) ([]byte, error)
	// Readlink is symbolic link rel's target for the caller.
	Readlink(ctx context.Context, pid uint32, rel string) (string, error)
	// EntryTimeout is how long the kernel may keep rel's name without
	// asking again: 0 when its existence differs between callers (the
	// kernel then asks at every walk, as the walker), short when it
	// changes over time. A missing name is never kept.
	EntryTimeout(rel string) time.Duration
}

// DirEntry is one entry of a DirSource directory: its name and mode (type
// and permission bits).
type DirEntry struct {
	Name string
	Mode uint32
}

// WholeDirPerm is the permission a directory served whole shows, as sysfs
// shows its directories; the static tree's directories show 0555.
// ServedFiles lists such a directory as one entry rather than its files, so
// that a container gets it by one bind (File.Whole).
const WholeDirPerm = 0o755

// sourceDir is a directory of a DirSource tree, the root one included.
type sourceDir struct {
	gofs.Inode
	t   *sourceTree
	rel string
}

// sourceTree is what the nodes of one DirSource directory share.
type sourceTree struct {
	path  string // the directory's path in the tree, "sys/block"
	src   DirSource
	whole bool
	mtime time.Time
	lim   *limiter
	errs  *errorLog
	obs   FileObserver
}

func (t *sourceTree) full(rel string) string {
	if rel == "" {
		return t.path
	}
	return t.path + "/" + rel
}

// errno maps a source's error to what the caller gets; errors that are not
// the caller's doing are logged once per file (errlog.go).
func (t *sourceTree) errno(ctx context.Context, pid uint32, rel string, err error) syscall.Errno {
	var e ErrorErrno
	var no syscall.Errno
	switch {
	case errors.Is(err, os.ErrNotExist):
		return syscall.ENOENT
	case errors.As(err, &e):
		return e.Errno()
	case errors.As(err, &no):
		return no
	}
	t.errs.failed("", t.full(rel), pid, err)
	return syscall.EIO
}

func callerPid(ctx context.Context) (uint32, bool) {
	c, ok := fuse.FromContext(ctx)
	if !ok {
		return 0, false
	}
	return c.Pid, true
}

// ino numbers a node by its path and type, the same in every daemon, so
// that the same path is always the same inode.
func (t *sourceTree) ino(rel string, typ uint32) uint64 {
	h := fnv.New64a()
	h.Write([]byte(t.full(rel)))
	h.Write([]byte{byte(typ >> 12)})
	// Clear of the automatic numbers (from 1<<63) and of small ones.
	return h.Sum64()&(1<<62-1) | 1<<61
}

var (
	_ gofs.NodeGetattrer = (*sourceDir)(nil)
	_ gofs.NodeSetattrer = (*sourceDir)(nil)
	_ gofs.NodeLookuper  = (*sourceDir)(nil)
	_ gofs.NodeReaddirer = (*sourceDir)(nil)
)

func (d *sourceDir) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFDIR | d.t.dirPerm()
	out.Nlink = 2
	setTimes(&out.Attr, d.t.mtime)
	out.SetTimeout(staticTimeout)
	return 0
}

// dirPerm is the permission of every directory of the tree: WholeDirPerm
// in one served whole, so that ServedFiles knows it at its top; 0555, as
// the static tree's, in one that is not.
func (t *sourceTree) dirPerm() uint32 {
	if t.whole {
		return WholeDirPerm
	}
	return 0o555
}

func (d *sourceDir) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return syscall.EPERM
}

func (d *sourceDir) child(name string) string {
	if d.rel == "" {
		return name
	}
	return d.rel + "/" + name
}

func (d *sourceDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	pid, ok := callerPid(ctx)
	if !ok {
		return nil, syscall.EIO
	}
	rel := d.child(name)
	mode, err := d.t.src.Stat(ctx, pid, rel)
	if err != nil {
		return nil, d.t.errno(ctx, pid, rel, err)
	}
	typ := mode & syscall.S_IFMT
	var node gofs.InodeEmbedder
	switch typ {
	case syscall.S_IFDIR:
		node = &sourceDir{t: d.t, rel: rel}
		out.Mode = syscall.S_IFDIR | d.t.dirPerm()
		out.Nlink = 2
	case syscall.S_IFREG:
		// A node of the static kind, whose content is the source's:
		// opens, snapshots, caps and error logs work as for every file.
		t := d.t
		node = &fileNode{
			path: t.full(rel),
			content: func(ctx context.Context, pid uint32) ([]byte, error) {
				data, err := t.src.Content(ctx, pid, rel)
				return data, withErrno(err)
			},
			mtime: t.mtime, lim: t.lim, errs: t.errs, obs: t.obs,
		}
		out.Mode = syscall.S_IFREG | 0o444
		out.Nlink = 1
	case syscall.S_IFLNK:
		node = &sourceLink{t: d.t, rel: rel}
		out.Mode = syscall.S_IFLNK | 0o777
		out.Nlink = 1
	default:
		// Nothing else is served: sockets, devices and pipes would
		// hand the caller the host's.
		return nil, syscall.ENOENT
	}
	setTimes(&out.Attr, d.t.mtime)
	// A timeout of 0: the next walk through this name asks again, as
	// its caller (go-fuse leaves a node's 0 alone when the mount sets
	// no default).
	if t := d.t.src.EntryTimeout(rel); t > 0 {
		out.SetEntryTimeout(t)
	}
	out.SetAttrTimeout(staticTimeout)
	return d.NewInode(ctx, node, gofs.StableAttr{Mode: typ, Ino: d.t.ino(rel, typ)}), 0
}

func (d *sourceDir) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	pid, ok := callerPid(ctx)
	if !ok {
		return nil, syscall.EIO
	}
	entries, err := d.t.src.List(ctx, pid, d.rel)
	if err != nil {
		return nil, d.t.errno(ctx, pid, d.rel, err)
	}
	out := make([]fuse.DirEntry, 0, len(entries))
	for _, e := range entries {
		typ := e.Mode & syscall.S_IFMT
		if typ != syscall.S_IFDIR && typ != syscall.S_IFREG && typ != syscall.S_IFLNK {
			continue
		}
		out = append(out, fuse.DirEntry{Name: e.Name, Mode: typ, Ino: d.t.ino(d.child(e.Name), typ)})
	}
	return gofs.NewListDirStream(out), 0
}

// sourceLink is a symbolic link of a DirSource tree.
type sourceLink struct {
	gofs.Inode
	t   *sourceTree
	rel string
}

var (
	_ gofs.NodeGetattrer  = (*sourceLink)(nil)
	_ gofs.NodeReadlinker = (*sourceLink)(nil)
)

func (l *sourceLink) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFLNK | 0o777
	out.Nlink = 1
	setTimes(&out.Attr, l.t.mtime)
	out.SetTimeout(staticTimeout)
	return 0
}

func (l *sourceLink) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	pid, ok := callerPid(ctx)
	if !ok {
		return nil, syscall.EIO
	}
	target, err := l.t.src.Readlink(ctx, pid, l.rel)
	if err != nil {
		return nil, l.t.errno(ctx, pid, l.rel, err)
	}
	return []byte(target), 0
}

var _ gofs.NodeLookuper = (*dirNode)(nil)

// Lookup finds a child of a static directory, with staticTimeout: the
// mount sets no default timeouts (see Mount).
func (d *dirNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	child := d.GetChild(name)
	if child == nil {
		return nil, syscall.ENOENT
	}
	if ga, ok := child.Operations().(gofs.NodeGetattrer); ok {
		var a fuse.AttrOut
		if errno := ga.Getattr(ctx, nil, &a); errno != 0 {
			return nil, errno
		}
		out.Attr = a.Attr
	}
	out.SetEntryTimeout(staticTimeout)
	out.SetAttrTimeout(staticTimeout)
	return child, 0
}

// errnoError carries the errno a host file's error gave, so that the reader
// gets it (EACCES for a write-only file, ENOENT for one gone) rather than
// EIO.
type errnoError struct {
	err error
	no  syscall.Errno
}

func (e errnoError) Error() string        { return e.err.Error() }
func (e errnoError) Unwrap() error        { return e.err }
func (e errnoError) Errno() syscall.Errno { return e.no }

func withErrno(err error) error {
	var no syscall.Errno
	switch {
	case err == nil:
		return nil
	case errors.Is(err, os.ErrNotExist):
		return errnoError{err, syscall.ENOENT}
	case errors.As(err, &no):
		return errnoError{err, no}
	}
	return err
}
