package fs

import (
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// The mount's life around Mount: ClaimMountpoint before, Serve after.

// ClaimMountpoint makes mountpoint, an absolute path, ready for Mount: it is
// created if missing, and a cgprocfs mount on it is detached when a crashed
// daemon left it dead, and refused when a daemon still serves it.
func ClaimMountpoint(mountpoint string, log *slog.Logger) error {
	h, err := Probe(mountpoint)
	if err != nil {
		return err
	}
	switch h {
	case Serving, Hung:
		return fmt.Errorf("a live cgprocfs already serves %s", mountpoint)
	case Dead:
		log.Warn("replacing stale cgprocfs mount", "mountpoint", mountpoint)
		if err := syscall.Unmount(mountpoint, syscall.MNT_DETACH); err != nil {
			return fmt.Errorf("detaching stale mount %s: %w", mountpoint, err)
		}
	}
	if err := os.MkdirAll(mountpoint, 0o755); err != nil {
		return fmt.Errorf("creating mount point: %w", err)
	}
	return nil
}

// Health is how a cgprocfs mount point is.
type Health int

const (
	// NotMounted: no cgprocfs is mounted there.
	NotMounted Health = iota
	// Dead: mounted, but its daemon is gone (ENOTCONN or ECONNABORTED).
	Dead
	// Hung: mounted, and its daemon does not answer within ProbeTimeout.
	Hung
	// Serving: mounted and answering.
	Serving
)

func (h Health) String() string {
	return [...]string{"not mounted", "dead (its daemon is gone)", "hung (its daemon does not answer)", "serving"}[h]
}

// ProbeTimeout is how long Probe waits for the daemon's answer.
const ProbeTimeout = 2 * time.Second

// Probe tells whether a cgprocfs is mounted at mountpoint, an absolute path,
// in this mount namespace, and whether its daemon answers. statfs always
// reaches the daemon, where stat may be answered from the kernel's cache;
// a dead daemon's mount answers ENOTCONN at once.
func Probe(mountpoint string) (Health, error) {
	mounted, err := mountedAt("/proc", mountpoint)
	if err != nil || !mounted {
		return NotMounted, err
	}
	done := make(chan error, 1)
	go func() {
		var st syscall.Statfs_t
		done <- syscall.Statfs(mountpoint, &st)
	}()
	select {
	case err := <-done:
		switch {
		case errors.Is(err, syscall.ENOTCONN), errors.Is(err, syscall.ECONNABORTED):
			return Dead, nil
		case err != nil:
			return NotMounted, fmt.Errorf("statfs %s: %w", mountpoint, err)
		}
		return Serving, nil
	case <-time.After(ProbeTimeout):
		return Hung, nil
	}
}

// ServedFiles lists the regular files under the mount at mountpoint as
// slash-separated paths relative to it ("proc/meminfo"), in lexical order,
// and the directories served whole (WholeDirPerm), with a trailing slash
// ("sys/devices/system/cpu/"), whose files it does not list: those are
// bound as one directory. Those who bind them walk the tree rather than keep
// a list, so that files a later version serves are bound too.
func ServedFiles(mountpoint string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(mountpoint, func(p string, d iofs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != mountpoint {
			info, err := d.Info()
			if err != nil {
				return err
			}
			if info.Mode().Perm() == WholeDirPerm {
				rel, err := filepath.Rel(mountpoint, p)
				if err != nil {
					return err
				}
				files = append(files, filepath.ToSlash(rel)+"/")
				return filepath.SkipDir
			}
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

// Serve returns when server, mounted at mountpoint by Mount, stops serving:
// when ctx ends, after unmounting it, or when the mount goes away by other
// hands. A mount still in use when ctx ends is detached: it goes away as its
// users do, and the daemon's exit ends the FUSE connection.
func Serve(ctx context.Context, server *fuse.Server, mountpoint string, log *slog.Logger) error {
	served := make(chan struct{})
	go func() { server.Wait(); close(served) }()
	select {
	case <-served:
		// Unmounted by other hands, or the kernel aborted the connection
		// (a request timed out): not a clean stop, so a supervisor
		// restarts the daemon, which re-attaches the containers.
		return fmt.Errorf("the mount at %s went away", mountpoint)
	case <-ctx.Done():
	}
	log.Info("unmounting", "mountpoint", mountpoint, "reason", context.Cause(ctx))
	if err := syscall.Unmount(mountpoint, 0); err != nil {
		// Busy: a container still bind-mounts a file, or a reader
		// holds one open.
		log.Warn("unmount failed, detaching", "mountpoint", mountpoint, "err", err)
		if err := syscall.Unmount(mountpoint, syscall.MNT_DETACH); err != nil {
			return fmt.Errorf("detaching %s: %w", mountpoint, err)
		}
		return nil
	}
	// The kernel ends the connection once unmounted; let the server see
	// it, but do not hang the exit on it.
	select {
	case <-served:
	case <-time.After(time.Second):
	}
	return nil
}
