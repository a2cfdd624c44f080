package procfiles

import (
	"os"
	"testing"
)

func TestRenderDiskstats(t *testing.T) {
	vda, sda, sdb := Dev{Major: 254}, Dev{Major: 8}, Dev{Major: 8, Minor: 16}
	ctr := map[Dev]DiskCounters{
		// v2-like counters: no times.
		vda: DiskCountersFrom(DiskIO{ReadIOs: 10, WriteIOs: 128, DiscardIOs: 2,
			ReadBytes: 8478720, WriteBytes: 64 << 20, DiscardBytes: 1 << 20}),
		// bfq-like counters with times; the bytes are not a whole number
		// of sectors in discard: 1 MiB + 100 bytes rounds down.
		sda: DiskCountersFrom(DiskIO{ReadIOs: 50, WriteIOs: 80, DiscardIOs: 1,
			ReadBytes: 409600, WriteBytes: 819200, DiscardBytes: 1<<20 + 100,
			HasTimes: true, ReadNsec: 40_000_000, WriteNsec: 100_999_999, DiscardNsec: 5_000_000}),
		// A disk the host no longer lists is dropped.
		sdb: {1, 2, 3},
	}
	for _, k := range []string{"6.18", "4.19", "4.14"} {
		t.Run(k, func(t *testing.T) {
			raw, err := os.ReadFile("testdata/diskstats/host-" + k)
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile("testdata/diskstats/want-" + k)
			if err != nil {
				t.Fatal(err)
			}
			host, err := ParseDiskstats(raw)
			if err != nil {
				t.Fatal(err)
			}
			got := RenderDiskstats(host, ctr)
			if string(got) != string(want) {
				t.Errorf("got\n%s\nwant\n%s", got, want)
			}
			// The rendered file reads back with the host's shape.
			back, err := ParseDiskstats(got)
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range back {
				if len(l.Counters) != len(host[0].Counters) {
					t.Errorf("%s has %d counters, host lines %d", l.Name, len(l.Counters), len(host[0].Counters))
				}
			}
		})
	}
}

func TestRenderDiskstatsEmpty(t *testing.T) {
	host := loadHostDiskstats(t, "6.18")
	if got := RenderDiskstats(host, nil); len(got) != 0 {
		t.Errorf("a container without counters got %q, want an empty file", got)
	}
}

// A newer kernel's extra counters, which no cgroup source has, print as 0.
func TestRenderDiskstatsMoreCounters(t *testing.T) {
	host, err := ParseDiskstats([]byte(" 254       0 vda 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19\n"))
	if err != nil {
		t.Fatal(err)
	}
	got := string(RenderDiskstats(host, map[Dev]DiskCounters{{Major: 254}: {1, 0, 2}}))
	if want := " 254       0 vda 1 0 2 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestParseDiskstatsHost(t *testing.T) {
	host := loadHostDiskstats(t, "6.18")
	if len(host) != 6 {
		t.Fatalf("%d lines, want 6", len(host))
	}
	vda := host[3]
	if vda.Dev != (Dev{Major: 254}) || vda.Name != "vda" || len(vda.Counters) != 17 ||
		vda.Counters[DiskWriteSectors] != 3847472 || vda.Counters[DiskFlushTicks] != 122 {
		t.Errorf("vda parsed as %+v", vda)
	}
	if host[2].Name != "sda1" || host[2].Dev.Minor != 1 {
		t.Errorf("sda1 parsed as %+v", host[2])
	}
}

func TestParseDiskstatsErrors(t *testing.T) {
	for _, s := range []string{
		"8 0 sda 1 2 3",
		"8 0 sda 1 2 3 4 5 6 7 8 9 10 x",
		"x 0 sda 1 2 3 4 5 6 7 8 9 10 11",
		"8 -1 sda 1 2 3 4 5 6 7 8 9 10 11",
		"8 0 sda 1 2 3 4 5 6 7 8 9 10 -11",
	} {
		if got, err := ParseDiskstats([]byte(s)); err == nil {
			t.Errorf("ParseDiskstats(%q) = %+v, want an error", s, got)
		}
	}
}

func FuzzParseDiskstats(f *testing.F) {
	for _, k := range []string{"6.18", "4.19", "4.14"} {
		if raw, err := os.ReadFile("testdata/diskstats/host-" + k); err == nil {
			f.Add(raw)
		}
	}
	f.Add([]byte("8 0 sda 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		host, err := ParseDiskstats(data)
		if err != nil {
			return
		}
		ctr := map[Dev]DiskCounters{}
		for _, l := range host {
			ctr[l.Dev] = DiskCounters{1}
		}
		back, err := ParseDiskstats(RenderDiskstats(host, ctr))
		if err != nil {
			t.Fatalf("rendered file does not parse: %v", err)
		}
		if len(back) != len(host) {
			t.Fatalf("%d lines rendered from %d", len(back), len(host))
		}
	})
}

func TestRenderBlockStat(t *testing.T) {
	c := DiskCounters{56469, 9959, 2607218, 19874, 24648, 34845, 7921352, 32560, 0, 7108, 53980, 19115, 33, 5250096, 1422, 4160, 122}
	// As this host's kernel printed /sys/block/vda/stat.
	want := "   56469     9959  2607218    19874    24648    34845  7921352    32560        0     7108    53980    19115       33  5250096     1422     4160      122\n"
	if got := string(RenderBlockStat(c, 17)); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	if got, want := string(RenderBlockStat(c, 11)), want[:11*9-1]+"\n"; got != want {
		t.Errorf("11 counters: got %q, want %q", got, want)
	}
	if got := string(RenderBlockStat(DiskCounters{}, 18)); len(got) != 18*9 {
		t.Errorf("18 counters: %q", got)
	}
}

// loadHostDiskstats parses the fixture host file of a kernel version.
func loadHostDiskstats(t *testing.T, kernel string) []DiskstatsLine {
	t.Helper()
	raw, err := os.ReadFile("testdata/diskstats/host-" + kernel)
	if err != nil {
		t.Fatal(err)
	}
	host, err := ParseDiskstats(raw)
	if err != nil {
		t.Fatal(err)
	}
	return host
}
