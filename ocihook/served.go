package ocihook

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/procfs"

	cgfs "github.com/cgprocfs/cgprocfs/fs"
)

// probeTimeout bounds the statfs that tells a live mount from a dead or hung
// one: a hook that waits on a hung daemon would hold up the container.
const probeTimeout = 2 * time.Second

// Serving tells whether a live cgprocfs serves mountpoint, an absolute path,
// in this process's mount namespace; when not, why says what is wrong.
func Serving(mountpoint string) (ok bool, why string, err error) {
	mounts, err := procfs.GetMounts()
	if err != nil {
		return false, "", fmt.Errorf("reading this mount namespace's mounts: %w", err)
	}
	escaped := escapeMountinfo(mountpoint)
	found := false
	for _, m := range mounts {
		if m.FSType == cgfs.FSType && m.MountPoint == escaped {
			found = true
		}
	}
	if !found {
		return false, fmt.Sprintf("no cgprocfs is mounted at %s", mountpoint), nil
	}
	// statfs always reaches the daemon, where stat may be answered from
	// the kernel's cache; a dead daemon's mount answers ENOTCONN at once.
	done := make(chan error, 1)
	go func() {
		var st syscall.Statfs_t
		done <- syscall.Statfs(mountpoint, &st)
	}()
	select {
	case err := <-done:
		switch {
		case errors.Is(err, syscall.ENOTCONN), errors.Is(err, syscall.ECONNABORTED):
			return false, fmt.Sprintf("the cgprocfs mounted at %s is dead (its daemon exited: %v)", mountpoint, err), nil
		case err != nil:
			return false, "", fmt.Errorf("statfs %s: %w", mountpoint, err)
		}
		return true, "", nil
	case <-time.After(probeTimeout):
		return false, fmt.Sprintf("the cgprocfs mounted at %s does not answer within %v", mountpoint, probeTimeout), nil
	}
}

// escapeMountinfo writes a path as the kernel does in mountinfo, where a
// space, tab, newline or backslash is an octal escape.
func escapeMountinfo(p string) string {
	return strings.NewReplacer(`\`, `\134`, " ", `\040`, "\t", `\011`, "\n", `\012`).Replace(p)
}

// ServedFiles lists the regular files under mountpoint as slash-separated
// paths relative to it ("proc/meminfo"), in lexical order. The tree is
// walked rather than listed here so that files the daemon serves in a later
// version are bound too.
func ServedFiles(mountpoint string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(mountpoint, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			rel, err := filepath.Rel(mountpoint, p)
			if err != nil {
				return err
			}
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing the files %s serves: %w", mountpoint, err)
	}
	return files, nil
}
