package attach

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	cgfs "github.com/cgprocfs/cgprocfs/fs"
	"github.com/cgprocfs/cgprocfs/kernelfs"
	"github.com/cgprocfs/cgprocfs/nsthread"
)

// Attacher binds the files of the cgprocfs mount at Mountpoint into
// containers.
type Attacher struct {
	Mountpoint string
	FS         *kernelfs.FS
	Log        *slog.Logger
}

// Result counts what one namespace's visit did.
type Result struct {
	Bound, Replaced, Removed int
}

// Reattach replaces, in every namespace of nss, the binds that belong to a
// FUSE connection other than the live mount's but came from a cgprocfs at
// the same mount point (one that died or stopped) with the same file of the
// live mount. A namespace that
// cannot be mended is logged with the reason and the others go on; the
// errors are returned joined.
func (a *Attacher) Reattach(nss []Namespace) (Result, error) {
	live, err := devOf(a.Mountpoint)
	if err != nil {
		return Result{}, fmt.Errorf("live mount %s: %w", a.Mountpoint, err)
	}
	var total Result
	var errs []error
	for _, ns := range nss {
		var stale []Bind
		for _, b := range ns.Binds {
			if b.Dev != live && a.previousInstance(b) {
				stale = append(stale, b)
			}
		}
		if len(stale) == 0 {
			continue
		}
		r, err := a.bind(ns.Pid, stale, true)
		// The process the scan found may have exited since (pids wrap,
		// so the lowest is not always the oldest): enter through the
		// namespace's next one.
		for _, pid := range ns.Others {
			if !errors.Is(err, errProcessGone) {
				break
			}
			ns.Pid = pid
			r, err = a.bind(pid, stale, true)
		}
		total.Replaced += r.Replaced
		if err != nil {
			a.Log.Warn("re-attach failed", "mount-namespace", ns.Inode, "pid", ns.Pid, "err", err)
			errs = append(errs, fmt.Errorf("mount namespace %d (pid %d): %w", ns.Inode, ns.Pid, err))
			continue
		}
		a.Log.Info("re-attached", "mount-namespace", ns.Inode, "pid", ns.Pid, "binds", r.Replaced)
	}
	return total, errors.Join(errs...)
}

// previousInstance tells whether b came from a cgprocfs at this mount point:
// only those are re-attached, never the binds of another daemon serving
// another mount point on the same host. Versions before the source named
// the mount point wrote plain "cgprocfs".
func (a *Attacher) previousInstance(b Bind) bool {
	return b.Source == cgfs.SourceName(a.Mountpoint) || b.Source == "cgprocfs"
}

// Attach binds every file the mount serves over the same path in pid's
// container, where that path exists and is not bound to the live mount
// already; binds of a dead connection are replaced.
func (a *Attacher) Attach(pid int) (Result, error) {
	live, err := devOf(a.Mountpoint)
	if err != nil {
		return Result{}, fmt.Errorf("live mount %s: %w", a.Mountpoint, err)
	}
	have, err := BindsOf(a.FS, pid)
	if err != nil {
		return Result{}, err
	}
	current := map[string]bool{}
	for _, b := range have {
		current[b.MountPoint] = b.Dev == live
		// A file reached through a symlink (sys/block/sda is one) is
		// mounted at the resolved path: a live bind is known by its file
		// in the tree too, or every attach would stack another.
		if b.Dev == live {
			current[b.Root] = true
		}
	}
	served, err := cgfs.ServedFiles(a.Mountpoint)
	if err != nil {
		return Result{}, err
	}
	root := "/proc/" + strconv.Itoa(pid) + "/root"
	var binds []Bind
	for _, f := range served {
		// A directory served whole ends in a slash (fs.ServedFiles).
		name, dir := strings.CutSuffix(f, "/")
		rel := "/" + name
		if current[rel] {
			continue // bound to the live mount already
		}
		st, err := os.Stat(root + rel)
		if err != nil || st.IsDir() != dir {
			continue // the container has no such file, or not of its kind
		}
		binds = append(binds, Bind{MountPoint: rel, Root: rel})
	}
	r, err := a.bind(pid, binds, false)
	for _, b := range binds {
		if _, stale := current[b.MountPoint]; stale {
			r.Replaced++
			r.Bound--
		}
	}
	return r, err
}

