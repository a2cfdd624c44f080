package provider

import "testing"

func TestParseNSpid(t *testing.T) {
	status := []byte("Name:\tsh\nTgid:\t4242\nPid:\t4242\nNSpid:\t4242\t17\t1\nVmPeak:\t1 kB\n")
	got, err := ParseNSpid(status)
	if err != nil || len(got) != 3 || got[0] != 4242 || got[1] != 17 || got[2] != 1 {
		t.Fatalf("ParseNSpid = %v, %v", got, err)
	}
	for _, bad := range []string{"", "Pid:\t1\n", "NSpid:\n", "NSpid:\tx\n", "NSpid:\t0\n"} {
		if _, err := ParseNSpid([]byte(bad)); err == nil {
			t.Errorf("ParseNSpid(%q) accepted", bad)
		}
	}
}

func FuzzParseNSpid(f *testing.F) {
	f.Add([]byte("Name:\tsh\nNSpid:\t4242\t17\t1\n"))
	f.Add([]byte("NSpid:\t1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ns, err := ParseNSpid(b)
		if err == nil && len(ns) == 0 {
			t.Fatal("no error and no pids")
		}
	})
}
