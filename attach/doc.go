// Package attach puts cgprocfs's files into containers' mount namespaces and
// mends them there: it binds every served file over the container's own
// (attach), removes those binds (detach), and, when a new daemon starts,
// replaces the binds that still point at a dead cgprocfs connection with
// binds of the live mount (re-attach), so that a crash or restart of the
// daemon never needs a container restart.
//
// A bind is cloned on the host side with open_tree(OPEN_TREE_CLONE) and moved
// into the container with move_mount from a thread that entered the
// container's mount namespace (kernel 5.2 and later). Such a thread is never
// given back to the Go scheduler: its goroutine ends locked, so the thread
// exits with it.
package attach
