// Package nriplugin is cgprocfs's NRI plugin (containerd's Node Resource
// Interface): it puts the mount's files into every container that
// containerd (or CRI-O) creates for Kubernetes, with nothing to list in
// the pods.
//
// At CreateContainer it adds read-only bind mounts to the container's spec
// for the files a spec can bind: the /proc files runc allows as bind
// destinations and the /sys files. The runtime then makes them with the
// container's other mounts, before its first instruction runs. The files a
// spec cannot take (other /proc files, which runc refuses) are bound at
// StartContainer, from the host, by package attach: the container's init
// exists then, waiting to exec. At Synchronize (when the plugin connects)
// it attaches into the containers already running.
//
// Nothing here may stop a container from starting: every handler logs its
// failures and answers with no adjustment, and the daemon serves its mount
// whether or not an NRI socket exists.
package nriplugin
