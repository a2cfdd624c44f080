package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	cgfs "github.com/cgprocfs/cgprocfs/fs"
)

// mountFloor mounts cgprocfs's FUSE tree in this process with one file per
// entry of content (a path under the mount point and its fixed bytes), and
// returns the mount point. It is unmounted at cleanup.
func mountFloor(e *env, content map[string][]byte) (string, error) {
	mp := filepath.Join(e.tmp, "floor")
	if err := os.MkdirAll(mp, 0o755); err != nil {
		return "", err
	}
	var files []cgfs.File
	for path, data := range content {
		files = append(files, cgfs.File{
			Path:    path,
			Content: func(context.Context, uint32) ([]byte, error) { return data, nil },
		})
	}
	server, err := cgfs.Mount(mp, files, cgfs.Options{})
	if err != nil {
		return "", fmt.Errorf("mounting the FUSE floor: %w", err)
	}
	e.defer_(func() {
		if server.Unmount() != nil {
			syscall.Unmount(mp, syscall.MNT_DETACH)
		}
	})
	return mp, nil
}
