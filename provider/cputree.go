// sys/devices/system/cpu and sys/devices/system/node as the caller's
// container sees them: only its CPUs, numbered as its cpuinfo and stat
// number them; everything else is the host's.

package provider

import (
	"bytes"
	"context"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cgprocfs/cgprocfs/fs"
	"github.com/cgprocfs/cgprocfs/procfiles"
)

// cpuTree is the fs.DirSource of sys/devices/system/cpu (node false) or
// sys/devices/system/node (node true). A container's cpuN is the host's
// CPU visibleCPUs()[N]: its directory is the host's, and the files in it
// that name CPUs (topology/*_list, cache/index*/shared_cpu_map, ...) name
// the container's CPUs only. online, present, possible and enabled list
// them all, offline none. Under node, nodeM/cpulist and cpumap are
// rewritten the same way and nodeM/cpuN links exist for its CPUs only. A
// caller in the host's root cgroups sees the host's directory as it is.
type cpuTree struct {
	p    *Provider
	node bool
	// dir is the host directory served, joined once.
	dir string
}

// newCPUTree is the cpu directory's source (node false) or the node
// directory's.
func newCPUTree(p *Provider, node bool) cpuTree {
	dir := path.Join(p.cfg.SysRoot, "devices/system/cpu")
	if node {
		dir = path.Join(p.cfg.SysRoot, "devices/system/node")
	}
	return cpuTree{p: p, node: node, dir: dir}
}

var _ fs.DirSource = cpuTree{}

// maxSysfsFile bounds what a file passed through from the host may hold:
// sysfs attributes hold a page; the bound keeps a binary attribute of
// unknown size from costing more.
const maxSysfsFile = 1 << 20

// view is the caller's CPU map; nil for a caller that sees the host's.
func (t cpuTree) view(ctx context.Context, pid uint32) (*procfiles.CPUMap, error) {
	c, err := t.p.caller(ctx, pid)
	if err != nil {
		return nil, err
	}
	if hostCPU(c) {
		return nil, nil
	}
	cpus, err := t.p.visibleCPUs(c)
	if err != nil {
		return nil, err
	}
	m := procfiles.NewCPUMap(cpus)
	return &m, nil
}

// cpuIndex is N of a name "cpuN", or -1.
func cpuIndex(name string) int {
	digits, ok := strings.CutPrefix(name, "cpu")
	if !ok || digits == "" {
		return -1
	}
	n, err := strconv.Atoi(digits)
	if err != nil || n < 0 || strconv.Itoa(n) != digits {
		return -1
	}
	return n
}

// cpuLevel is the index of the path component that names CPUs: cpuN at the
// top of the cpu directory, nodeM/cpuN under node.
func (t cpuTree) cpuLevel() int {
	if t.node {
		return 1
	}
	return 0
}

// hostRel maps the caller's rel to the host's path under dir: its cpuN
// component becomes the host CPU it shows. A CPU the caller lacks does not
// exist.
func (t cpuTree) hostRel(m *procfiles.CPUMap, rel string) (string, error) {
	if m == nil || rel == "" {
		return rel, nil
	}
	// The component at cpuLevel, found in place: this runs on every
	// open of a CPU file.
	start := 0
	for range t.cpuLevel() {
		i := strings.IndexByte(rel[start:], '/')
		if i < 0 {
			return rel, nil
		}
		start += i + 1
	}
	end := len(rel)
	if i := strings.IndexByte(rel[start:], '/'); i >= 0 {
		end = start + i
	}
	n := cpuIndex(rel[start:end])
	if n < 0 {
		return rel, nil
	}
	h, ok := m.Host(n)
	if !ok {
		return "", os.ErrNotExist
	}
	if h == n {
		return rel, nil
	}
	return rel[:start] + "cpu" + strconv.Itoa(h) + rel[end:], nil
}

// resolve gives the caller's CPU map and the host path rel stands for.
func (t cpuTree) resolve(ctx context.Context, pid uint32, rel string) (*procfiles.CPUMap, string, error) {
	m, err := t.view(ctx, pid)
	if err != nil {
		return nil, "", err
	}
	hr, err := t.hostRel(m, rel)
	return m, hr, err
}

// EntryTimeout is 0 for the entries that name CPUs (cpuN, node/nodeM/cpuN),
// which differ between callers, and an hour for the others. The top cpu0
// is one of the others: every caller has a cpu0 (a container's view is
// never empty, and a host caller's cpu0 is the host's boot CPU, which Linux
// never removes), so a walk through it need not ask again; its content is
// still built per caller at each open. node/nodeM/cpu0 stays at 0: whether
// a container's cpu0 is on node M depends on the caller. What lies below a
// cpuN is the same path for every caller, its content built per caller; a
// name there that exists below one host CPU but not another (cpu0 has no
// online on x86) may be seen cached by a caller whose CPU lacks it, whose
// open then fails with ENOENT.
func (t cpuTree) EntryTimeout(rel string) time.Duration {
	parts := strings.Split(rel, "/")
	if len(parts) != t.cpuLevel()+1 {
		return time.Hour
	}
	if n := cpuIndex(parts[len(parts)-1]); n > 0 || (n == 0 && t.node) {
		return 0
	}
	return time.Hour
}

