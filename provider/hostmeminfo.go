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
	if !m.SameLayout(prev) {
		p.meminfoLayout.Store(m)
	}
	return m, nil
}
