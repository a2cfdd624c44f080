package cgroupview

import "testing"

func FuzzParseBlkioRWStat(f *testing.F) {
	f.Add([]byte("254:0 Read 10\n254:0 Write 16\n254:0 Sync 28\n254:0 Async 0\n254:0 Discard 2\n254:0 Total 28\nTotal 28\n"))
	f.Add([]byte("Total 0\n"))
	f.Add([]byte("8:0 Frob 1\n:0 Read 1"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseBlkioRWStat(data)
		if err == nil {
			joinIOV1(m, m, m, m, m, m)
		}
	})
}

func FuzzParseIOStatV2(f *testing.F) {
	f.Add([]byte("254:0 rbytes=8478720 wbytes=67108864 rios=10 wios=128 dbytes=0 dios=0 cost.vrate=100.00\n"))
	f.Add([]byte("8:0 rbytes=1 depth=max avg_lat=3 win=100\n"))
	f.Add([]byte("8:0 =\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ParseIOStatV2(data)
	})
}