func (t cpuTree) Stat(ctx context.Context, pid uint32, rel string) (uint32, error) {
	_, hr, err := t.resolve(ctx, pid, rel)
	if err != nil {
		return 0, err
	}
	var st syscall.Stat_t
	if err := syscall.Lstat(path.Join(t.dir, hr), &st); err != nil {
		return 0, &os.PathError{Op: "lstat", Path: hr, Err: err}
	}
	return st.Mode, nil
}

func (t cpuTree) List(ctx context.Context, pid uint32, rel string) ([]fs.DirEntry, error) {
	m, hr, err := t.resolve(ctx, pid, rel)
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(path.Join(t.dir, hr))
	if err != nil {
		return nil, err
	}
	cpuDir := m != nil && strings.Count(rel, "/")+btoi(rel != "") == t.cpuLevel()
	out := make([]fs.DirEntry, 0, len(entries))
	for _, e := range entries {
		name := e.Name()
		if cpuDir {
			if n := cpuIndex(name); n >= 0 {
				// Shown under the container's number, if at all.
				i, ok := m.Container(n)
				if !ok {
					continue
				}
				name = "cpu" + strconv.Itoa(i)
			}
		}
		mode, ok := entryMode(e.Type())
		if !ok {
			continue
		}
		out = append(out, fs.DirEntry{Name: name, Mode: mode})
	}
	return out, nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// entryMode is the mode a listing gives a host entry of type typ; ok is
// false for what is not served (devices, sockets, pipes).
func entryMode(typ iofs.FileMode) (uint32, bool) {
	switch {
	case typ.IsDir():
		return syscall.S_IFDIR | 0o755, true
	case typ&iofs.ModeSymlink != 0:
		return syscall.S_IFLNK | 0o777, true
	case typ.IsRegular():
		return syscall.S_IFREG | 0o444, true
	}
	return 0, false
}

// cpuListFiles name CPUs in the cpulist format, cpuMaskFiles as a mask,
// cpuWordFiles separated by spaces.
var (
	cpuListFiles = map[string]bool{
		"cpulist": true, "isolated": true, "nohz_full": true,
		"thread_siblings_list": true, "core_siblings_list": true, "core_cpus_list": true,
		"die_cpus_list": true, "package_cpus_list": true, "cluster_cpus_list": true,
		"book_siblings_list": true, "drawer_siblings_list": true, "shared_cpu_list": true,
	}
	cpuMaskFiles = map[string]bool{
		"cpumap": true, "shared_cpu_map": true,
		"thread_siblings": true, "core_siblings": true, "core_cpus": true,
		"die_cpus": true, "package_cpus": true, "cluster_cpus": true,
		"book_siblings": true, "drawer_siblings": true,
	}
	cpuWordFiles = map[string]bool{"affected_cpus": true, "related_cpus": true}
)

func (t cpuTree) Content(ctx context.Context, pid uint32, rel string) ([]byte, error) {
	m, hr, err := t.resolve(ctx, pid, rel)
	if err != nil {
		return nil, err
	}
	if m != nil && !t.node {
		switch rel {
		case "online", "present", "possible", "enabled":
			return procfiles.RenderCPURange(m.Len()), nil
		case "offline":
			return []byte("\n"), nil
		}
	}
	name := path.Base(rel)
	var data []byte
	if cpuListFiles[name] || cpuMaskFiles[name] || cpuWordFiles[name] {
		// Attributes of a page at most, read on every open by lscpu,
		// hwloc and the like: through a kept descriptor.
		buf := t.p.cfg.FS.GetBuf()
		defer t.p.cfg.FS.PutBuf(buf)
		data, err = t.p.cfg.FS.ReadRecord(path.Join(t.dir, hr), buf)
		if err == nil && m == nil {
			data = bytes.Clone(data)
		}
	} else {
		data, err = readBounded(path.Join(t.dir, hr))
	}
	if err != nil || m == nil {
		return data, err
	}
	var out []byte
	switch {
	case cpuListFiles[name]:
		out, err = procfiles.TranslateCPUList(data, *m)
	case cpuMaskFiles[name]:
		out, err = procfiles.TranslateCPUMask(data, *m)
	case cpuWordFiles[name]:
		out, err = procfiles.TranslateCPUWords(data, *m)
	default:
		return data, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s/%s: %w", t.dir, hr, err)
	}
	return out, nil
}

func (t cpuTree) Readlink(ctx context.Context, pid uint32, rel string) (string, error) {
	m, hr, err := t.resolve(ctx, pid, rel)
	if err != nil {
		return "", err
	}
	target, err := os.Readlink(path.Join(t.dir, hr))
	if err != nil || m == nil {
		return target, err
	}
	// node/nodeM/cpuN points at ../../cpu/cpuN: the container's number.
	if dir, base := path.Split(target); t.node && dir == "../../cpu/" {
		if n := cpuIndex(base); n >= 0 {
			if i, ok := m.Container(n); ok {
				return dir + "cpu" + strconv.Itoa(i), nil
			}
		}
	}
	return target, nil
}

// readBounded reads a host sysfs file whole, with open, read and close: a
// file that would block answers EAGAIN rather than hold the request, one
// that cannot be read (write-only) gives its errno, and one past
// maxSysfsFile gives EFBIG.
func readBounded(p string) ([]byte, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSysfsFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxSysfsFile {
		return nil, &os.PathError{Op: "read", Path: p, Err: syscall.EFBIG}
	}
	return data, nil
}
