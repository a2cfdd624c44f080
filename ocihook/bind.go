package ocihook

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Rootfs is a container's root filesystem, opened so that paths are
// resolved inside it as the container will see them.
type Rootfs struct {
	path string
	fd   int
}

// OpenRootfs opens the root filesystem at path, a directory.
func OpenRootfs(path string) (*Rootfs, error) {
	fd, err := unix.Open(path, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening the container's rootfs %s: %w", path, err)
	}
	return &Rootfs{path: path, fd: fd}, nil
}

// Close closes the rootfs.
func (r *Rootfs) Close() error { return unix.Close(r.fd) }

// open resolves rel inside the rootfs, following symlinks as if the rootfs
// were / (sys/block/sda is a symlink into sys/devices), so that an image's
// symlink cannot point a bind at a host path; the last component itself is
// not followed. It returns an O_PATH descriptor.
func (r *Rootfs) open(rel string) (int, error) {
	how := &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	}
	for range 4 {
		fd, err := unix.Openat2(r.fd, rel, how)
		switch {
		case errors.Is(err, unix.EAGAIN):
			// A rename raced with the lookup: the kernel asks to
			// try again.
			continue
		case errors.Is(err, unix.ENOSYS):
			// No openat2 (kernels before 5.6): the plain path. Before
			// pivot_root a symlink could then reach outside the
			// rootfs, but only into this mount namespace, which the
			// runtime drops when it pivots.
			return unix.Open(filepath.Join(r.path, rel), unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		}
		return fd, err
	}
	return -1, fmt.Errorf("resolving %s in %s: %w", rel, r.path, unix.EAGAIN)
}

// Targets says which of the served files (paths relative to the mount
// point) have a regular file at the same path in the rootfs to bind over,
// and which of the directories served whole (a trailing slash, as
// fs.ServedFiles lists them) a directory. A path missing in the rootfs is
// left out silently: a container without /sys mounted has no sys/ files to
// replace. Notes say why other files are left out. Targets keep the
// trailing slash of a directory.
func (r *Rootfs) Targets(served []string) (targets, notes []string) {
	for _, entry := range served {
		rel, dir := strings.CutSuffix(entry, "/")
		want, kind := uint32(unix.S_IFREG), "a regular file"
		if dir {
			want, kind = unix.S_IFDIR, "a directory"
		}
		fd, err := r.open(rel)
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			continue
		}
		if err != nil {
			notes = append(notes, fmt.Sprintf("%s: %v", rel, err))
			continue
		}
		var st unix.Stat_t
		var sfs unix.Statfs_t
		if err := unix.Fstat(fd, &st); err != nil {
			notes = append(notes, fmt.Sprintf("%s: %v", rel, err))
		} else if st.Mode&unix.S_IFMT != want {
			notes = append(notes, fmt.Sprintf("%s: not %s in the rootfs; left alone", rel, kind))
		} else if err := unix.Fstatfs(fd, &sfs); err != nil {
			notes = append(notes, fmt.Sprintf("%s: %v", rel, err))
		} else if sfs.Type == unix.FUSE_SUPER_MAGIC {
			// Bound already (by -v, or an lxcfs): one layer is enough.
			notes = append(notes, fmt.Sprintf("%s: a FUSE file is bound there already; left alone", rel))
		} else {
			targets = append(targets, entry)
		}
		unix.Close(fd)
	}
	return targets, notes
}

// Bind bind-mounts mountpoint/rel over rel in the rootfs, read-only; rel
// is a file, or a directory with a trailing slash. A bind that cannot be
// made read-only is undone.
func (r *Rootfs) Bind(mountpoint, rel string) error {
	rel = strings.TrimSuffix(rel, "/")
	under, err := r.open(rel)
	if err != nil {
		return fmt.Errorf("%s: %w", rel, err)
	}
	defer unix.Close(under)
	source := filepath.Join(mountpoint, rel)
	// Through the descriptor, so the bind lands on the file resolved
	// inside the rootfs, not on whatever the path names by now.
	if err := unix.Mount(source, fdPath(under), "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("binding %s over %s: %w", source, rel, err)
	}
	// A remount takes the bind itself, which the old descriptor is under.
	top, err := r.open(rel)
	if err != nil {
		return fmt.Errorf("%s: bound, but reopening it to make it read-only: %w (the file refuses writes anyway)", rel, err)
	}
	defer unix.Close(top)
	var st unix.Statfs_t
	if err := unix.Fstatfs(top, &st); err != nil {
		return fmt.Errorf("%s: bound, but checking the bind: %w", rel, err)
	}
	if st.Type != unix.FUSE_SUPER_MAGIC {
		return fmt.Errorf("%s: bound, but the path does not lead to the bind (filesystem 0x%x)", rel, st.Type)
	}
	// A remount must keep the flags the kernel locks on a mount (nosuid,
	// nodev, noexec, atime ones) in a user namespace, or it fails.
	flags := uintptr(unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY) | keptFlags(st.Flags)
	if err := unix.Mount("", fdPath(top), "", flags, ""); err != nil {
		if uerr := unix.Unmount(fdPath(top), unix.MNT_DETACH); uerr != nil {
			return fmt.Errorf("%s: making the bind read-only: %w; undoing it: %v", rel, err, uerr)
		}
		return fmt.Errorf("%s: making the bind read-only: %w (bind undone)", rel, err)
	}
	return nil
}

// keptFlags maps statfs flags to the mount flags a bind remount must repeat.
func keptFlags(statfsFlags int64) uintptr {
	var flags uintptr
	for _, f := range []struct {
		st int64
		ms uintptr
	}{
		{unix.ST_NOSUID, unix.MS_NOSUID},
		{unix.ST_NODEV, unix.MS_NODEV},
		{unix.ST_NOEXEC, unix.MS_NOEXEC},
		{unix.ST_NOATIME, unix.MS_NOATIME},
		{unix.ST_NODIRATIME, unix.MS_NODIRATIME},
		{unix.ST_RELATIME, unix.MS_RELATIME},
	} {
		if statfsFlags&f.st != 0 {
			flags |= f.ms
		}
	}
	return flags
}

// fdPath names an open descriptor as a path the mount calls accept.
func fdPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }
