package fs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"strings"
	"sync"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// SourceName is the source a cgprocfs mount at mountpoint shows in
// mountinfo, and so do the binds of its files in containers.
func SourceName(mountpoint string) string { return "cgprocfs:" + mountpoint }

// FSType is the "fuse.<name>" type the mount shows in /proc/mounts.
const FSType = "fuse.cgprocfs"

// ContentFunc builds a file's content for the thread pid that opens it.
type ContentFunc func(ctx context.Context, pid uint32) ([]byte, error)

// File is one file of the tree, at a slash-separated path under the mount
// point such as "proc/meminfo".
type File struct {
	Path    string
	Content ContentFunc
	// Dir, instead of Content, makes Path a directory whose entries the
	// source gives per caller (sourcedir.go).
	Dir DirSource
	// Whole makes a Dir bound into containers as one directory: it shows
	// WholeDirPerm and ServedFiles lists it, not its files.
	Whole bool
}

// ErrorErrno lets a ContentFunc choose the errno its error gives the reader;
// other errors give EIO.
type ErrorErrno interface{ Errno() syscall.Errno }

// Options configure Mount.
type Options struct {
	Logger *slog.Logger
	// Debug logs every FUSE request.
	Debug bool
	// RequestTimeout is how long the kernel waits for an answer to any
	// request before it aborts the connection (Linux 6.14 and later; older
	// kernels wait forever): a hung daemon then fails its readers with
	// ECONNABORTED and ENOTCONN rather than blocking them for good. Whole
	// seconds, rounded up; the kernel checks about every 15 s, so the abort
	// comes up to 15 s later, and not before 15 s. 0 means
	// DefaultRequestTimeout; a negative value, none.
	RequestTimeout time.Duration
	// MaxOpenPerOwner and MaxBytesPerOwner cap what one container (the
	// owner a ContentFunc names with SetOwner) may hold open: files, and
	// bytes of their snapshots. Past a cap its opens fail with EMFILE. 0
	// means DefaultMaxOpenPerOwner and DefaultMaxBytesPerOwner; a negative
	// value, no cap.
	MaxOpenPerOwner  int
	MaxBytesPerOwner int64
	// Observer is told about every request, for metrics; nil: none.
	Observer Observer
	// Readers caps the goroutines that read FUSE requests (go-fuse's
	// MaxReaders); 0 leaves go-fuse's pool (GOMAXPROCS, at least 2). With
	// 1, one goroutine reads each request and answers it before it reads
	// the next: with one P (cgprocfs mount --gomaxprocs) a second reader
	// blocked in read(2) made the first's next request wait for the Go
	// runtime to hand the P over, 20 to 100 ms at a time when the CPUs
	// were busy. No handler here waits on another request.
	Readers int
	// IOUring asks the kernel for FUSE over io_uring (go-fuse's
	// MountOptions.IOUring): each request is then answered on its
	// caller's CPU, by a thread pinned there. The kernel has no way to
	// hand a request sent over io_uring to another server, so a
	// connection with it cannot be adopted (Adopt).
	IOUring bool
	// Adopt, if set, serves this live connection (mounted at mountpoint
	// by a previous server, whose node ids and handles the kernel keeps)
	// instead of mounting anew (handover.go).
	Adopt *Conn
}

