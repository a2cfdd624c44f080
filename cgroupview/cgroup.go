package cgroupview

import (
	"bytes"
	"fmt"
	"path"
	"path/filepath"
	"strings"
)

// Cgroup is where one process sits in the hierarchy: a path per v1
// controller, or one v2 path. Paths are as /proc/<pid>/cgroup shows them to
// the daemon, i.e. relative to the daemon's cgroup namespace root.
type Cgroup struct {
	h  *Hierarchy
	v2 string
	v1 map[string]string
	// byResource is what every open asks of a Resource, worked out once
	// when the Cgroup is made (it never changes after), since each open
	// needs several and building them cost allocations per open.
	byResource [numResources]resourcePaths
}

// resourcePaths are a Cgroup's directory, ancestors (or why it has none)
// and Key for one Resource.
type resourcePaths struct {
	dir       string
	ancestors []string
	err       error
	key       string
}

// memoize fills byResource; the constructors call it last.
func (c *Cgroup) memoize() *Cgroup {
	for r := range Resource(numResources) {
		ctrl := r.controller()
		rp := &c.byResource[r]
		rp.key = c.keyFor(ctrl)
		rp.ancestors, rp.err = c.walkAncestors(ctrl)
		if rp.err == nil {
			rp.dir = rp.ancestors[0]
		}
	}
	return c
}

// trimInitScope drops a trailing /init.scope: systemd inside a container
// moves its own init there, yet the container is the parent.
func trimInitScope(p string) string {
	if strings.HasSuffix(p, "/init.scope") {
		p = strings.TrimSuffix(p, "/init.scope")
		if p == "" {
			p = "/"
		}
	}
	return p
}

// ParseProcCgroup parses /proc/<pid>/cgroup ("id:controllers:path" lines)
// into a Cgroup on h.
func ParseProcCgroup(h *Hierarchy, data []byte) (*Cgroup, error) {
	c := &Cgroup{h: h, v1: map[string]string{}}
	found := false
	for line := range bytes.SplitSeq(data, []byte{'\n'}) {
		if len(line) == 0 {
			continue
		}
		parts := bytes.SplitN(line, []byte{':'}, 3)
		if len(parts) != 3 || len(parts[2]) == 0 || parts[2][0] != '/' {
			return nil, fmt.Errorf("malformed cgroup line %q", line)
		}
		p := trimInitScope(path.Clean(string(parts[2])))
		if len(parts[0]) == 1 && parts[0][0] == '0' && len(parts[1]) == 0 {
			c.v2 = p
			found = found || h.Mode == Unified
			continue
		}
		for _, ctrl := range strings.Split(string(parts[1]), ",") {
			c.v1[ctrl] = p
			found = found || h.Mode == Legacy
		}
	}
	if !found {
		return nil, fmt.Errorf("%w: no %s entry", ErrNoCgroup, h.Mode)
	}
	return c.memoize(), nil
}

// NewCgroup builds a Cgroup from explicit paths, for tests and for callers
// that know the path already: on v2 the same path serves every controller.
func NewCgroup(h *Hierarchy, p string) *Cgroup {
	c := &Cgroup{h: h, v2: p, v1: map[string]string{}}
	for _, ctrl := range v1Controllers {
		c.v1[ctrl] = p
	}
	return c.memoize()
}

// Resource is what a served file reads of a cgroup. On v1 each is the
// hierarchy of one controller; on v2 they are all the one tree.
type Resource int

const (
	// MemoryResource: memory limits, usage and memory.stat.
	MemoryResource Resource = iota
	// CPUTimeResource: CPU time used, and the threads the CPU and load
	// views count (v1 cpuacct).
	CPUTimeResource
	// CPUQuotaResource: CFS quota and throttling (v1 cpu).
	CPUQuotaResource
	// CPUSetResource: the CPUs the cgroup may use (v1 cpuset).
	CPUSetResource
	// IOResource: per-disk I/O counters (v1 blkio, v2 io).
	IOResource

	numResources
)

