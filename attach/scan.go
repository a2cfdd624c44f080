package attach

import (
	"fmt"
	"os"
	"slices"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/cgprocfs/cgprocfs/kernelfs"
)

// FSType is the type a cgprocfs mount shows in mountinfo.
const FSType = "fuse.cgprocfs"

// Bind is a cgprocfs file bound into a mount namespace.
type Bind struct {
	// MountPoint is where it is bound, as the namespace's processes see it.
	MountPoint string
	// Root is the file in the cgprocfs tree, such as /proc/meminfo.
	Root string
	// Dev is the major:minor of the FUSE connection it belongs to.
	Dev string
	// Source is its mount's source, which names the mount point of the
	// daemon it came from (fs.SourceName).
	Source string
}

// Namespace is a mount namespace holding cgprocfs binds.
type Namespace struct {
	// Inode identifies the namespace.
	Inode uint64
	// Pid is a process in it, through which it is read and entered.
	Pid   int
	Binds []Bind
}

// Scan visits every mount namespace but this process's once and lists the
// cgprocfs binds in each; namespaces without any are left out. A process
// that exits meanwhile is skipped.
func Scan(kfs *kernelfs.FS) ([]Namespace, error) {
	self, err := mountNS(os.Getpid())
	if err != nil {
		return nil, fmt.Errorf("own mount namespace: %w", err)
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	// In numeric order, so that a namespace is entered through its oldest
	// process (a container's init), not one that exits at once: ReadDir
	// sorts by name, and "1036", a shell loop's short-lived child, comes
	// before "852", its shell.
	var pids []int
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	slices.Sort(pids)
	seen := map[uint64]bool{self: true}
	var out []Namespace
	for _, pid := range pids {
		ns, err := mountNS(pid)
		if err != nil || seen[ns] {
			continue
		}
		seen[ns] = true
		binds, err := BindsOf(kfs, pid)
		if err != nil || len(binds) == 0 {
			continue
		}
		out = append(out, Namespace{Inode: ns, Pid: pid, Binds: binds})
	}
	return out, nil
}

// BindsOf lists the cgprocfs mounts in pid's mount namespace.
func BindsOf(kfs *kernelfs.FS, pid int) ([]Bind, error) {
	mounts, err := kfs.Mounts(pid)
	if err != nil {
		return nil, err
	}
	var out []Bind
	for _, m := range mounts {
		if m.FSType == FSType {
			out = append(out, Bind{MountPoint: m.MountPoint, Root: m.Root, Dev: m.Dev, Source: m.Source})
		}
	}
	return out, nil
}

// mountNS is the inode of pid's mount namespace.
func mountNS(pid int) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat("/proc/"+strconv.Itoa(pid)+"/ns/mnt", &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

// devOf is the major:minor of the filesystem at path, as mountinfo writes it.
func devOf(path string) (string, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return "", err
	}
	return fmt.Sprintf("%d:%d", unix.Major(st.Dev), unix.Minor(st.Dev)), nil
}

// CountBinding counts the mount namespaces other than this process's that
// hold binds of files of the live mount at mountpoint. A copy of the whole
// mount (a namespace made after it, or one it propagated into) is no
// container's bind and does not count.
func CountBinding(kfs *kernelfs.FS, mountpoint string) (int, error) {
	live, err := devOf(mountpoint)
	if err != nil {
		return 0, err
	}
	nss, err := Scan(kfs)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, ns := range nss {
		for _, b := range ns.Binds {
			if b.Dev == live && b.Root != "/" {
				n++
				break
			}
		}
	}
	return n, nil
}
