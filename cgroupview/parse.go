package cgroupview

import (
	"bytes"
	"errors"
	"fmt"
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

// readFile reads a small cgroup file, through the descriptor cache of
// filecache.go.
func readFile(p string) ([]byte, error) {
	ds := openDirs([]string{path.Dir(p)})
	defer ds.release()
	buf := getBuf()
	defer putBuf(buf)
	data, err := ds.read(0, path.Base(p), buf)
	if err != nil {
		return nil, err
	}
	return bytes.Clone(data), nil
}

// readLimit reads a limit file; a missing file means no limit there.
func readLimit(p string) (uint64, error) {
	ds := openDirs([]string{path.Dir(p)})
	defer ds.release()
	buf := getBuf()
	defer putBuf(buf)
	return ds.readLimit(0, path.Base(p), buf)
}

// readUint reads a counter file.
func readUint(p string) (uint64, error) {
	ds := openDirs([]string{path.Dir(p)})
	defer ds.release()
	buf := getBuf()
	defer putBuf(buf)
	return ds.readUint(0, path.Base(p), buf)
}

// minLimit is the smallest of limit file name over dirs, NoLimit if none.
func minLimit(dirs []string, name string) (uint64, error) {
	ds := openDirs(dirs)
	defer ds.release()
	buf := getBuf()
	defer putBuf(buf)
	return ds.minLimit(name, buf)
}

// dirSet is cgroup directories opened once for several reads: a cgroup and
// its ancestors, say. A directory that could not be opened keeps its error,
// which its files' reads return as if the file had been opened.
type dirSet struct {
	hs   []*dirHandle
	errs []error
}

func openDirs(dirs []string) dirSet {
	ds := dirSet{hs: make([]*dirHandle, len(dirs)), errs: make([]error, len(dirs))}
	for i, d := range dirs {
		ds.hs[i], ds.errs[i] = files.openDir(d)
	}
	return ds
}

func (ds dirSet) release() {
	for _, h := range ds.hs {
		if h != nil {
			h.release()
		}
	}
}

// read reads file name of the i-th directory; the content lives in *buf
// until the next read into it.
func (ds dirSet) read(i int, name string, buf *[]byte) ([]byte, error) {
	if ds.hs[i] == nil {
		err := ds.errs[i]
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = &os.PathError{Op: "open", Path: pe.Path + "/" + name, Err: pe.Err}
		}
		return nil, err
	}
	return ds.hs[i].read(name, buf)
}

// readLimit reads a limit file; a missing file means no limit there.
func (ds dirSet) readLimit(i int, name string, buf *[]byte) (uint64, error) {
	data, err := ds.read(i, name, buf)
	if errors.Is(err, os.ErrNotExist) {
		return NoLimit, nil
	}
	if err != nil {
		return 0, err
	}
	v, err := ParseLimit(data)
	if err != nil {
		return 0, fmt.Errorf("%s/%s: %w", ds.dir(i), name, err)
	}
	return v, nil
}

// readUint reads a counter file.
func (ds dirSet) readUint(i int, name string, buf *[]byte) (uint64, error) {
	data, err := ds.read(i, name, buf)
	if err != nil {
		return 0, err
	}
	v, err := ParseUint(data)
	if err != nil {
		return 0, fmt.Errorf("%s/%s: %w", ds.dir(i), name, err)
	}
	return v, nil
}

// minLimit is the smallest of limit file name over the directories,
// NoLimit if none.
func (ds dirSet) minLimit(name string, buf *[]byte) (uint64, error) {
	m := uint64(NoLimit)
	for i := range ds.hs {
		v, err := ds.readLimit(i, name, buf)
		if err != nil {
			return 0, err
		}
		m = min(m, v)
	}
	return m, nil
}

func (ds dirSet) dir(i int) string {
	if ds.hs[i] != nil {
		return ds.hs[i].path
	}
	return "?"
}
