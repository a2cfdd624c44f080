package procfiles

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestRenderLoadavgFixture(t *testing.T) {
	// The kernel's averages after two busy threads for 40 s (8 periods of
	// 5 s): loadavg/testdata/kernel_vectors.txt, "seq two 8".
	a := LoadAverages{1997, 516, 176}
	got := RenderLoadavg(Loadavg{Avg: a, Running: 2, Total: 23, LastPid: 117})
	want, err := os.ReadFile("testdata/loadavg-container")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	if pid, err := ParseLoadavgLastPid(got); err != nil || pid != 117 {
		t.Fatalf("last pid of our own output: %d, %v", pid, err)
	}
}

// Every value from 0 to 4.0 prints as the kernel prints it. The vectors
// come from loadavg/testdata/kernelref.c, a C rendering of the kernel's
// printing.
func TestLoadAveragesStringsExhaustive(t *testing.T) {
	f, err := os.Open("testdata/loadavg-format")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		v := strings.Fields(sc.Text())
		x, err := strconv.ParseUint(v[0], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		n++
		if got := (LoadAverages{x}).Strings()[0]; got != v[1] {
			t.Fatalf("value %s prints %s, kernel %s", v[0], got, v[1])
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n != 4*loadFixed1 {
		t.Fatalf("%d fmt vectors, want %d", n, 4*loadFixed1)
	}
}

func TestRenderUptimeFixture(t *testing.T) {
	got := RenderUptime(12_345_678_901, 20_569_999_999)
	want, err := os.ReadFile("testdata/uptime-container")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("got %q, want %q (truncated to centiseconds)", got, want)
	}
	if got := string(RenderUptime(-5, -1)); got != "0.00 0.00\n" {
		t.Fatalf("negative values render %q", got)
	}
	up, idle, err := ParseUptime(want)
	if err != nil || up != 12_340_000_000 || idle != 20_560_000_000 {
		t.Fatalf("ParseUptime = %d %d %v", up, idle, err)
	}
}

func TestParseUptimeErrors(t *testing.T) {
	for _, in := range []string{"", "1.00", "1 2", "1.0 2.00", "a.00 1.00", "1.00 2.00 3.00", "-1.00 2.00", "99999999999999.00 1.00"} {
		if _, _, err := ParseUptime([]byte(in)); err == nil {
			t.Errorf("ParseUptime(%q) accepted", in)
		}
	}
}

func FuzzParseUptime(f *testing.F) {
	f.Add([]byte("12.34 20.56\n"))
	f.Add([]byte("350735.47 234388.90\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		up, idle, err := ParseUptime(b)
		if err == nil && (up < 0 || idle < 0) {
			t.Fatalf("negative result %d %d", up, idle)
		}
	})
}

func FuzzParseLoadavgLastPid(f *testing.F) {
	f.Add([]byte("1.61 0.68 0.30 1/91 29122\n"))
	f.Add([]byte("0.00 0.00 0.00 0/0 0"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if pid, err := ParseLoadavgLastPid(b); err == nil && pid < 0 {
			t.Fatalf("negative pid %d", pid)
		}
	})
}

func TestParseLoadavgLastPidFields(t *testing.T) {
	for in, want := range map[string]int{
		"0.00 0.01 0.05 1/123 4567\n": 4567,
		"0.00 0.01 0.05 1/123\n":      -1,
		"0.00 0.01 0.05 1/123 45 6\n": -1,
		"0.00 0.01 0.05 1-123 4567\n": -1,
		"0.00 0.01 0.05 1/123 -4\n":   -1,
		"":                            -1,
	} {
		got, err := ParseLoadavgLastPid([]byte(in))
		if want < 0 && err == nil || want >= 0 && (err != nil || got != want) {
			t.Errorf("ParseLoadavgLastPid(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
}
