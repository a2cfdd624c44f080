package provider

import (
	"path/filepath"
	"sync"

	"github.com/cgprocfs/cgprocfs/cgroupview"
	"github.com/cgprocfs/cgprocfs/procfiles"
)

// lastMeminfo keeps the latest parse of each proc root's meminfo: its keys
// and layout never change while the host runs, so later opens only read
// the values (procfiles.ReparseMeminfo). The values are read afresh on
// every open.
var lastMeminfo sync.Map // proc root -> *procfiles.Meminfo

var meminfoBufs = sync.Pool{New: func() any { b := make([]byte, 8192); return &b }}

// hostMeminfo reads and parses the host's meminfo.
func (p *Provider) hostMeminfo() (*procfiles.Meminfo, error) {
	buf := meminfoBufs.Get().(*[]byte)
	defer meminfoBufs.Put(buf)
	raw, err := cgroupview.ReadFileInto(filepath.Join(p.cfg.ProcRoot, "meminfo"), buf)
	if err != nil {
		return nil, err
	}
	var prev *procfiles.Meminfo
	if v, ok := lastMeminfo.Load(p.cfg.ProcRoot); ok {
		prev = v.(*procfiles.Meminfo)
	}
	m, err := procfiles.ReparseMeminfo(prev, raw)
	if err != nil {
		return nil, err
	}
	if !sameLayout(prev, m) {
		lastMeminfo.Store(p.cfg.ProcRoot, m)
	}
	return m, nil
}

// sameLayout tells whether two parses have the same keys in the same order.
func sameLayout(a, b *procfiles.Meminfo) bool {
	if a == nil || b == nil || len(a.Lines) != len(b.Lines) {
		return false
	}
	for i := range a.Lines {
		if a.Lines[i].Key != b.Lines[i].Key || a.Lines[i].Suffix != b.Lines[i].Suffix {
			return false
		}
	}
	return true
}
