package metrics

import (
	"syscall"
	"testing"
	"time"
)

// BenchmarkRequestObserved is what the metrics add to one request on the
// read path: Begin, and End with its duration, as fs's Open does (the
// two time readings included).
func BenchmarkRequestObserved(b *testing.B) {
	f := New("bench").File("proc/meminfo")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			start := time.Now()
			f.Begin()
			f.End(time.Since(start), 0)
		}
	})
}

// BenchmarkRequestObservedError is the same for a request that failed.
func BenchmarkRequestObservedError(b *testing.B) {
	f := New("bench").File("proc/meminfo")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			start := time.Now()
			f.Begin()
			f.End(time.Since(start), syscall.EIO)
		}
	})
}
