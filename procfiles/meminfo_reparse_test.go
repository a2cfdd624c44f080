package procfiles

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// ReparseMeminfo must give exactly what ParseMeminfo gives, whatever the
// earlier parse it starts from.
func checkReparse(t *testing.T, prevData, data []byte) {
	t.Helper()
	prev, err := ParseMeminfo(prevData)
	if err != nil {
		prev = nil
	}
	got, gotErr := ReparseMeminfo(prev, data)
	want, wantErr := ParseMeminfo(data)
	if (gotErr != nil) != (wantErr != nil) {
		t.Fatalf("ReparseMeminfo error %v, ParseMeminfo error %v", gotErr, wantErr)
	}
	if wantErr != nil {
		return
	}
	if !reflect.DeepEqual(got.Lines(), want.Lines()) {
		t.Fatalf("ReparseMeminfo lines differ:\n got %+v\nwant %+v", got.Lines(), want.Lines())
	}
	if !got.SameLayout(want) {
		t.Fatal("ReparseMeminfo and ParseMeminfo give different layouts")
	}
	for _, l := range want.Lines() {
		if v, ok := got.Get(l.Key); !ok || v != l.Value {
			t.Fatalf("Get(%q) = %d, %v; want %d", l.Key, v, ok, l.Value)
		}
	}
	if string(got.Bytes()) != string(want.Bytes()) {
		t.Fatalf("rendering differs")
	}
}

func TestReparseMeminfo(t *testing.T) {
	host, err := os.ReadFile("testdata/meminfo-host")
	if err != nil {
		t.Fatal(err)
	}
	swap, err := os.ReadFile("testdata/meminfo-swap")
	if err != nil {
		t.Fatal(err)
	}
	changed := strings.Replace(string(host), "MemFree:", "MemFree:  ", 1) // wider field
	cases := map[string][2]string{
		"same layout":     {string(host), strings.Replace(string(host), "MemFree:", "MemFree:1", 1)},
		"other host":      {string(host), string(swap)},
		"wider field":     {string(host), changed},
		"line dropped":    {string(host), string(host[strings.IndexByte(string(host), '\n')+1:])},
		"line added":      {string(host), string(host) + "Extra:   5 kB\n"},
		"unit lost":       {string(host), strings.Replace(string(host), " kB\n", "\n", 1)},
		"unit gained":     {"A: 1\nB: 2 kB\n", "A: 1 kB\nB: 2 kB\n"},
		"bad value":       {string(host), strings.Replace(string(host), "MemFree:", "MemFree: x", 1)},
		"no prev":         {"", string(host)},
		"empty":           {string(host), ""},
		"key renamed":     {"A: 1\n", "B: 1\n"},
		"key prefix":      {"Active: 1\n", "Active(anon): 1\n"},
		"no final eol":    {"A: 1\nB: 2", "A: 3\nB: 4"},
		"duplicate added": {"A: 1\n", "A: 1\nA: 2\n"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) { checkReparse(t, []byte(c[0]), []byte(c[1])) })
	}
}

func FuzzReparseMeminfo(f *testing.F) {
	host, err := os.ReadFile("testdata/meminfo-host")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(host, host)
	f.Add(host, []byte(strings.Replace(string(host), "MemFree:", "MemFree:  1", 1)))
	f.Add([]byte("A: 1 kB\nB: 2\n"), []byte("A: 3 kB\nB: 4 kB\n"))
	f.Add([]byte("A: 1\n"), []byte("A: 99999999999999999999\n"))
	f.Fuzz(func(t *testing.T, prev, data []byte) { checkReparse(t, prev, data) })
}