// controller is the v1 controller whose hierarchy holds r.
func (r Resource) controller() string {
	switch r {
	case MemoryResource:
		return "memory"
	case CPUTimeResource:
		return "cpuacct"
	case CPUQuotaResource:
		return "cpu"
	case CPUSetResource:
		return "cpuset"
	case IOResource:
		return "blkio"
	}
	return ""
}

// Hierarchy is the hierarchy this cgroup lives in.
func (c *Cgroup) Hierarchy() *Hierarchy { return c.h }

// Path is the cgroup's path for r ("/" is the root), or "" when the process
// has none (a v1 controller not mounted).
func (c *Cgroup) Path(r Resource) string { return c.path(r.controller()) }

// IsRoot reports whether the process sits in the root cgroup for r, where
// the host's own figures apply.
func (c *Cgroup) IsRoot(r Resource) bool { return c.Path(r) == "/" }

// Dir is the absolute directory of the cgroup for r.
func (c *Cgroup) Dir(r Resource) (string, error) {
	if rp := c.paths(r); rp != nil {
		return rp.dir, rp.err
	}
	return c.dir(r.controller())
}

// Key identifies the cgroup for r, for per-container state kept between
// reads.
func (c *Cgroup) Key(r Resource) string {
	if rp := c.paths(r); rp != nil {
		return rp.key
	}
	return c.keyFor(r.controller())
}

func (c *Cgroup) keyFor(controller string) string {
	return c.h.Mode.String() + ":" + controller + ":" + c.path(controller)
}

// paths is byResource[r], or nil for an r out of range.
func (c *Cgroup) paths(r Resource) *resourcePaths {
	if r < 0 || r >= numResources {
		return nil
	}
	return &c.byResource[r]
}

// resourceOf is the Resource whose v1 controller is ctrl.
func resourceOf(ctrl string) (Resource, bool) {
	for r := range Resource(numResources) {
		if r.controller() == ctrl {
			return r, true
		}
	}
	return 0, false
}

func (c *Cgroup) path(controller string) string {
	if c.h.Mode == Unified {
		return c.v2
	}
	return c.v1[controller]
}

// dir is the absolute directory of the cgroup for controller.
func (c *Cgroup) dir(controller string) (string, error) {
	if r, ok := resourceOf(controller); ok {
		return c.Dir(r)
	}
	p := c.path(controller)
	base, ok := c.h.controllerDir(controller)
	if p == "" || !ok {
		return "", fmt.Errorf("%w: %s", ErrNoCgroup, controller)
	}
	return filepath.Join(base, p), nil
}

// limitDirs is an ancestors list without the hierarchy's root, whose
// limits the kernel keeps at none (v1 refuses to set the root's memory,
// memsw and CFS quota with EINVAL; v2 has no memory.max, memory.swap.max or
// cpu.max there), so that no read pays for the root's files; the root's own
// list stays as it is.
func limitDirs(ancestors []string) []string {
	if len(ancestors) > 1 {
		return ancestors[:len(ancestors)-1]
	}
	return ancestors
}

// ancestors lists the absolute directories of the cgroup and each parent up
// to, and including, the hierarchy root: limits are the smallest on this path.
// The list is shared: callers must not change it.
func (c *Cgroup) ancestors(controller string) ([]string, error) {
	if r, ok := resourceOf(controller); ok {
		rp := &c.byResource[r]
		return rp.ancestors, rp.err
	}
	return c.walkAncestors(controller)
}

func (c *Cgroup) walkAncestors(controller string) ([]string, error) {
	p := c.path(controller)
	base, ok := c.h.controllerDir(controller)
	if p == "" || !ok {
		return nil, fmt.Errorf("%w: %s", ErrNoCgroup, controller)
	}
	var dirs []string
	for {
		dirs = append(dirs, filepath.Join(base, p))
		if p == "/" {
			return dirs, nil
		}
		p = path.Dir(p)
	}
}
