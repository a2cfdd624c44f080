package cgroupview

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// ErrNoPressure is returned when no cgroup file tells the cgroup's pressure
// stall information: a v1 host without a cgroup2 tree, a process at that
// tree's root, or PSI turned off (psi=0, or cgroup.pressure 0 on 6.5+).
var ErrNoPressure = errors.New("no per-cgroup pressure file")

// PressureResource is what a pressure file is about: "cpu", "memory" or
// "io", the names of /proc/pressure's files and of the cgroup's
// <name>.pressure.
type PressureResource string

// Pressure reads the cgroup's <res>.pressure file. The kernel tracks
// pressure on the cgroup2 tree whatever controllers it has, so on a v1
// (hybrid) host it is read from the cgroup2 tree mounted beside the v1
// controllers (unified/ under the root), where the process's "0::" line of
// /proc/<pid>/cgroup places it. The content is the kernel's, parsed by the
// caller.
func (r reader) Pressure(c *Cgroup, res PressureResource) ([]byte, error) {
	base, ok := r.h.Root, true
	if r.h.Mode == Legacy {
		base, ok = r.h.dirs["unified"]
	}
	if !ok || c.v2 == "" || c.v2 == "/" {
		return nil, ErrNoPressure
	}
	data, err := r.readFile(filepath.Join(base, c.v2, string(res)+".pressure"))
	// A hidden file (cgroup.pressure 0), or psi=0 (the files answer
	// EOPNOTSUPP on kernels that still show them).
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.EOPNOTSUPP) {
		return nil, ErrNoPressure
	}
	if err != nil {
		return nil, fmt.Errorf("%s pressure: %w", res, err)
	}
	return data, nil
}
