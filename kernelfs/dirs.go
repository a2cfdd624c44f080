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
	es   []*entry
	errs []error
	// Paths are the directories, in the order given.
	Paths []string
}

// OpenDirs holds dirs until Release.
func (fs *FS) OpenDirs(dirs []string) DirSet {
	ds := DirSet{c: fs.cache, es: make([]*entry, len(dirs)), errs: make([]error, len(dirs)), Paths: dirs}
	for i, d := range dirs {
		ds.es[i], ds.errs[i] = fs.cache.dirEntry(d)
	}
	return ds
}

// Release ends the reads.
func (ds DirSet) Release() {
	for _, e := range ds.es {
		if e != nil {
			ds.c.release(e)
		}
	}
}

// Read reads file name of the i-th directory; the content lives in *buf
// until the next read into it. A missing file matches os.ErrNotExist.
// Cgroup files are one record each, which saves a read (see preadAll).
func (ds DirSet) Read(i int, name string, buf *[]byte) ([]byte, error) {
	if ds.es[i] == nil {
		err := ds.errs[i]
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = &os.PathError{Op: "open", Path: pe.Path + "/" + name, Err: pe.Err}
		}
		return nil, err
	}
	return ds.c.read(ds.es[i], name, buf, true, false)
}
