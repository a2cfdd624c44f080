package ocihook

import (
	"fmt"

	cgfs "github.com/cgprocfs/cgprocfs/fs"
)

// Serving tells whether a live cgprocfs serves mountpoint, an absolute path,
// in this process's mount namespace; when not, why says what is wrong. A
// hung daemon counts as not serving: a hook that waited on it would hold up
// the container.
func Serving(mountpoint string) (ok bool, why string, err error) {
	h, err := cgfs.Probe(mountpoint)
	if err != nil {
		return false, "", err
	}
	switch h {
	case cgfs.NotMounted:
		return false, fmt.Sprintf("no cgprocfs is mounted at %s", mountpoint), nil
	case cgfs.Serving:
		return true, "", nil
	}
	return false, fmt.Sprintf("the cgprocfs mounted at %s is %s", mountpoint, h), nil
}
