package kernelfs

import (
	"os"
	"syscall"
)

// preadAll reads a whole file from offset 0 into *buf, growing it as
// needed; a pread at offset 0 makes a seq_file generate the content afresh.
// A seq_file hands out at most one page-sized chunk per read unless its
// content is one record, so with oneRecord unset it reads on until a read
// returns nothing; with it set (cgroup files, /proc/<pid> files,
// /proc/meminfo) a short read is the end, which saves that last read.
func preadAll(fd int, buf *[]byte, oneRecord bool) ([]byte, error) {
	if len(*buf) == 0 {
		*buf = make([]byte, 4096)
	}
	n := 0
	for {
		if n == len(*buf) {
			nb := make([]byte, 2*len(*buf))
			copy(nb, *buf)
			*buf = nb
		}
		m, err := syscall.Pread(fd, (*buf)[n:], int64(n))
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if m == 0 {
			return (*buf)[:n], nil
		}
		n += m
		if oneRecord && n < len(*buf) {
			return (*buf)[:n], nil
		}
	}
}

// readPath reads a whole file with open, read and close, into *buf.
func readPath(p string, buf *[]byte) ([]byte, error) {
	fd, err := syscall.Open(p, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	defer syscall.Close(fd)
	data, err := preadAll(fd, buf, false)
	if err != nil {
		return nil, &os.PathError{Op: "read", Path: p, Err: err}
	}
	return data, nil
}
