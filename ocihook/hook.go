package ocihook

import (
	"errors"
	"fmt"
	cgfs "github.com/cgprocfs/cgprocfs/fs"
	"io"
	"os"
	"syscall"
)

// Config is what the hook was asked to do.
type Config struct {
	// Mountpoint is where cgprocfs is mounted on the host, absolute.
	Mountpoint string
	// OptIn binds only into containers annotated cgprocfs.io/enabled=true.
	OptIn bool
}

// Result is what Run did.
type Result struct {
	// ID is the container's id, once the state is read.
	ID string
	// Bound are the files bound, relative to the mount point.
	Bound []string
	// Skipped says why nothing was bound, when Run did not try.
	Skipped string
	// Notes are files left out and files that failed to bind.
	Notes []string
}

// Run reads the container state from stdin and binds the files the mount
// serves into the container's rootfs. An error means input no runtime
// sends (or a container that is gone): nothing was bound. Not being
// served, or turned off, is no error: Result.Skipped says so.
func Run(cfg Config, stdin io.Reader) (Result, error) {
	var res Result
	state, err := ParseState(stdin)
	if err != nil {
		return res, err
	}
	res.ID = state.ID
	if state.Pid > 0 && !alive(state.Pid) {
		return res, fmt.Errorf("the container's process %d has exited", state.Pid)
	}
	spec, rootfs, err := LoadSpec(state.Bundle)
	if err != nil {
		return res, err
	}
	d := Decide(spec.Annotations, state.Annotations, cfg.OptIn)
	if d.Warning != "" {
		res.Notes = append(res.Notes, d.Warning)
	}
	if !d.Enabled {
		res.Skipped = d.Reason
		return res, nil
	}
	ok, why, err := Serving(cfg.Mountpoint)
	if err != nil {
		return res, err
	}
	if !ok {
		res.Skipped = why
		return res, nil
	}
	if host, err := inInitMountNamespace(); err != nil {
		return res, err
	} else if host {
		return res, errors.New("running in the host's mount namespace, where binds would not reach the container: the hook belongs in the createContainer stage")
	}
	served, err := cgfs.ServedFiles(cfg.Mountpoint)
	if err != nil {
		return res, err
	}
	root, err := OpenRootfs(rootfs)
	if err != nil {
		return res, err
	}
	defer root.Close()
	targets, notes := root.Targets(served)
	res.Notes = append(res.Notes, notes...)
	for _, rel := range targets {
		if err := root.Bind(cfg.Mountpoint, rel); err != nil {
			res.Notes = append(res.Notes, err.Error())
			continue
		}
		res.Bound = append(res.Bound, rel)
	}
	return res, nil
}

// alive tells whether pid runs. runc gives the pid as the container's pid
// namespace sees it, which the hook shares (it is 1 there); a runtime may
// give the host's, as /proc sees it before pivot_root. Either will do.
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err == nil || errors.Is(err, syscall.EPERM) {
		return true
	}
	_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
	return err == nil
}

// inInitMountNamespace tells whether this process shares the mount
// namespace of pid 1 of /proc, the host's, which a createContainer hook
// never does. When pid 1's namespace cannot be read, it answers no.
func inInitMountNamespace() (bool, error) {
	self, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		return false, fmt.Errorf("reading this process's mount namespace: %w", err)
	}
	init, err := os.Readlink("/proc/1/ns/mnt")
	if err != nil {
		return false, nil
	}
	return self == init, nil
}
