package procfiles

import (
	"bytes"
	"fmt"
	"strconv"
)

// RenderUptime prints uptime and idle time, given in nanoseconds, as the
// kernel does: seconds with two decimals, truncated ("%lu.%02lu %lu.%02lu\n").
// Negative values print as 0.
func RenderUptime(uptime, idle int64) []byte {
	return fmt.Appendf(nil, "%s %s\n", centis(uptime), centis(idle))
}

func centis(ns int64) string {
	if ns < 0 {
		ns = 0
	}
	cs := ns / 1e7
	return fmt.Sprintf("%d.%02d", cs/100, cs%100)
}

// ParseUptime parses a /proc/uptime line into nanoseconds.
func ParseUptime(data []byte) (uptime, idle int64, err error) {
	f := bytes.Fields(data)
	if len(f) != 2 {
		return 0, 0, fmt.Errorf("malformed uptime %q: want 2 fields", data)
	}
	if uptime, err = parseCentis(f[0]); err != nil {
		return 0, 0, err
	}
	if idle, err = parseCentis(f[1]); err != nil {
		return 0, 0, err
	}
	return uptime, idle, nil
}

// parseCentis parses "SECONDS.CC" into nanoseconds.
func parseCentis(b []byte) (int64, error) {
	i := bytes.IndexByte(b, '.')
	if i <= 0 || len(b)-i-1 != 2 {
		return 0, fmt.Errorf("malformed uptime value %q", b)
	}
	s, err := strconv.ParseUint(string(b[:i]), 10, 63)
	if err != nil || s > 1<<33 {
		return 0, fmt.Errorf("malformed uptime value %q", b)
	}
	c, err := strconv.ParseUint(string(b[i+1:]), 10, 8)
	if err != nil {
		return 0, fmt.Errorf("malformed uptime value %q", b)
	}
	return int64(s)*1e9 + int64(c)*1e7, nil
}