// Mount mounts the files at mountpoint and serves them until the returned
// server is unmounted.
func Mount(mountpoint string, files []File, o Options) (*fuse.Server, error) {
	if o.Adopt != nil && o.IOUring {
		return nil, errors.New("a connection served over io_uring cannot be adopted")
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	now := time.Now()
	root := &dirNode{mtime: now}
	obs := o.Observer
	if obs == nil {
		obs = nopObserver{}
	}
	lim := newLimiter(o.MaxOpenPerOwner, o.MaxBytesPerOwner, log)
	lim.refused = obs.OpenRefused
	errs := newErrorLog(log, errorLogEvery)
	// No default timeouts: go-fuse would put them over a node's 0, and
	// the entries of a directory that differs per caller must have 0
	// (sourcedir.go). The static tree sets staticTimeout itself.
	opts := &gofs.Options{
		// Node ids are fixed per path (NodeID, sourceTree.ino), so
		// that a next server finds the ones the kernel keeps.
		ExternalNodeID: true,
		MountOptions: fuse.MountOptions{
			AllowOther: true,
			Name:       "cgprocfs",
			// The source names the mount point, so that a new daemon
			// re-attaches only the binds of a previous one at the same
			// mount point (SourceName).
			FsName: SourceName(mountpoint),
			// Mount and unmount with the syscalls (the daemon is
			// root); no fusermount fallback that could hide errors.
			DirectMountStrict: true,
			DisableXAttrs:     true,
			Debug:             o.Debug,
			// Nothing served takes writes: with a read-only mount the
			// kernel refuses every write open (O_TRUNC included),
			// chmod and the like with EROFS before asking the daemon.
			Options: []string{"ro"},
			// Reads with direct I/O arrive in chunks of at most this.
			MaxReadAhead: 128 << 10,
			// Every read is answered from bytes in memory, never from
			// a file descriptor, so there is nothing to splice; left
			// on, go-fuse still takes a pipe, writes each READ reply's
			// header into it and drains it before it falls back to
			// writev (about a tenth of the daemon's CPU time under
			// make bench).
			DisableSplice: true,
			MaxReaders:    o.Readers,
			IOUring:       o.IOUring,
		},
		OnAdd: func(ctx context.Context) {
			for _, f := range files {
				addFile(ctx, root, f, now, lim, errs, obs.File(f.Path))
			}
		},
	}
	for _, f := range files {
		if f.Path == "" || strings.HasPrefix(f.Path, "/") || path.Clean(f.Path) != f.Path {
			return nil, fmt.Errorf("bad file path %q", f.Path)
		}
	}
	if err := checkNodeIDs(files); err != nil {
		return nil, err
	}
	gen, err := handleGeneration()
	if err != nil {
		return nil, err
	}
	raw := directReadsOnly{newHandoverFS(gofs.NewNodeFS(root, opts), &root.Inode, gen)}
	var server *fuse.Server
	if o.Adopt != nil {
		// No INIT: the connection's request timeout is the one its
		// first server got.
		mo := opts.MountOptions
		mo.AdoptInit = &o.Adopt.Init
		// Never a mount of /dev/fd/N (the fd's target, /dev/fuse).
		mo.DirectMount, mo.DirectMountStrict = false, false
		server, err = fuse.NewServer(raw, fmt.Sprintf("/dev/fd/%d", o.Adopt.File.Fd()), &mo)
	} else {
		// The kernel answers FUSE_INIT inside fuse.NewServer, so the
		// request timeout in force then is the connection's.
		err = withRequestTimeout(timeoutSeconds(o.RequestTimeout), defaultTimeoutSysctl, log, func() error {
			var err error
			server, err = fuse.NewServer(raw, mountpoint, &opts.MountOptions)
			return err
		})
	}
	if err != nil {
		return nil, fmt.Errorf("starting the FUSE server: %w", err)
	}
	go server.Serve()
	if err := server.WaitMount(); err != nil {
		server.Unmount()
		return nil, fmt.Errorf("starting the FUSE server: %w", err)
	}
	if o.IOUring {
		if n := server.WaitIOUring(); n > 0 {
			log.Info("serving over FUSE io_uring", "queues", n)
		} else {
			log.Warn("the kernel did not take FUSE over io_uring; serving through /dev/fuse (Linux 6.14 or later, with the fuse module's enable_uring parameter on)")
		}
	}
	stop := make(chan struct{})
	go func() { server.Wait(); close(stop) }()
	go lim.reclaim(stop)
	go errs.run(stop)
	return server, nil
}

func addFile(ctx context.Context, root *dirNode, f File, mtime time.Time, lim *limiter, errs *errorLog, obs FileObserver) {
	parts := strings.Split(f.Path, "/")
	dir := &root.Inode
	for i, name := range parts[:len(parts)-1] {
		child := dir.GetChild(name)
		if child == nil {
			child = dir.NewPersistentInode(ctx, &dirNode{mtime: mtime}, gofs.StableAttr{Mode: syscall.S_IFDIR, Ino: NodeID(strings.Join(parts[:i+1], "/"))})
			dir.AddChild(name, child, false)
		}
		dir = child
	}
	if f.Dir != nil {
		t := &sourceTree{path: f.Path, src: f.Dir, whole: f.Whole, mtime: mtime, lim: lim, errs: errs, obs: obs}
		dir.AddChild(parts[len(parts)-1], dir.NewPersistentInode(ctx, &sourceDir{t: t}, gofs.StableAttr{Mode: syscall.S_IFDIR, Ino: NodeID(f.Path)}), false)
		return
	}
	node := &fileNode{path: f.Path, content: f.Content, mtime: mtime, lim: lim, errs: errs, obs: obs}
	dir.AddChild(parts[len(parts)-1], dir.NewPersistentInode(ctx, node, gofs.StableAttr{Mode: syscall.S_IFREG, Ino: NodeID(f.Path)}), false)
}

// dirNode is a directory: mode 0555, and every change refused.
type dirNode struct {
	gofs.Inode
	mtime time.Time
}

var (
	_ gofs.NodeGetattrer = (*dirNode)(nil)
	_ gofs.NodeSetattrer = (*dirNode)(nil)
	_ gofs.NodeCreater   = (*dirNode)(nil)
	_ gofs.NodeMkdirer   = (*dirNode)(nil)
	_ gofs.NodeMknoder   = (*dirNode)(nil)
	_ gofs.NodeUnlinker  = (*dirNode)(nil)
	_ gofs.NodeRmdirer   = (*dirNode)(nil)
	_ gofs.NodeRenamer   = (*dirNode)(nil)
	_ gofs.NodeSymlinker = (*dirNode)(nil)
	_ gofs.NodeLinker    = (*dirNode)(nil)
)

func (d *dirNode) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFDIR | 0o555
	out.Nlink = 2
	setTimes(&out.Attr, d.mtime)
	out.SetTimeout(staticTimeout)
	return 0
}

