package provider

import (
	"context"
	"strings"
)

// Content is how file ("proc/meminfo", "sys/devices/system/cpu/online":
// also a file under a served directory) is built for a caller, as the tree
// builds it; nil when nothing serves it. For cgprocfs show and Explain.
func (p *Provider) Content(file string) func(context.Context, uint32) ([]byte, error) {
	for _, f := range p.Files() {
		if f.Path == file && f.Content != nil {
			return f.Content
		}
		if rel, ok := strings.CutPrefix(file, f.Path+"/"); ok && f.Dir != nil {
			dir := f.Dir
			return func(ctx context.Context, pid uint32) ([]byte, error) {
				return dir.Content(ctx, pid, rel)
			}
		}
	}
	return nil
}
