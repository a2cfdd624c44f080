package procfiles

import (
	"os"
	"testing"
)

// Parsing and rendering give back the kernel's bytes, whatever its lines:
// 6.18's /proc/pressure/cpu has a full line of zeros (CPU full is undefined
// for the whole system), 5.10's none, a cgroup's cpu.pressure a real one.
func TestPressureRoundTrip(t *testing.T) {
	for _, name := range []string{"host-cpu-6.18", "host-memory-6.18", "host-cpu-5.10", "cgroup-cpu"} {
		raw, err := os.ReadFile("testdata/pressure/" + name)
		if err != nil {
			t.Fatal(err)
		}
		p, err := ParsePressure(raw)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := RenderPressure(p); string(got) != string(raw) {
			t.Errorf("%s: rendered %q, want %q", name, got, raw)
		}
	}
	raw, _ := os.ReadFile("testdata/pressure/cgroup-cpu")
	p, _ := ParsePressure(raw)
	if want := (PressureLine{Kind: "some", Avg10: 1234, Avg60: 506, Avg300: 10000, Total: 987654321}); p.Lines[0] != want {
		t.Errorf("parsed %+v, want %+v", p.Lines[0], want)
	}
}

func TestPressureZero(t *testing.T) {
	for name, want := range map[string]string{
		"host-cpu-6.18": "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
		"host-cpu-5.10": "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
	} {
		raw, err := os.ReadFile("testdata/pressure/" + name)
		if err != nil {
			t.Fatal(err)
		}
		p, err := ParsePressure(raw)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(RenderPressure(p.Zero())); got != want {
			t.Errorf("%s zeroed: %q, want %q", name, got, want)
		}
	}
}

func TestParsePressureMalformed(t *testing.T) {
	for _, in := range []string{"", "\n", "some avg10=1.0 avg60=0.00 avg300=0.00 total=0\n", "half avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
		"some avg60=0.00 avg10=0.00 avg300=0.00 total=0\n", "some avg10=0.00 avg60=0.00 avg300=0.00\n", "some avg10=0.00 avg60=0.00 avg300=0.00 total=-1\n",
		"some avg10=a.00 avg60=0.00 avg300=0.00 total=0\n", "some avg10=0.+1 avg60=0.00 avg300=0.00 total=0\n"} {
		if p, err := ParsePressure([]byte(in)); err == nil {
			t.Errorf("%q parsed as %+v, want an error", in, p)
		}
	}
}

func FuzzParsePressure(f *testing.F) {
	for _, name := range []string{"host-cpu-6.18", "host-cpu-5.10", "cgroup-cpu"} {
		if b, err := os.ReadFile("testdata/pressure/" + name); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("full avg10=99999.99 avg60=0.00 avg300=0.00 total=18446744073709551615"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePressure(data)
		if err != nil {
			return
		}
		// What parses renders to something that parses the same.
		q, err := ParsePressure(RenderPressure(p))
		if err != nil || len(q.Lines) != len(p.Lines) {
			t.Fatalf("%q: re-parse of the render: %+v, %v", data, q, err)
		}
		for i := range p.Lines {
			if p.Lines[i] != q.Lines[i] {
				t.Fatalf("%q: %+v re-parsed as %+v", data, p.Lines[i], q.Lines[i])
			}
		}
	})
}
