package kernelfs

import (
	"fmt"
	"strings"

	"github.com/prometheus/procfs"
)

// Mount is one line of a mountinfo file, with its paths unescaped.
type Mount struct {
	// Dev is the major:minor of the filesystem's superblock.
	Dev string
	// Root is the path in the filesystem that is mounted; MountPoint is
	// where, as the reading process sees it.
	Root, MountPoint string
	FSType           string
	// Source is the filesystem's source (its "device").
	Source string
}

// Mounts reads the mount table of pid's mount namespace
// (/proc/<pid>/mountinfo) with prometheus/procfs: read at start and on
// attach, never per open.
func (fs *FS) Mounts(pid int) ([]Mount, error) {
	proc, err := procfs.NewFS(fs.Proc)
	if err != nil {
		return nil, err
	}
	p, err := proc.Proc(pid)
	if err != nil {
		return nil, err
	}
	infos, err := p.MountInfo()
	if err != nil {
		return nil, fmt.Errorf("mounts of pid %d: %w", pid, err)
	}
	out := make([]Mount, len(infos))
	for i, m := range infos {
		out[i] = Mount{Dev: m.MajorMinorVer, Root: UnescapeMountinfo(m.Root), MountPoint: UnescapeMountinfo(m.MountPoint), FSType: m.FSType, Source: UnescapeMountinfo(m.Source)}
	}
	return out, nil
}

// UnescapeMountinfo undoes the octal escapes the kernel writes in mountinfo
// for a space, tab, newline or backslash in a path (\040, \011, \012, \134);
// procfs hands paths over still escaped.
func UnescapeMountinfo(s string) string {
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
