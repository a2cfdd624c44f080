package kernelfs

import (
	"errors"
	"os"
)

// DirSet is directories held for several reads: a cgroup and its
// ancestors, say. A directory that could not be opened keeps its error,
// which its files' reads return as if the file had been opened.
type DirSet struct {
	c    *cache
	held []heldDir
	// Paths are the directories, in the order given.
	Paths []string
}

// heldDir is a directory held, or the error that opening it gave.
type heldDir struct {
	e   *entry
	err error
}

// OpenDirs holds dirs until Release.
func (fs *FS) OpenDirs(dirs []string) DirSet {
	ds := DirSet{c: fs.cache, held: make([]heldDir, len(dirs)), Paths: dirs}
	for i, d := range dirs {
		ds.held[i].e, ds.held[i].err = fs.cache.dirEntry(d)
	}
	return ds
}

// Release ends the reads.
func (ds DirSet) Release() {
	for _, h := range ds.held {
		if h.e != nil {
			ds.c.release(h.e)
		}
	}
}

// Read reads file name of the i-th directory; the content lives in *buf
// until the next read into it. A missing file matches os.ErrNotExist.
// Cgroup files are one record each, which saves a read (see preadAll).
func (ds DirSet) Read(i int, name string, buf *[]byte) ([]byte, error) {
	if ds.held[i].e == nil {
		err := ds.held[i].err
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = &os.PathError{Op: "open", Path: pe.Path + "/" + name, Err: pe.Err}
		}
		return nil, err
	}
	return ds.c.read(ds.held[i].e, name, buf, true, false)
}
