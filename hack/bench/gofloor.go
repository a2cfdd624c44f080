package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	cgfs "github.com/cgprocfs/cgprocfs/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// The Go floors serve fixed bytes from a process of their own, as the C
// floor does, so that their CPU time is read as the daemons' is:
//   - the tree floor is cgprocfs's own FUSE tree (fs.Mount, go-fuse's fs
//     bridge under cgprocfs's handover layer) at cgprocfs's paths: what
//     cgprocfs's serving path costs before any content is built;
//   - the raw floor is go-fuse's raw API with nothing above it, files
//     0, 1, ... in its root as in the C floor: what any daemon built on
//     go-fuse pays, however it builds its tree.
const (
	serveFloorFlag = "-serve-floor"
	floorTree      = "tree"
	floorRaw       = "raw"
)

// startGoFloor starts this binary as a Go floor of the given kind at
// mountpoint mp, serving paths[i] with contents[i] (the raw floor names
// them 0, 1, ...), and waits until it serves the first.
func startGoFloor(e *env, name, kind string, paths []string, contents [][]byte) (*daemon, error) {
	dir := filepath.Join(e.tmp, name+"-src")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	mp := filepath.Join(e.tmp, name)
	args := []string{serveFloorFlag, kind, mp}
	for i, c := range contents {
		f := filepath.Join(dir, strconv.Itoa(i))
		if err := os.WriteFile(f, c, 0o644); err != nil {
			return nil, err
		}
		p := strconv.Itoa(i)
		if kind == floorTree {
			p = paths[i]
		}
		args = append(args, p+"="+f)
	}
	ready := "0"
	if kind == floorTree {
		ready = paths[0]
	}
	return e.startDaemonReady(name, mp, ready, self, args...)
}

// serveFloorMain is the Go floor process: "-serve-floor KIND MOUNTPOINT
// PATH=FILE...". It serves until SIGTERM.
func serveFloorMain(args []string) int {
	if len(args) < 3 {
		fmt.Fprintln(os.Stderr, "bench -serve-floor: want KIND MOUNTPOINT PATH=FILE...")
		return 2
	}
	kind, mp := args[0], args[1]
	// One P and one reader, as cgprocfs's --gomaxprocs default
	// (mount.go, fs.Options.Readers say why), so that the floors are the
	// best go-fuse reaches here.
	runtime.GOMAXPROCS(1)
	var paths []string
	var contents [][]byte
	for _, a := range args[2:] {
		p, f, ok := strings.Cut(a, "=")
		if !ok {
			fmt.Fprintf(os.Stderr, "bench -serve-floor: %q is not PATH=FILE\n", a)
			return 2
		}
		data, err := os.ReadFile(f)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench -serve-floor:", err)
			return 1
		}
		paths = append(paths, p)
		contents = append(contents, data)
	}
	var server *fuse.Server
	var err error
	switch kind {
	case floorTree:
		var files []cgfs.File
		for i, p := range paths {
			data := contents[i]
			files = append(files, cgfs.File{Path: p, Content: func(context.Context, uint32) ([]byte, error) { return data, nil }})
		}
		server, err = cgfs.Mount(mp, files, cgfs.Options{Readers: 1})
	case floorRaw:
		server, err = mountRawFloor(mp, contents)
	default:
		err = fmt.Errorf("no floor %q (have %s, %s)", kind, floorTree, floorRaw)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench -serve-floor:", err)
		return 1
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	go func() {
		<-sig
		if server.Unmount() != nil {
			syscall.Unmount(mp, syscall.MNT_DETACH)
		}
	}()
	server.Wait()
	return 0
}

// rawFloor is a go-fuse RawFileSystem doing what floor.c does: inode 1 is
// the root, file i is inode i+2, size 0, opened with direct_io and noflush,
// names and attributes cached for an hour.
type rawFloor struct {
	fuse.RawFileSystem
	files [][]byte
}

func mountRawFloor(mp string, contents [][]byte) (*fuse.Server, error) {
	// The mount options cgprocfs's tree uses (fs/tree.go), so that only
	// the layers above go-fuse differ.
	server, err := fuse.NewServer(&rawFloor{RawFileSystem: fuse.NewDefaultRawFileSystem(), files: contents}, mp, &fuse.MountOptions{
		AllowOther:        true,
		Name:              "gofloor",
		DirectMountStrict: true,
		DisableXAttrs:     true,
		Options:           []string{"ro"},
		MaxReadAhead:      128 << 10,
		DisableSplice:     true,
		MaxReaders:        1,
	})
	if err != nil {
		return nil, err
	}
	go server.Serve()
	if err := server.WaitMount(); err != nil {
		server.Unmount()
		return nil, err
	}
	return server, nil
}

func (r *rawFloor) file(node uint64) ([]byte, bool) {
	if node < 2 || node-2 >= uint64(len(r.files)) {
		return nil, false
	}
	return r.files[node-2], true
}

func (r *rawFloor) attr(node uint64, a *fuse.Attr) {
	a.Ino = node
	if node == fuse.FUSE_ROOT_ID {
		a.Mode, a.Nlink = syscall.S_IFDIR|0o555, 2
	} else {
		a.Mode, a.Nlink = syscall.S_IFREG|0o444, 1
	}
}

func (r *rawFloor) Lookup(_ <-chan struct{}, h *fuse.InHeader, name string, out *fuse.EntryOut) fuse.Status {
	i, err := strconv.Atoi(name)
	if h.NodeId != fuse.FUSE_ROOT_ID || err != nil || i < 0 || i >= len(r.files) {
		return fuse.ENOENT
	}
	out.NodeId = uint64(i) + 2
	r.attr(out.NodeId, &out.Attr)
	out.SetEntryTimeout(time.Hour)
	out.SetAttrTimeout(time.Hour)
	return fuse.OK
}

func (r *rawFloor) GetAttr(_ <-chan struct{}, in *fuse.GetAttrIn, out *fuse.AttrOut) fuse.Status {
	if _, ok := r.file(in.NodeId); !ok && in.NodeId != fuse.FUSE_ROOT_ID {
		return fuse.ENOENT
	}
	r.attr(in.NodeId, &out.Attr)
	out.SetTimeout(time.Hour)
	return fuse.OK
}

func (r *rawFloor) Open(_ <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	if _, ok := r.file(in.NodeId); !ok {
		return fuse.Status(syscall.EISDIR)
	}
	if in.Flags&syscall.O_ACCMODE != syscall.O_RDONLY {
		return fuse.EACCES
	}
	out.OpenFlags = fuse.FOPEN_DIRECT_IO | fuse.FOPEN_NOFLUSH
	return fuse.OK
}

func (r *rawFloor) Read(_ <-chan struct{}, in *fuse.ReadIn, _ []byte) (fuse.ReadResult, fuse.Status) {
	data, ok := r.file(in.NodeId)
	if !ok {
		return nil, fuse.Status(syscall.EISDIR)
	}
	if in.Offset >= uint64(len(data)) {
		return fuse.ReadResultData(nil), fuse.OK
	}
	end := min(in.Offset+uint64(in.Size), uint64(len(data)))
	return fuse.ReadResultData(data[in.Offset:end]), fuse.OK
}

func (r *rawFloor) Release(<-chan struct{}, *fuse.ReleaseIn) {}

func (r *rawFloor) OpenDir(_ <-chan struct{}, in *fuse.OpenIn, _ *fuse.OpenOut) fuse.Status {
	if in.NodeId != fuse.FUSE_ROOT_ID {
		return fuse.ENOTDIR
	}
	return fuse.OK
}
