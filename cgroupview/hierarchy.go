package cgroupview

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Mode is the cgroup layout found under the cgroup root.
type Mode int

const (
	// Legacy is cgroup v1: one directory per controller (memory/, cpu/, ...),
	// also when a hybrid system mounts an unused v2 tree at unified/.
	Legacy Mode = 1
	// Unified is cgroup v2: one tree with cgroup.controllers at its root.
	Unified Mode = 2
)

func (m Mode) String() string {
	switch m {
	case Legacy:
		return "v1"
	case Unified:
		return "v2"
	}
	return "unknown"
}

// Sentinel errors; callers match them with errors.Is.
var (
	ErrNoHierarchy = errors.New("no cgroup hierarchy found")
	ErrCallerGone  = errors.New("caller process is gone")
	ErrNoCgroup    = errors.New("process has no cgroup for this controller")
)

// Hierarchy is a cgroup root directory and the layout found there. The root
// is a flag so that fixture trees can be served in tests; nothing here
// assumes /sys/fs/cgroup.
type Hierarchy struct {
	Root string
	Mode Mode
	// dirs maps a v1 controller name to its directory under Root, resolving
	// co-mounts such as "cpu,cpuacct".
	dirs map[string]string
}

// v1Controllers are the v1 controllers cgprocfs reads.
var v1Controllers = []string{"memory", "cpu", "cpuacct", "cpuset", "blkio"}

// Detect finds the cgroup layout under root by looking at it rather than at
// the filesystem type, so that fixture trees on any filesystem work. Detection
// is by layout: containerd/cgroups' Mode() is fixed to /sys/fs/cgroup.
func Detect(root string) (*Hierarchy, error) {
	h := &Hierarchy{Root: root, dirs: map[string]string{}}
	if fileExists(filepath.Join(root, "cgroup.controllers")) {
		h.Mode = Unified
		return h, nil
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("%w at %s: %v", ErrNoHierarchy, root, err)
	}
	for _, e := range entries {
		// Co-mounted controllers appear as "cpu,cpuacct" plus symlinks.
		for _, c := range strings.Split(e.Name(), ",") {
			if _, seen := h.dirs[c]; !seen || e.IsDir() {
				h.dirs[c] = filepath.Join(root, e.Name())
			}
		}
	}
	if _, ok := h.dirs["memory"]; !ok {
		return nil, fmt.Errorf("%w at %s: neither cgroup.controllers (v2) nor a memory/ controller directory (v1)", ErrNoHierarchy, root)
	}
	h.Mode = Legacy
	return h, nil
}

// controllerDir is the directory of a v1 controller's hierarchy, or Root on v2.
func (h *Hierarchy) controllerDir(controller string) (string, bool) {
	if h.Mode == Unified {
		return h.Root, true
	}
	d, ok := h.dirs[controller]
	return d, ok
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// RootDir is the root directory of the hierarchy that holds r.
func (h *Hierarchy) RootDir(r Resource) (string, bool) { return h.controllerDir(r.controller()) }
