package loadavg

import (
	"bufio"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/cgprocfs/cgprocfs/procfiles"
)

// The vectors come from testdata/kernelref.c, a C rendering of the kernel's
// arithmetic with its unsigned long types.
func readVectors(t *testing.T) [][]string {
	t.Helper()
	f, err := os.Open("testdata/kernel_vectors.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		out = append(out, strings.Fields(sc.Text()))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func u(t *testing.T, s string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestCalcLoadAgainstKernel(t *testing.T) {
	var steps, stepns int
	for _, v := range readVectors(t) {
		switch v[0] {
		case "step":
			steps++
			if got, want := CalcLoad(u(t, v[2]), u(t, v[1]), u(t, v[3])), u(t, v[4]); got != want {
				t.Errorf("CalcLoad(load %s, exp %s, active %s) = %d, kernel %d", v[2], v[1], v[3], got, want)
			}
		case "stepn":
			stepns++
			if got, want := CalcLoadN(u(t, v[2]), u(t, v[1]), u(t, v[3]), u(t, v[4])), u(t, v[5]); got != want {
				t.Errorf("CalcLoadN(load %s, exp %s, active %s, n %s) = %d, kernel %d", v[2], v[1], v[3], v[4], got, want)
			}
		}
	}
	if steps < 900 || stepns < 900 {
		t.Fatalf("only %d step and %d stepn vectors", steps, stepns)
	}
}

func TestFoldSequencesAgainstKernel(t *testing.T) {
	avgs := map[string]Avg{}
	n := 0
	for _, v := range readVectors(t) {
		if v[0] != "seq" {
			continue
		}
		n++
		name := v[1]
		a := avgs[name].Fold(u(t, v[3]), 1)
		avgs[name] = a
		want := Avg{u(t, v[4]), u(t, v[5]), u(t, v[6])}
		if a != want {
			t.Fatalf("%s step %s: averages %v, kernel %v", name, v[2], a, want)
		}
		// Printing is procfiles', but only these sequences reach loads
		// above 4.0, past its own vectors.
		s := procfiles.LoadAverages(a).Strings()
		if got := s[0] + "/" + s[1] + "/" + s[2]; got != v[7] {
			t.Fatalf("%s step %s: printed %s, kernel %s", name, v[2], got, v[7])
		}
	}
	if n < 3000 {
		t.Fatalf("only %d sequence vectors", n)
	}
}

// The spec's example: two busy threads for 40 s give 2(1-e^(-40/60)) = 0.97.
func TestTwoBusyThreadsFortySeconds(t *testing.T) {
	var a Avg
	for range 8 {
		a = a.Fold(2, 1)
	}
	if got := procfiles.LoadAverages(a).Strings()[0]; got != "0.97" {
		t.Fatalf("1-minute load after 40 s of 2 = %s, want 0.97", got)
	}
	want := 2 * (1 - math.Exp(-40.0/60))
	if f := a.Float()[0]; math.Abs(f-want) > 0.01 {
		t.Fatalf("1-minute load %f, formula %f", f, want)
	}
}

// A constant count is reached exactly, and a load decays to exactly zero:
// the kernel's rounding up on growth and truncation on decay.
func TestConvergesExactly(t *testing.T) {
	var a Avg
	for range 2000 {
		a = a.Fold(3, 1)
	}
	if a != (Avg{3 * Fixed1, 3 * Fixed1, 3 * Fixed1}) {
		t.Fatalf("after 2000 steps of 3: %v", a)
	}
	for range 5000 {
		a = a.Fold(0, 1)
	}
	if a != (Avg{}) {
		t.Fatalf("after 5000 idle steps: %v", a)
	}
}

// Folding n periods at once (a late sampler) stays within 1% (+0.05) of folding
// them one by one; the kernel accepts the same approximation for tickless
// CPUs.
func TestFoldNCloseToRepeated(t *testing.T) {
	for _, active := range []uint64{0, 1, 7, 100} {
		for _, n := range []uint64{2, 3, 12, 60, 720} {
			start := Avg{50 * Fixed1, 20 * Fixed1, 5 * Fixed1}
			one := start
			for range n {
				one = one.Fold(active, 1)
			}
			all := start.Fold(active, n)
			for i := range all {
				if d := math.Abs(float64(all[i]) - float64(one[i])); d > 0.01*float64(one[i])+0.05*Fixed1 {
					t.Errorf("active %d n %d avg %d: at once %d, one by one %d", active, n, i, all[i], one[i])
				}
			}
		}
	}
	if (Avg{1, 2, 3}).Fold(9, 0) != (Avg{1, 2, 3}) {
		t.Fatal("folding 0 periods changed the averages")
	}
}

func TestFixedPowerInt(t *testing.T) {
	if got := FixedPowerInt(Exp1, FShift, 0); got != Fixed1 {
		t.Fatalf("x^0 = %d", got)
	}
	if got := FixedPowerInt(Exp1, FShift, 1); got != Exp1 {
		t.Fatalf("x^1 = %d", got)
	}
	// e^(-5*12/60) = e^-1 ≈ 0.3679: 12 periods of the 1-minute factor.
	if got := float64(FixedPowerInt(Exp1, FShift, 12)) / Fixed1; math.Abs(got-math.Exp(-1)) > 0.005 {
		t.Fatalf("Exp1^12 = %f, want about e^-1", got)
	}
}
