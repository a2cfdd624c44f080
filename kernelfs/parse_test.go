package kernelfs

import "testing"

func TestParsePidStat(t *testing.T) {
	st, err := parsePidStat([]byte("1234 (a (weird) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 100 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n"))
	if err != nil {
		t.Fatal(err)
	}
	if st.State != 'S' || st.PPid != 1 || st.StartTime != 98765 || st.Flags != 4194560 || st.Exiting() {
		t.Errorf("got %+v", st)
	}
	if _, err := parsePidStat([]byte("1 (x) S 0")); err == nil {
		t.Error("short stat: no error")
	}
}

func TestParseNSLink(t *testing.T) {
	if v, err := parseNSLink([]byte("pid:[4026531836]")); err != nil || v != 4026531836 {
		t.Errorf("got %d %v", v, err)
	}
	for _, bad := range []string{"", "pid:", "pid:[]", "pid:[x]", "[", "pid:[1"} {
		if _, err := parseNSLink([]byte(bad)); err == nil {
			t.Errorf("parseNSLink(%q): no error", bad)
		}
	}
}

func TestParseStatState(t *testing.T) {
	for in, want := range map[string]byte{
		"1 (sh) S 0 1 1":            'S',
		"7 (a) b) (c) R 1 2 3":      'R',
		"9 (x y) D 1":               'D',
		"12 ()) T 1 2 3 4 5 6 7 8 ": 'T',
	} {
		if got, err := parseStatState([]byte(in)); err != nil || got != want {
			t.Errorf("parseStatState(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "1 (sh", "1 (sh)", "1 (sh) ", "1 (sh)S", "1 (sh) \x00"} {
		if _, err := parseStatState([]byte(bad)); err == nil {
			t.Errorf("parseStatState(%q) accepted", bad)
		}
	}
}

func TestParseTids(t *testing.T) {
	got, err := ParseTids([]byte("1\n42\n\n7"), nil)
	if err != nil || len(got) != 3 || got[0] != 1 || got[1] != 42 || got[2] != 7 {
		t.Fatalf("ParseTids = %v, %v", got, err)
	}
	for _, bad := range []string{"x\n", "-1\n", "0\n", "1 2\n"} {
		if _, err := ParseTids([]byte(bad), nil); err == nil {
			t.Errorf("ParseTids(%q) accepted", bad)
		}
	}
}