func (d *dirNode) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return syscall.EPERM
}

func (d *dirNode) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	return nil, nil, 0, syscall.EROFS
}

func (d *dirNode) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}

func (d *dirNode) Mknod(ctx context.Context, name string, mode uint32, dev uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}

func (d *dirNode) Unlink(ctx context.Context, name string) syscall.Errno { return syscall.EROFS }

func (d *dirNode) Rmdir(ctx context.Context, name string) syscall.Errno { return syscall.EROFS }

func (d *dirNode) Rename(ctx context.Context, name string, newParent gofs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	return syscall.EROFS
}

func (d *dirNode) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}

func (d *dirNode) Link(ctx context.Context, target gofs.InodeEmbedder, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}

// fileNode is a file whose content is built for each open.
type fileNode struct {
	gofs.Inode
	path    string
	content ContentFunc
	mtime   time.Time
	lim     *limiter
	errs    *errorLog
	obs     FileObserver
}

var (
	_ gofs.NodeGetattrer = (*fileNode)(nil)
	_ gofs.NodeSetattrer = (*fileNode)(nil)
	_ gofs.NodeOpener    = (*fileNode)(nil)
)

var (
	_ gofs.FileReader   = (*snapshot)(nil)
	_ gofs.FileReleaser = (*snapshot)(nil)
)

