package fs

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// StateDir is where a serving daemon says who it is, one file per mount
// point, for `cgprocfs status`.
const StateDir = "/run/cgprocfs"

// State is what a serving daemon writes about itself.
type State struct {
	Mountpoint string `json:"mountpoint"`
	// ServerPid is the process that serves requests.
	ServerPid int `json:"server-pid"`
	// HolderPid is the process that holds the FUSE connection across
	// servers (the holder package); 0 when the server holds it alone.
	HolderPid int    `json:"holder-pid,omitempty"`
	Version   string `json:"version"`
}

// statePath is the state file of mountpoint.
func statePath(dir, mountpoint string) string {
	return filepath.Join(dir, "mount"+strings.ReplaceAll(mountpoint, "/", "_")+".json")
}

// WriteState records s for its mount point in dir, replacing the file
// atomically.
func WriteState(dir string, s State) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	data, err := json.Marshal(s)
	if err != nil {
		return err
	}
	p := statePath(dir, s.Mountpoint)
	if err := os.WriteFile(p+".tmp", data, 0o644); err != nil {
		return fmt.Errorf("writing state: %w", err)
	}
	return os.Rename(p+".tmp", p)
}

// ReadState reads what the daemon of mountpoint recorded in dir.
func ReadState(dir, mountpoint string) (State, error) {
	var s State
	data, err := os.ReadFile(statePath(dir, mountpoint))
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return s, fmt.Errorf("state of %s: %w", mountpoint, err)
	}
	return s, nil
}

// RemoveState removes the state file of mountpoint, if it is pid's.
func RemoveState(dir, mountpoint string, pid int) {
	if s, err := ReadState(dir, mountpoint); err == nil && s.ServerPid == pid {
		os.Remove(statePath(dir, mountpoint))
	}
}
