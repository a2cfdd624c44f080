package fs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// The mount's life around Mount: ClaimMountpoint before, Serve after.

// ClaimMountpoint makes mountpoint, an absolute path, ready for Mount: it is
// created if missing, and a cgprocfs mount on it is detached when a crashed
// daemon left it dead, and refused when a daemon still serves it.
func ClaimMountpoint(mountpoint string, log *slog.Logger) error {
	mounted, err := mountedAt("/proc", mountpoint)
	if err != nil {
		return err
	}
	if mounted {
		if Live(mountpoint) {
			return fmt.Errorf("a live cgprocfs already serves %s", mountpoint)
		}
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

// Live tells whether the filesystem at mountpoint answers. A dead FUSE
// daemon's mount answers ENOTCONN at once; a hung one is treated as live.
// statfs always reaches the daemon, where stat may be answered from the
// kernel's attribute cache.
func Live(mountpoint string) bool {
	done := make(chan error, 1)
	go func() {
		var st syscall.Statfs_t
		done <- syscall.Statfs(mountpoint, &st)
	}()
	select {
	case err := <-done:
		return !errors.Is(err, syscall.ENOTCONN) && !errors.Is(err, syscall.ECONNABORTED)
	case <-time.After(2 * time.Second):
		return true
	}
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
