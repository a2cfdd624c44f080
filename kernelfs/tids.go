package kernelfs

import (
	"bytes"
	"fmt"
	"strconv"

	"golang.org/x/sys/unix"
)

// Threads appends the thread ids listed in a cgroup's thread file (v1
// "tasks", v2 "cgroup.threads") under dirfd to tids. The file is opened
// afresh each time rather than kept: v1 keeps a pid list per open file and
// serves a re-read at offset 0 from it for up to a second.
func (fs *FS) Threads(dirfd int, name string, tids []int) ([]int, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return tids, err
	}
	defer unix.Close(fd)
	buf := fs.GetBuf()
	defer fs.PutBuf(buf)
	data, err := preadAll(fd, buf, false)
	if err != nil {
		return tids, err
	}
	return ParseTids(data, tids)
}

// ThreadsAt is Threads for a directory path.
func (fs *FS) ThreadsAt(dir, name string, tids []int) ([]int, error) {
	return fs.Threads(unix.AT_FDCWD, dir+"/"+name, tids)
}

// ParseTids appends the ids of a tasks or cgroup.threads file, one a line.
func ParseTids(data []byte, tids []int) ([]int, error) {
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		line := data
		if i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		if len(line) == 0 {
			continue
		}
		t, err := strconv.Atoi(string(line))
		if err != nil || t <= 0 {
			return tids, fmt.Errorf("malformed thread id %q", line)
		}
		tids = append(tids, t)
	}
	return tids, nil
}
