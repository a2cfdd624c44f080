package provider

import (
	"path/filepath"

	"github.com/cgprocfs/cgprocfs/procfiles"
)

// hostMeminfo reads and parses the host's meminfo. The latest parse is kept
// on the Provider: the keys and layout never change while the host runs, so
// later opens only read the values (procfiles.ReparseMeminfo). The values
// are read afresh on every open.
func (p *Provider) hostMeminfo() (*procfiles.Meminfo, error) {
	buf := p.cfg.FS.GetBuf()
	defer p.cfg.FS.PutBuf(buf)
	raw, err := p.cfg.FS.ReadRecord(filepath.Join(p.cfg.ProcRoot, "meminfo"), buf)
	if err != nil {
		return nil, err
	}
	prev := p.meminfoLayout.Load()
	m, err := procfiles.ReparseMeminfo(prev, raw)
	if err != nil {
		return nil, err
	}
	if !sameLayout(prev, m) {
		p.meminfoLayout.Store(m)
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
