package cgroupview

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/cgprocfs/cgprocfs/kernelfs"
	"math"
	"os"
	"path"
	"strconv"
)

// NoLimit stands for "no limit": v2 "max" and v1's huge "unlimited" value.
const NoLimit = math.MaxUint64

// v1Unlimited is the smallest value treated as "unlimited" in a v1 limit
// file: the kernel writes PAGE_COUNTER_MAX pages, 9223372036854771712 with
// 4 KiB pages, and less with larger pages.
const v1Unlimited = 1 << 62

// ErrEmpty is returned for a cgroup file that exists but holds nothing.
var ErrEmpty = errors.New("empty cgroup file")

// ParseLimit parses a one-value limit file: a number, v2's "max", or v1's
// unlimited value, the last two as NoLimit.
func ParseLimit(data []byte) (uint64, error) {
	s := bytes.TrimSpace(data)
	if len(s) == 0 {
		return 0, ErrEmpty
	}
	if string(s) == "max" {
		return NoLimit, nil
	}
	if s[0] == '-' { // v1 cpu.cfs_quota_us and friends write -1
		if string(s) == "-1" {
			return NoLimit, nil
		}
		return 0, fmt.Errorf("negative limit %q", s)
	}
	v, err := strconv.ParseUint(string(s), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("malformed limit %q: %w", s, err)
	}
	if v >= v1Unlimited {
		return NoLimit, nil
	}
	return v, nil
}

// ParseUint parses a one-value counter file.
func ParseUint(data []byte) (uint64, error) {
	s := bytes.TrimSpace(data)
	if len(s) == 0 {
		return 0, ErrEmpty
	}
	v, err := strconv.ParseUint(string(s), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("malformed counter %q: %w", s, err)
	}
	return v, nil
}

// ParseFlatKeyed calls fn for every "key value" line of a flat-keyed file
// such as memory.stat or cpu.stat. Keys are matched whole by fn, never by
// prefix (file vs file_mapped, total_rss vs total_rss_huge).
func ParseFlatKeyed(data []byte, fn func(key string, value uint64)) error {
	return parseFlatKeyedBytes(data, func(k []byte, v uint64) { fn(string(k), v) })
}

// parseFlatKeyedBytes is ParseFlatKeyed with the key as bytes, valid only
// during the call: a switch on string(key) then allocates nothing, which
// matters for memory.stat's forty-odd lines on every open.
func parseFlatKeyedBytes(data []byte, fn func(key []byte, value uint64)) error {
	for len(data) > 0 {
		var line []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			line, data = data, nil
		}
		if len(line) == 0 {
			continue
		}
		sp := bytes.IndexByte(line, ' ')
		if sp <= 0 {
			return fmt.Errorf("malformed flat-keyed line %q", line)
		}
		v, err := strconv.ParseUint(string(bytes.TrimSpace(line[sp+1:])), 10, 64)
		if err != nil {
			return fmt.Errorf("malformed value in line %q: %w", line, err)
		}
		fn(line[:sp], v)
	}
	return nil
}

// files reads cgroup files through the kernel-file cache.
type files struct{ fs *kernelfs.FS }

// readFile reads a small cgroup file into a new slice; a cgroup file is
// one record (kernelfs.FS.ReadRecord).
func (r files) readFile(p string) ([]byte, error) {
	buf := r.fs.GetBuf()
	defer r.fs.PutBuf(buf)
	data, err := r.fs.ReadRecord(p, buf)
	if err != nil {
		return nil, err
	}
	return bytes.Clone(data), nil
}

// readLimit reads a limit file; a missing file means no limit there.
func (r files) readLimit(p string) (uint64, error) {
	ds := r.openDirs([]string{path.Dir(p)})
	defer ds.release()
	buf := r.fs.GetBuf()
	defer r.fs.PutBuf(buf)
	return ds.readLimit(0, path.Base(p), buf)
}

// readUint reads a counter file.
func (r files) readUint(p string) (uint64, error) {
	ds := r.openDirs([]string{path.Dir(p)})
	defer ds.release()
	buf := r.fs.GetBuf()
	defer r.fs.PutBuf(buf)
	return ds.readUint(0, path.Base(p), buf)
}

// dirSet is a cgroup and its ancestors held for several reads, with the
// parsing of limit and counter files on top.
type dirSet struct{ kernelfs.DirSet }

func (r files) openDirs(dirs []string) dirSet { return dirSet{r.fs.OpenDirs(dirs)} }

// holdAncestors holds the directories of c and its ancestors for
// controller, and lends a buffer, until letGo: every file of a reading goes
// through one opening of each directory, into one buffer. (A done closure
// returned instead cost an allocation per open.)
func (r files) holdAncestors(c *Cgroup, controller string) (ds dirSet, buf *[]byte, err error) {
	dirs, err := c.ancestors(controller)
	if err != nil {
		return dirSet{}, nil, err
	}
	return r.openDirs(dirs), r.fs.GetBuf(), nil
}

// letGo ends what holdAncestors lent.
func (r files) letGo(ds dirSet, buf *[]byte) {
	r.fs.PutBuf(buf)
	ds.release()
}

func (ds dirSet) release() { ds.Release() }

func (ds dirSet) read(i int, name string, buf *[]byte) ([]byte, error) {
	return ds.Read(i, name, buf)
}

// readLimit reads a limit file; a missing file means no limit there.
func (ds dirSet) readLimit(i int, name string, buf *[]byte) (uint64, error) {
	v, err := ds.readValue(i, name, buf, ParseLimit)
	if errors.Is(err, os.ErrNotExist) {
		return NoLimit, nil
	}
	return v, err
}

// readUint reads a counter file.
func (ds dirSet) readUint(i int, name string, buf *[]byte) (uint64, error) {
	return ds.readValue(i, name, buf, ParseUint)
}

// readValue reads a one-value file of the i-th directory and parses it.
func (ds dirSet) readValue(i int, name string, buf *[]byte, parse func([]byte) (uint64, error)) (uint64, error) {
	data, err := ds.read(i, name, buf)
	if err != nil {
		return 0, err
	}
	v, err := parse(data)
	if err != nil {
		return 0, fmt.Errorf("%s/%s: %w", ds.Paths[i], name, err)
	}
	return v, nil
}

// limited is how many of the directories of an ancestors list (held by
// holdAncestors), from the first, can carry a limit (limitDirs).
func (ds dirSet) limited() int { return len(limitDirs(ds.Paths)) }

// minLimit is the smallest of limit file name over the ancestors held by
// holdAncestors that can carry one, NoLimit if none.
func (ds dirSet) minLimit(name string, buf *[]byte) (uint64, error) {
	m := uint64(NoLimit)
	for i := range ds.limited() {
		v, err := ds.readLimit(i, name, buf)
		if err != nil {
			return 0, err
		}
		m = min(m, v)
	}
	return m, nil
}
