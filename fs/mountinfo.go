package fs

import (
	"fmt"
	"strings"

	"github.com/prometheus/procfs"
)

// mountedAt tells whether a cgprocfs filesystem is mounted at mountpoint, an
// absolute path, in the mount namespace whose mountinfo procRoot's
// self/mountinfo holds ("/proc" for this process's own).
func mountedAt(procRoot, mountpoint string) (bool, error) {
	proc, err := procfs.NewFS(procRoot)
	if err != nil {
		return false, fmt.Errorf("reading mounts: %w", err)
	}
	mounts, err := proc.GetMounts()
	if err != nil {
		return false, fmt.Errorf("reading mounts: %w", err)
	}
	for _, m := range mounts {
		if m.FSType == FSType && unescapeMountinfo(m.MountPoint) == mountpoint {
			return true, nil
		}
	}
	return false, nil
}

// unescapeMountinfo undoes the octal escapes the kernel writes in mountinfo
// for a space, tab, newline or backslash in a path (\040, \011, \012, \134);
// procfs hands mount points over still escaped.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	octal := func(c byte) bool { return c >= '0' && c <= '7' }
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		// Three octal digits, the first at most 3 so the value is a byte.
		if s[i] == '\\' && i+3 < len(s) && s[i+1] >= '0' && s[i+1] <= '3' && octal(s[i+2]) && octal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
