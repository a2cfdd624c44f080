package nriplugin

import (
	"github.com/cgprocfs/cgprocfs/attach"
	cgfs "github.com/cgprocfs/cgprocfs/fs"
	"github.com/cgprocfs/cgprocfs/ocihook"
)

// LiveMount is the cgprocfs mount an Attacher binds from.
type LiveMount struct {
	Attacher *attach.Attacher
}

// Mountpoint is the attacher's mount point.
func (m LiveMount) Mountpoint() string { return m.Attacher.Mountpoint }

// Serving tells whether a live cgprocfs answers at the mount point.
func (m LiveMount) Serving() (bool, string, error) { return ocihook.Serving(m.Attacher.Mountpoint) }

// Files lists what the mount serves.
func (m LiveMount) Files() ([]string, error) { return cgfs.ServedFiles(m.Attacher.Mountpoint) }

// Attach binds every served file into pid's container.
func (m LiveMount) Attach(pid int) (attach.Result, error) { return m.Attacher.Attach(pid) }
