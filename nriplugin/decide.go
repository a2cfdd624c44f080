package nriplugin

import (
	"path"
	"slices"
	"strings"

	"github.com/containerd/nri/pkg/api"

	"github.com/cgprocfs/cgprocfs/ocihook"
)

// Policy is which containers get the files.
type Policy struct {
	// OptIn gives the files only to containers annotated
	// cgprocfs.io/enabled=true.
	OptIn bool
	// ExcludeNamespaces are Kubernetes namespaces whose pods never get the
	// files, whatever their annotations say.
	ExcludeNamespaces []string
}

// Decide says whether ctr of pod gets the files, and why. The container's
// annotations come first; the pod's (where Kubernetes puts a pod's
// metadata.annotations) are the fallback.
func (p Policy) Decide(pod *api.PodSandbox, ctr *api.Container) ocihook.Decision {
	if ns := pod.GetNamespace(); slices.Contains(p.ExcludeNamespaces, ns) {
		return ocihook.Decision{Reason: "namespace " + ns + " is excluded"}
	}
	return ocihook.Decide(ctr.GetAnnotations(), pod.GetAnnotations(), p.OptIn)
}

// specBindable tells whether a served file (relative to the mount point)
// can be bound by a container's spec. runc refuses every mount under /proc
// but over a few files (the ones lxcfs serves), so other /proc files have
// to be attached once the container runs; /sys takes binds anywhere.
func specBindable(rel string) bool {
	switch rel {
	case "proc/cpuinfo", "proc/diskstats", "proc/meminfo", "proc/stat", "proc/swaps", "proc/uptime", "proc/loadavg":
		return true
	}
	return strings.HasPrefix(rel, "sys/")
}

// Split divides the served files into those a spec can bind and the rest,
// which only attach can.
func Split(served []string) (spec, rest []string) {
	for _, rel := range served {
		if specBindable(rel) {
			spec = append(spec, rel)
		} else {
			rest = append(rest, rel)
		}
	}
	return spec, rest
}

// bindOptions make a spec bind read-only and inert.
func bindOptions() []string { return []string{"bind", "ro", "nosuid", "nodev", "noexec"} }

// SpecMounts are the bind mounts to add to a container whose spec has the
// mounts existing: one per file of spec (served files a spec can bind,
// relative to mountpoint) over the same path in the container. A file is
// left out, with a note, when the container does not mount the kernel's
// filesystem it lies in (a bind there would make the runtime create the
// path in the image, or fail), or when another mount covers it already (a
// volume or another tool's bind: theirs stays).
func SpecMounts(mountpoint string, spec []string, existing []*api.Mount) (mounts []*api.Mount, notes []string) {
	for _, entry := range spec {
		// A directory served whole ends in a slash (fs.ServedFiles).
		rel := strings.TrimSuffix(entry, "/")
		dest := "/" + rel
		base := "/" + strings.SplitN(rel, "/", 2)[0]
		if !hasMount(existing, base) {
			notes = append(notes, dest+": the container mounts no "+base)
			continue
		}
		if by := coveredBy(existing, base, dest); by != "" {
			notes = append(notes, dest+": left to the container's mount at "+by)
			continue
		}
		mounts = append(mounts, &api.Mount{
			Destination: dest,
			Type:        "bind",
			Source:      path.Join(mountpoint, rel),
			Options:     bindOptions(),
		})
	}
	return mounts, notes
}

func hasMount(mounts []*api.Mount, dest string) bool {
	for _, m := range mounts {
		if path.Clean(m.GetDestination()) == dest {
			return true
		}
	}
	return false
}

// coveredBy names a mount of existing that is dest or a directory above it
// below base, "" when none is.
func coveredBy(existing []*api.Mount, base, dest string) string {
	for _, m := range existing {
		d := path.Clean(m.GetDestination())
		if d == base {
			continue
		}
		if d == dest || strings.HasPrefix(dest, d+"/") {
			return d
		}
	}
	return ""
}
