package fs

import (
	"fmt"

	"github.com/prometheus/procfs"

	"github.com/cgprocfs/cgprocfs/kernelfs"
)

// mountedAt tells whether a cgprocfs filesystem is mounted at mountpoint, an
// absolute path, in the mount namespace whose mountinfo procRoot's
// self/mountinfo holds ("/proc" for this process's own).
func mountedAt(procRoot, mountpoint string) (bool, error) {
	proc, err := procfs.NewFS(procRoot)
	if err != nil {
		return false, fmt.Errorf("reading mounts: %w", err)
	}
	mounts, err := proc.GetMounts()
	if err != nil {
		return false, fmt.Errorf("reading mounts: %w", err)
	}
	for _, m := range mounts {
		if m.FSType == FSType && kernelfs.UnescapeMountinfo(m.MountPoint) == mountpoint {
			return true, nil
		}
	}
	return false, nil
}
