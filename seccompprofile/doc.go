// Package seccompprofile makes the seccomp profile that sends a
// container's sysinfo(2) to cgprocfs's seccomp agent: a base profile (the
// runtime-spec's linux.seccomp, or the profile format of containers-common
// and docker, which adds archMap, includes, excludes and comments) with
// sysinfo taken out of every rule, one SCMP_ACT_NOTIFY rule for it, and
// the agent's socket as listenerPath. Every other field of the base is
// kept as it was, so a profile meant for podman or docker stays one.
package seccompprofile
