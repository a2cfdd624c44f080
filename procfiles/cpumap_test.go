package procfiles

import (
	"errors"
	"testing"
)

func TestTranslateCPUFiles(t *testing.T) {
	// The container sees host CPUs 2, 3 and 8 as its CPUs 0, 1 and 2.
	m := NewCPUMap([]int{2, 3, 8})
	for _, tc := range []struct {
		name string
		fn   func([]byte, CPUMap) ([]byte, error)
		in   string
		want string
	}{
		{"list", TranslateCPUList, "0-15\n", "0-2\n"},
		{"list part", TranslateCPUList, "3,8-9\n", "1-2\n"},
		{"list none visible", TranslateCPUList, "0-1\n", "\n"},
		{"list empty", TranslateCPUList, "\n", "\n"},
		{"words", TranslateCPUWords, "2 3 4\n", "0 1\n"},
		{"words none", TranslateCPUWords, "0\n", "\n"},
		{"mask one word", TranslateCPUMask, "ffff\n", "0007\n"},
		{"mask two words", TranslateCPUMask, "00000001,00000108\n", "00000000,00000006\n"},
		{"mask 2 cpus", TranslateCPUMask, "3\n", "0\n"},
	} {
		got, err := tc.fn([]byte(tc.in), m)
		if err != nil || string(got) != tc.want {
			t.Errorf("%s: %q gives %q, %v; want %q", tc.name, tc.in, got, err, tc.want)
		}
	}
	// On a 2-CPU host a cpuset of CPU 1 shows as CPU 0.
	one := NewCPUMap([]int{1})
	if got, err := TranslateCPUMask([]byte("3\n"), one); err != nil || string(got) != "1\n" {
		t.Errorf("mask 3 for CPU 1: %q, %v", got, err)
	}
	if got, err := TranslateCPUList([]byte("0-1\n"), one); err != nil || string(got) != "0\n" {
		t.Errorf("list 0-1 for CPU 1: %q, %v", got, err)
	}
	if h, ok := one.Host(0); !ok || h != 1 {
		t.Errorf("Host(0) = %d, %v", h, ok)
	}
	if _, ok := one.Host(1); ok {
		t.Error("Host(1) of a 1-CPU map: ok")
	}
	if i, ok := one.Container(1); !ok || i != 0 {
		t.Errorf("Container(1) = %d, %v", i, ok)
	}
}

func TestTranslateCPUFilesBad(t *testing.T) {
	m := NewCPUMap([]int{0})
	for _, in := range []string{"x", "3-1", "0-99999999", "-1", "1,", "+1"} {
		if _, err := TranslateCPUList([]byte(in), m); !errors.Is(err, ErrBadCPUs) {
			t.Errorf("list %q: %v", in, err)
		}
	}
	for _, in := range []string{"", "g", "123456789", "1,,2", ","} {
		if _, err := TranslateCPUMask([]byte(in), m); !errors.Is(err, ErrBadCPUs) {
			t.Errorf("mask %q: %v", in, err)
		}
	}
	if _, err := TranslateCPUWords([]byte("0 x"), m); !errors.Is(err, ErrBadCPUs) {
		t.Errorf("words: %v", err)
	}
}

// The translations never panic and keep only CPUs the container has.
func FuzzTranslateCPUList(f *testing.F) {
	for _, s := range []string{"0-3\n", "0,2-3,8\n", "\n", "65535\n", "1-0"} {
		f.Add([]byte(s))
	}
	m := NewCPUMap([]int{1, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := TranslateCPUList(data, m)
		if err != nil {
			return
		}
		cpus, err := parseCPUList(out)
		if err != nil {
			t.Fatalf("output %q does not parse: %v", out, err)
		}
		for _, c := range cpus {
			if c >= m.Len() {
				t.Fatalf("%q gives CPU %d the container lacks", data, c)
			}
		}
	})
}

func FuzzTranslateCPUMask(f *testing.F) {
	for _, s := range []string{"3\n", "00000000,0000000f\n", "ffffffff,ffffffff,ffffffff\n", ",", "0"} {
		f.Add([]byte(s))
	}
	m := NewCPUMap([]int{0, 33})
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := TranslateCPUMask(data, m)
		if err != nil {
			return
		}
		if _, err := TranslateCPUMask(out, NewCPUMap([]int{0, 1})); err != nil {
			t.Fatalf("output %q of %q does not parse: %v", out, data, err)
		}
	})
}

func FuzzTranslateCPUWords(f *testing.F) {
	for _, s := range []string{"0 1 2 3\n", "\n", "7"} {
		f.Add([]byte(s))
	}
	m := NewCPUMap([]int{2})
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = TranslateCPUWords(data, m)
	})
}
