package cgroupview

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
)

// ParseIOStatV2 parses a v2 io.stat file, one line per device:
//
//	254:0 rbytes=1851986 wbytes=3847472 rios=44408 wios=21030 dbytes=0 dios=0
//
// Keys other than the six byte and I/O counters (iocost's cost.*, iolatency's
// depth=, avg_lat=, ...) are skipped without parsing their values, which are
// not all integers.
func ParseIOStatV2(data []byte) (IO, error) {
	out := IO{}
	for n, line := range bytes.Split(data, []byte{'\n'}) {
		f := bytes.Fields(line)
		if len(f) == 0 {
			continue
		}
		dev, err := ParseDev(string(f[0]))
		if err != nil {
			return nil, fmt.Errorf("io.stat line %d: %w", n+1, err)
		}
		var d DeviceIO
		for _, kv := range f[1:] {
			eq := bytes.IndexByte(kv, '=')
			if eq <= 0 {
				return nil, fmt.Errorf("io.stat line %d: malformed key=value %q", n+1, kv)
			}
			var dst *uint64
			switch string(kv[:eq]) {
			case "rbytes":
				dst = &d.ReadBytes
			case "wbytes":
				dst = &d.WriteBytes
			case "dbytes":
				dst = &d.DiscardBytes
			case "rios":
				dst = &d.ReadIOs
			case "wios":
				dst = &d.WriteIOs
			case "dios":
				dst = &d.DiscardIOs
			default:
				continue
			}
			if *dst, err = strconv.ParseUint(string(kv[eq+1:]), 10, 64); err != nil {
				return nil, fmt.Errorf("io.stat line %d: %q: %w", n+1, kv, err)
			}
		}
		if _, dup := out[dev]; dup {
			return nil, fmt.Errorf("io.stat line %d: device %s listed twice", n+1, dev)
		}
		out[dev] = d
	}
	return out, nil
}

// readIOV2 reads io.stat, which is hierarchical: it includes descendants.
// It is absent where the io controller is not enabled for the cgroup; the
// cgroup's I/O is then charged to an ancestor and cannot be told apart, so
// the cgroup has no counters.
func (r v2Reader) IO(c *Cgroup) (IO, error) {
	dir, err := c.dir("io")
	if err != nil {
		return nil, err
	}
	data, err := r.readFile(dir + "/io.stat")
	if errors.Is(err, os.ErrNotExist) {
		return IO{}, nil
	}
	if err != nil {
		return nil, err
	}
	io, err := ParseIOStatV2(data)
	if err != nil {
		return nil, fmt.Errorf("%s/io.stat: %w", dir, err)
	}
	return io, nil
}
