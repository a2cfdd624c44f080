package cgroupview

import "testing"

// The fuzz targets check that no input makes a parser of kernel files panic;
// their seeds run with the unit tests.

func FuzzParseFlatKeyed(f *testing.F) {
	f.Add([]byte("anon 1\nfile 2\n"))
	f.Add([]byte("total_rss 5\ntotal_rss_huge 6"))
	f.Add([]byte("key\n \n x 1"))
	f.Add([]byte("pgfault 98765\npswpin 1\nworkingset_refault_anon 120\nzswpwb 0\n"))
	f.Add([]byte("total_pgfault 3\ntotal_pgpgin 4\ntotal_swapcached 5\npgfault 6\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ParseFlatKeyed(data, func(string, uint64) {})
		ParseMemoryStatV1(data)
		ParseMemoryStatV2(data)
		ParseVMCountersV1(data)
		ParseVMCountersV2(data)
	})
}

func FuzzParseLimit(f *testing.F) {
	for _, s := range []string{"max\n", "9223372036854771712\n", "-1", "", "100"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ParseLimit(data)
		ParseUint(data)
	})
}

func FuzzParseProcCgroup(f *testing.F) {
	f.Add([]byte("12:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc/init.scope\n0::/x\n"))
	f.Add([]byte("0::/\n"))
	f.Add([]byte("0::/init.scope"))
	v1 := &Hierarchy{Root: "/r", Mode: Legacy, dirs: map[string]string{"memory": "/r/memory"}}
	v2 := &Hierarchy{Root: "/r", Mode: Unified}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, h := range []*Hierarchy{v1, v2} {
			c, err := ParseProcCgroup(h, data)
			if err == nil {
				c.ancestors("memory")
				c.Dir(MemoryResource)
			}
		}
	})
}
