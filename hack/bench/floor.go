package main

import (
	"context"
	"os"
	"path/filepath"
	"syscall"

	cgfs "github.com/cgprocfs/cgprocfs/fs"
)

// mountFloor mounts cgprocfs's FUSE tree in this process with one file whose
// content is fixed bytes as long as the host's /proc/meminfo, and returns
// the file's path. It is unmounted at cleanup.
func mountFloor(e *env) (string, error) {
	content, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return "", err
	}
	mp := filepath.Join(e.tmp, "floor")
	if err := os.MkdirAll(mp, 0o755); err != nil {
		return "", err
	}
	server, err := cgfs.Mount(mp, []cgfs.File{{
		Path:    "proc/meminfo",
		Content: func(context.Context, uint32) ([]byte, error) { return content, nil },
	}}, cgfs.Options{})
	if err != nil {
		return "", err
	}
	e.defer_(func() {
		if server.Unmount() != nil {
			syscall.Unmount(mp, syscall.MNT_DETACH)
		}
	})
	return filepath.Join(mp, "proc/meminfo"), nil
}
