// Package caller answers who is asking: it maps the thread id FUSE reports
// to the container it belongs to (the init of its pid namespace) and to the
// cgroup whose view that container gets.
package caller