// Detach removes every cgprocfs bind in pid's mount namespace, so that its
// processes see the kernel's own files again.
func Detach(kfs *kernelfs.FS, pid int) (Result, error) {
	binds, err := BindsOf(kfs, pid)
	if err != nil {
		return Result{}, err
	}
	var r Result
	err = inMountNS(pid, func() error {
		var errs []error
		for _, b := range binds {
			if err := unix.Unmount(b.MountPoint, unix.MNT_DETACH); err != nil {
				errs = append(errs, fmt.Errorf("unmounting %s: %w", b.MountPoint, err))
				continue
			}
			r.Removed++
		}
		return errors.Join(errs...)
	})
	return r, err
}

// bind clones each bind's file from the live mount on the host side and
// moves the clones into pid's namespace over their mount points. With
// replace, each mount point holds a bind of a dead connection: the new bind
// goes beneath it and the old one is then unmounted, so a reader never sees
// the kernel's own file in between (MOVE_MOUNT_BENEATH, kernel 6.5; before
// that the old bind is unmounted first and the new one moved in right
// after).
func (a *Attacher) bind(pid int, binds []Bind, replace bool) (Result, error) {
	if len(binds) == 0 {
		return Result{}, nil
	}
	trees := make([]int, 0, len(binds))
	defer func() {
		for _, fd := range trees {
			unix.Close(fd)
		}
	}()
	for _, b := range binds {
		fd, err := cloneReadOnly(a.Mountpoint + b.Root)
		if err != nil {
			return Result{}, err
		}
		trees = append(trees, fd)
	}
	var r Result
	err := inMountNS(pid, func() error {
		var errs []error
		for i, b := range binds {
			if err := place(trees[i], b.MountPoint, replace); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", b.MountPoint, err))
				continue
			}
			if replace {
				r.Replaced++
			} else {
				r.Bound++
			}
		}
		return errors.Join(errs...)
	})
	return r, err
}

// cloneReadOnly makes a detached read-only bind of path.
func cloneReadOnly(path string) (int, error) {
	fd, err := unix.OpenTree(unix.AT_FDCWD, path, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("open_tree %s: %w", path, err)
	}
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &attr); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("making the bind of %s read-only: %w", path, err)
	}
	return fd, nil
}

// moveMountBeneath is MOVE_MOUNT_BENEATH (Linux 6.5).
const moveMountBeneath = 0x200

// place moves the detached tree onto target in the current mount
// namespace; with replace, in place of the mount on top of target.
func place(tree int, target string, replace bool) error {
	if !replace {
		return moveMount(tree, target, 0)
	}
	err := moveMount(tree, target, moveMountBeneath)
	if errors.Is(err, unix.EINVAL) {
		// No MOVE_MOUNT_BENEATH: unmount first; a reader in between
		// sees the kernel's own file for a moment.
		if err := unix.Unmount(target, unix.MNT_DETACH); err != nil {
			return fmt.Errorf("unmounting the old bind: %w", err)
		}
		return moveMount(tree, target, 0)
	}
	if err != nil {
		return err
	}
	if err := unix.Unmount(target, unix.MNT_DETACH); err != nil {
		return fmt.Errorf("unmounting the old bind above the new one: %w", err)
	}
	return nil
}

func moveMount(tree int, target string, flags int) error {
	if err := unix.MoveMount(tree, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH|flags); err != nil {
		return fmt.Errorf("move_mount onto %s: %w", target, err)
	}
	return nil
}

// errProcessGone is the error of entering a namespace through a process
// that has exited.
var errProcessGone = errors.New("the process is gone")

// inMountNS runs fn on a new OS thread that entered pid's mount namespace
// and ends with fn (nsthread).
func inMountNS(pid int, fn func() error) error {
	nsfd, err := unix.Open("/proc/"+strconv.Itoa(pid)+"/ns/mnt", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("opening the mount namespace of pid %d: %w (%w)", pid, errProcessGone, err)
	}
	if err != nil {
		return fmt.Errorf("opening the mount namespace of pid %d: %w", pid, err)
	}
	defer unix.Close(nsfd)
	return nsthread.Run(func() error {
		// setns into a mount namespace needs a thread that does not
		// share its filesystem attributes (root, cwd) with others.
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			return fmt.Errorf("unshare(CLONE_FS): %w", err)
		}
		if err := unix.Setns(nsfd, unix.CLONE_NEWNS); err != nil {
			return fmt.Errorf("entering the mount namespace of pid %d: %w", pid, err)
		}
		return nil
	}, fn)
}
