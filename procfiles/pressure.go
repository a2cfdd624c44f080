package procfiles

import (
	"bytes"
	"fmt"
	"strconv"
)

// Pressure is a parsed pressure stall information file: /proc/pressure/*
// or a cgroup's cpu.pressure, memory.pressure or io.pressure.
type Pressure struct {
	Lines []PressureLine
}

// PressureLine is one "some" or "full" line. The averages are percentages
// in hundredths (the kernel prints two decimals), Total the stalled time
// in microseconds.
type PressureLine struct {
	Kind                 string
	Avg10, Avg60, Avg300 uint64
	Total                uint64
}

// ParsePressure parses a pressure file:
//
//	some avg10=0.00 avg60=0.00 avg300=0.00 total=0
//	full avg10=0.00 avg60=0.00 avg300=0.00 total=0
func ParsePressure(data []byte) (Pressure, error) {
	var p Pressure
	for n, line := range bytes.Split(data, []byte{'\n'}) {
		f := bytes.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 5 || (string(f[0]) != "some" && string(f[0]) != "full") {
			return Pressure{}, fmt.Errorf("pressure line %d: malformed %q", n+1, line)
		}
		l := PressureLine{Kind: string(f[0])}
		for i, dst := range []*uint64{&l.Avg10, &l.Avg60, &l.Avg300, &l.Total} {
			key := [...]string{"avg10=", "avg60=", "avg300=", "total="}[i]
			v, ok := bytes.CutPrefix(f[i+1], []byte(key))
			if !ok {
				return Pressure{}, fmt.Errorf("pressure line %d: want %s in %q", n+1, key, line)
			}
			var err error
			if i < 3 {
				*dst, err = parseHundredths(v)
			} else {
				*dst, err = strconv.ParseUint(string(v), 10, 64)
			}
			if err != nil {
				return Pressure{}, fmt.Errorf("pressure line %d: %s: %w", n+1, key, err)
			}
		}
		p.Lines = append(p.Lines, l)
	}
	if len(p.Lines) == 0 {
		return Pressure{}, fmt.Errorf("pressure: empty")
	}
	return p, nil
}

// parseHundredths parses the kernel's "%lu.%02lu".
func parseHundredths(b []byte) (uint64, error) {
	whole, frac, ok := bytes.Cut(b, []byte{'.'})
	if !ok || len(frac) != 2 {
		return 0, fmt.Errorf("malformed average %q", b)
	}
	w, err1 := strconv.ParseUint(string(whole), 10, 32)
	f, err2 := strconv.ParseUint(string(frac), 10, 8)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("malformed average %q", b)
	}
	return w*100 + f, nil
}

// Zero is the file with the same lines and every value 0: what a
// container with no per-cgroup source of pressure sees.
func (p Pressure) Zero() Pressure {
	z := Pressure{Lines: make([]PressureLine, len(p.Lines))}
	for i, l := range p.Lines {
		z.Lines[i] = PressureLine{Kind: l.Kind}
	}
	return z
}

// RenderPressure renders the file in the kernel's layout (psi_show):
// "%s avg10=%lu.%02lu avg60=%lu.%02lu avg300=%lu.%02lu total=%llu".
func RenderPressure(p Pressure) []byte {
	b := make([]byte, 0, 64*len(p.Lines))
	for _, l := range p.Lines {
		b = append(b, l.Kind...)
		for i, v := range [...]uint64{l.Avg10, l.Avg60, l.Avg300} {
			b = append(b, [...]string{" avg10=", " avg60=", " avg300="}[i]...)
			b = strconv.AppendUint(b, v/100, 10)
			b = append(b, '.', byte('0'+v%100/10), byte('0'+v%10))
		}
		b = append(b, " total="...)
		b = strconv.AppendUint(b, l.Total, 10)
		b = append(b, '\n')
	}
	return b
}
