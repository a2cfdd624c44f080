// sys/block: a directory per disk the host has at the time of asking, each
// with the caller's stat (diskstats.go).

package provider

import (
	"context"
	"fmt"
	"os"
	"path"
	"strings"
	"syscall"
	"time"

	"github.com/cgprocfs/cgprocfs/cgroupview"
	"github.com/cgprocfs/cgprocfs/fs"
)

// blockTree is the fs.DirSource of sys/block: DISK/stat for every disk in
// the host's /sys/block when asked, so a disk attached after the start
// gets its file and one removed loses it. It holds nothing: a lookup is one
// lstat of the host's entry, a listing one read of the host's directory.
type blockTree struct{ p *Provider }

var _ fs.DirSource = blockTree{}

func (t blockTree) dir() string { return path.Join(t.p.cfg.SysRoot, "block") }

// split gives the disk of rel and what under it rel names ("" or "stat");
// ok is false for anything else.
func splitBlock(rel string) (disk, file string, ok bool) {
	disk, file, _ = strings.Cut(rel, "/")
	if disk == "" || (file != "" && file != "stat") {
		return "", "", false
	}
	return disk, file, true
}

// blockNameTimeout is how long the kernel keeps a disk's name: a disk
// removed is gone from paths within it (its stat fails with ENOENT at
// once, and listings never show it); one added is there at once, since a
// missing name is never kept. Asking at every walk instead halved the
// reads/s of 8 readers opening sys/block/DISK/stat by its path (make bench).
const blockNameTimeout = 500 * time.Millisecond

// EntryTimeout: a disk's name for blockNameTimeout; its stat below is the
// same path while the disk is there. A container reads its bind of
// DISK/stat without walking at all.
func (t blockTree) EntryTimeout(rel string) time.Duration {
	if strings.Contains(rel, "/") {
		return time.Hour
	}
	return blockNameTimeout
}

func (t blockTree) Stat(ctx context.Context, pid uint32, rel string) (uint32, error) {
	disk, file, ok := splitBlock(rel)
	if !ok {
		return 0, os.ErrNotExist
	}
	p := path.Join(t.dir(), disk)
	if file != "" {
		p += "/dev" // the stat is rendered from the disk's number
	}
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		return 0, &os.PathError{Op: "stat", Path: p, Err: err}
	}
	if file != "" {
		return syscall.S_IFREG | 0o444, nil
	}
	return syscall.S_IFDIR | 0o555, nil
}

func (t blockTree) List(ctx context.Context, pid uint32, rel string) ([]fs.DirEntry, error) {
	if rel != "" {
		if _, err := t.Stat(ctx, pid, rel); err != nil {
			return nil, err
		}
		return []fs.DirEntry{{Name: "stat", Mode: syscall.S_IFREG | 0o444}}, nil
	}
	entries, err := os.ReadDir(t.dir())
	if err != nil {
		return nil, err
	}
	out := make([]fs.DirEntry, 0, len(entries))
	for _, e := range entries {
		out = append(out, fs.DirEntry{Name: e.Name(), Mode: syscall.S_IFDIR | 0o555})
	}
	return out, nil
}

func (t blockTree) Content(ctx context.Context, pid uint32, rel string) ([]byte, error) {
	disk, file, ok := splitBlock(rel)
	if !ok || file != "stat" {
		return nil, os.ErrNotExist
	}
	b, err := t.p.sysFile("block/" + disk + "/dev")
	if err != nil {
		return nil, err
	}
	dev, err := cgroupview.ParseDev(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("%s/%s/dev: %w", t.dir(), disk, err)
	}
	return t.p.blockStat(ctx, pid, disk, diskDev(dev))
}

func (t blockTree) Readlink(ctx context.Context, pid uint32, rel string) (string, error) {
	return "", os.ErrNotExist
}
