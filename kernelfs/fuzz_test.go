package kernelfs

import "testing"

func FuzzParsePidStat(f *testing.F) {
	f.Add([]byte("1234 (a (weird) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 100 1 1 1"))
	f.Add([]byte("1 ()) R 0"))
	f.Fuzz(func(t *testing.T, data []byte) {
		parsePidStat(data)
	})
}

func FuzzParseNSLink(f *testing.F) {
	f.Add([]byte("pid:[4026531836]"))
	f.Add([]byte("[]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		parseNSLink(data)
	})
}

func FuzzParseSchedWait(f *testing.F) {
	f.Add([]byte("123456 7890 12\n"))
	f.Add([]byte("1"))
	f.Fuzz(func(t *testing.T, data []byte) {
		parseSchedWait(data)
	})
}

func FuzzParseNSpid(f *testing.F) {
	f.Add([]byte("Name:\tsh\nNSpid:\t4242\t7\t1\n"))
	f.Add([]byte("NSpid:\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		parseNSpid(data)
	})
}

func FuzzParseTids(f *testing.F) {
	f.Add([]byte("1\n22\n333\n"))
	f.Add([]byte("x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ParseTids(data, nil)
	})
}