func (f *fileNode) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	// Size 0 as in /proc: direct I/O makes read(2) read until EOF whatever
	// the size says. The size is one per inode for all its readers, so any
	// other value would lie to most of them: tail and less seek from it,
	// mmap(st_size) would map it, and after a page cache read the kernel
	// shrinks it to that reader's length, silently truncating the next
	// reader's splice. On kernels 6.5 and later splice and sendfile of a
	// FOPEN_DIRECT_IO file go through the page cache and stop at this size
	// (README, "Read paths").
	out.Mode = syscall.S_IFREG | 0o444
	out.Nlink = 1
	setTimes(&out.Attr, f.mtime)
	out.SetTimeout(staticTimeout)
	return 0
}

func (f *fileNode) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return syscall.EPERM
}

func (f *fileNode) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	// The read-only mount makes the kernel refuse these with EROFS before
	// they get here; this keeps the answer if it ever asks.
	if flags&syscall.O_ACCMODE != syscall.O_RDONLY || flags&syscall.O_TRUNC != 0 {
		return nil, 0, syscall.EACCES
	}
	start := time.Now()
	f.obs.Begin()
	data, owner, errno := f.build(ctx)
	if errno == 0 {
		errno = f.lim.acquire(owner, len(data))
	}
	f.obs.End(time.Since(start), errno)
	if errno != 0 {
		return nil, 0, errno
	}
	// NOFLUSH: nothing is ever written, so close(2) need not wait for a
	// FLUSH round trip to the daemon (kernels before 5.16 ignore it).
	return &snapshot{data: data, node: f, owner: owner}, fuse.FOPEN_DIRECT_IO | fuse.FOPEN_NOFLUSH, 0
}

// snapshot is the content of one open; its reads are served from it until
// the reader comes back to offset 0. top, vmstat and free -s keep /proc/stat
// and /proc/meminfo open and lseek to 0 before each refresh, which /proc
// answers with fresh content; so does a read at offset 0 after the first,
// built for the thread that reads.
type snapshot struct {
	node *fileNode
	// owner is the container the open is charged to.
	owner string
	mu    sync.Mutex
	data  []byte
	// read is set by the first read at offset 0.
	read bool
}

func (s *snapshot) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if off < 0 {
		return nil, syscall.EINVAL
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if off == 0 {
		if s.read {
			if errno := s.rebuild(ctx); errno != 0 {
				return nil, errno
			}
		}
		s.read = true
	}
	if off >= int64(len(s.data)) {
		return fuse.ReadResultData(nil), 0
	}
	end := min(off+int64(len(dest)), int64(len(s.data)))
	return fuse.ReadResultData(s.data[off:end]), 0
}

func (s *snapshot) rebuild(ctx context.Context) syscall.Errno {
	start := time.Now()
	s.node.obs.Begin()
	data, _, errno := s.node.build(ctx)
	s.node.obs.End(time.Since(start), errno)
	if errno == 0 {
		s.node.lim.resize(s.owner, len(s.data), len(data))
		s.data = data
	}
	return errno
}

// Release ends the open: its snapshot no longer counts against its owner.
func (s *snapshot) Release(ctx context.Context) syscall.Errno {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.node.lim.release(s.owner, len(s.data))
	s.data = nil
	return 0
}

// build makes the file's content for the thread that asks, and says whom it
// is charged to (SetOwner). An error that carries an errno (ErrorErrno)
// gives that errno; any other gives EIO.
func (f *fileNode) build(ctx context.Context) ([]byte, string, syscall.Errno) {
	caller, ok := fuse.FromContext(ctx)
	if !ok {
		return nil, "", syscall.EIO
	}
	slot := &ownerSlot{}
	data, err := f.content(context.WithValue(ctx, ownerKey{}, slot), caller.Pid)
	if err != nil {
		var e ErrorErrno
		if errors.As(err, &e) {
			return nil, "", e.Errno()
		}
		f.errs.failed(slot.owner, f.path, caller.Pid, err)
		return nil, "", syscall.EIO
	}
	return data, slot.owner, 0
}

func setTimes(a *fuse.Attr, t time.Time) {
	a.SetTimes(&t, &t, &t)
	a.Owner = fuse.Owner{Uid: 0, Gid: 0}
}
