// Package ocihook is the OCI runtime hook that binds cgprocfs's files into a
// container as it is created, so that no one has to list them by hand.
//
// It runs at the createContainer stage: in the container's mount namespace,
// after the runtime made the mounts of config.json (the container's /proc
// and /sys among them) and before pivot_root, so the container's files are
// still reached through the host path of its rootfs. It bind-mounts every
// file the mount at the given mount point serves over the file of the same
// path in the rootfs, read-only, when that file exists there.
//
// Nothing here may stop a container from starting: a mount point with no
// live cgprocfs, an annotation that turns it off, or a target missing from
// the rootfs bind nothing, and Run reports why rather than failing.
package ocihook
