package cgroupview

import (
	"errors"
	"os"
	"path/filepath"
)

// ErrNoMemoryController is returned for a v2 cgroup that has no memory
// controller, nor has any ancestor below the root: no parent enables
// "memory" in its cgroup.subtree_control. The kernel charges its memory to
// the root, so the host's figures apply.
var ErrNoMemoryController = errors.New("memory controller not enabled for this cgroup or an ancestor below the root")

// readMemoryV2Nearest reads the memory state for a v2 cgroup without the
// memory controller (its parent does not enable "memory" in
// cgroup.subtree_control, so it has no memory.* files): the kernel charges
// its pages to, and limits them by, the nearest ancestor that has the
// controller, so that ancestor's files stand for it. dirs are the cgroup's
// Ancestors. Only such a cgroup pays for this walk, once its own
// memory.current was found missing.
func (r v2Reader) memoryNearest(c *Cgroup, dirs []string, vm *VMCounters) (Memory, error) {
	if len(dirs) < 2 {
		return Memory{}, ErrNoMemoryController
	}
	for _, d := range dirs[1 : len(dirs)-1] { // not the root: no memory.current
		if _, err := os.Stat(d + "/memory.current"); err != nil {
			continue
		}
		rel, err := filepath.Rel(c.h.Root, d)
		if err != nil {
			return Memory{}, err
		}
		return r.memory(NewCgroup(c.h, "/"+filepath.ToSlash(rel)), vm)
	}
	return Memory{}, ErrNoMemoryController
}
