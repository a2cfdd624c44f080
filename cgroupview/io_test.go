package cgroupview

import (
	"reflect"
	"testing"
)

func TestReadIO(t *testing.T) {
	v1, err := Detect("testdata/io-v1")
	if err != nil {
		t.Fatal(err)
	}
	v2, err := Detect("testdata/io-v2")
	if err != nil {
		t.Fatal(err)
	}
	vda, sda, sdb, sdc := Dev{254, 0}, Dev{8, 0}, Dev{8, 16}, Dev{8, 32}
	cases := []struct {
		name    string
		h       *Hierarchy
		path    string
		want    IO
		wantErr bool
	}{
		{
			name: "v1 throttle counters per device, Sync/Async/Total and the sum line ignored",
			h:    v1, path: "/thr",
			want: IO{
				vda: {ReadIOs: 10, WriteIOs: 16, DiscardIOs: 2, ReadBytes: 8478720, WriteBytes: 8388608, DiscardBytes: 8388608},
				sdb: {ReadIOs: 3, ReadBytes: 12288},
			},
		},
		{
			// 8:0 uses bfq: its bfq counters win over throttle's, and
			// its times are service plus wait; 8:32's bfq entry is all
			// zero and stays; 254:0 only has throttle counters.
			name: "v1 bfq where the device uses bfq, throttle elsewhere",
			h:    v1, path: "/bfq",
			want: IO{
				sda: {ReadIOs: 50, WriteIOs: 80, DiscardIOs: 1, ReadBytes: 409600, WriteBytes: 819200, DiscardBytes: 1048576,
					HasTimes: true, ReadNsec: 40000000, WriteNsec: 100000000, DiscardNsec: 5000000},
				sdc: {},
				vda: {ReadIOs: 1, WriteIOs: 2, ReadBytes: 4096, WriteBytes: 8192},
			},
		},
		{name: "v1 quiet cgroup has no devices", h: v1, path: "/quiet", want: IO{}},
		{name: "v1 cgroup without blkio files has no devices", h: v1, path: "/", want: IO{}},
		{name: "v1 malformed value", h: v1, path: "/bad", wantErr: true},
		{
			name: "v2 io.stat with iocost and iolatency keys",
			h:    v2, path: "/ctr",
			want: IO{
				vda: {ReadIOs: 10, WriteIOs: 128, DiscardIOs: 2, ReadBytes: 8478720, WriteBytes: 67108864, DiscardBytes: 1048576},
				sda: {ReadIOs: 1, ReadBytes: 4096},
			},
		},
		{name: "v2 io controller not enabled: no io.stat, no devices", h: v2, path: "/noio", want: IO{}},
		{name: "v2 malformed key", h: v2, path: "/bad", wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ioOf(t, NewCgroup(tc.h, tc.path))
			if tc.wantErr {
				if err == nil {
					t.Fatalf("got %v, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestV1BlkioNotMounted(t *testing.T) {
	h := &Hierarchy{Root: "/nonexistent", Mode: Legacy, dirs: map[string]string{"memory": "/nonexistent/memory"}}
	got, err := ioOf(t, &Cgroup{h: h, v1: map[string]string{"memory": "/x"}})
	if err != nil || len(got) != 0 {
		t.Fatalf("got %v, %v; want no devices and no error", got, err)
	}
}

func TestParseDev(t *testing.T) {
	for _, s := range []string{"", "1", ":", "1:", ":1", "a:1", "1:-1", "4294967296:0", "1:2:3"} {
		if d, err := ParseDev(s); err == nil {
			t.Errorf("ParseDev(%q) = %v, want an error", s, d)
		}
	}
	if d, err := ParseDev("259:12"); err != nil || d != (Dev{259, 12}) || d.String() != "259:12" {
		t.Errorf("ParseDev(259:12) = %v, %v", d, err)
	}
}

func TestParseIOStatV2Errors(t *testing.T) {
	for _, s := range []string{
		"254:0 rbytes=x",
		"254:0 =1",
		"vda rbytes=1",
		"254:0 rbytes=1\n254:0 rbytes=2",
		"254:0 wios=-1",
	} {
		if io, err := ParseIOStatV2([]byte(s)); err == nil {
			t.Errorf("ParseIOStatV2(%q) = %v, want an error", s, io)
		}
	}
}

func TestParseBlkioRWStatErrors(t *testing.T) {
	for _, s := range []string{"254:0 Read", "254:0 Read 1 2", "x Read 1", "254:0 Read -1", "Total x y"} {
		if m, err := ParseBlkioRWStat([]byte(s)); err == nil {
			t.Errorf("ParseBlkioRWStat(%q) = %v, want an error", s, m)
		}
	}
}
