package procfiles

import (
	"encoding/binary"
	"math"
)

// Sysinfo is what sysinfo(2) tells a container: the numbers its
// /proc/meminfo, /proc/uptime and /proc/loadavg show, in natural units.
type Sysinfo struct {
	// Uptime is in seconds, already rounded as the kernel rounds it.
	Uptime int64
	// Loads is the 1, 5 and 15 minute load in the fixed point of
	// /proc/loadavg (FSHIFT 11); EncodeSysinfo rescales it.
	Loads LoadAverages
	// Memory in bytes: MemTotal, MemFree, Shmem, Buffers, SwapTotal and
	// SwapFree of /proc/meminfo.
	TotalRAM, FreeRAM, SharedRAM, BufferRAM uint64
	TotalSwap, FreeSwap                     uint64
	// Procs is the number of threads (the kernel's nr_threads).
	Procs uint64
}

// SysinfoSize is sizeof(struct sysinfo) where long is 64 bits (amd64,
// arm64 and every other 64-bit Linux ABI): 8 + 3×8 + 6×8 + 2 + 2 + 4 of
// padding + 2×8 + 4, rounded up to 8 (the struct's _f[] is empty there).
const SysinfoSize = 112

// Offsets of struct sysinfo's fields on 64-bit ABIs
// (include/uapi/linux/sysinfo.h); the unit test checks them against
// golang.org/x/sys/unix's Sysinfo_t, which is generated from that header.
const (
	siUptime    = 0
	siLoads     = 8
	siTotalRAM  = 32
	siFreeRAM   = 40
	siSharedRAM = 48
	siBufferRAM = 56
	siTotalSwap = 64
	siFreeSwap  = 72
	siProcs     = 80
	siTotalHigh = 88
	siFreeHigh  = 96
	siMemUnit   = 104
)

// siLoadShift is SI_LOAD_SHIFT: sysinfo's loads have 16 fractional bits,
// avenrun 11 (FSHIFT), so the kernel shifts them left by 5 (get_avenrun
// with shift SI_LOAD_SHIFT - FSHIFT).
const siLoadShift = 16

// EncodeSysinfo lays s out as the kernel's struct sysinfo on a 64-bit ABI
// in this machine's byte order, as do_sysinfo fills it: every byte written
// (padding zero, as its memset leaves it), memory in mem_unit units (see
// sysinfoMemUnit), totalhigh and freehigh 0 (no highmem on 64-bit), procs
// saturated at its 16 bits rather than wrapped as the kernel's assignment
// would.
func EncodeSysinfo(s Sysinfo, pageSize uint64) [SysinfoSize]byte {
	var b [SysinfoSize]byte
	e := binary.NativeEndian
	e.PutUint64(b[siUptime:], uint64(s.Uptime))
	for i, l := range s.Loads {
		e.PutUint64(b[siLoads+8*i:], l<<(siLoadShift-loadFShift))
	}
	mem, unit := sysinfoMemUnit([6]uint64{s.TotalRAM, s.FreeRAM, s.SharedRAM, s.BufferRAM, s.TotalSwap, s.FreeSwap}, pageSize)
	for i, off := range [6]int{siTotalRAM, siFreeRAM, siSharedRAM, siBufferRAM, siTotalSwap, siFreeSwap} {
		e.PutUint64(b[off:], mem[i])
	}
	e.PutUint16(b[siProcs:], uint16(min(s.Procs, math.MaxUint16)))
	e.PutUint32(b[siMemUnit:], unit)
	return b
}

// sysinfoMemUnit expresses the memory figures (bytes; totalram, freeram,
// sharedram, bufferram, totalswap, freeswap in that order) as do_sysinfo
// does: it starts from whole pages with mem_unit the page size, and when
// totalram + totalswap still fits an unsigned long after scaling to bytes,
// it gives bytes with mem_unit 1 (for 2.2-era programs that ignore
// mem_unit). On 64-bit that always holds for real memory sizes.
func sysinfoMemUnit(bytes [6]uint64, pageSize uint64) ([6]uint64, uint32) {
	var pages [6]uint64
	for i, v := range bytes {
		pages[i] = v / pageSize
	}
	total := pages[0] + pages[4]
	if total < pages[0] || total < pages[4] {
		return pages, uint32(pageSize)
	}
	bits := 0
	for u := pageSize; u > 1; u >>= 1 {
		bits++
		prev := total
		total <<= 1
		if total < prev {
			return pages, uint32(pageSize)
		}
	}
	for i := range pages {
		pages[i] <<= bits
	}
	return pages, 1
}

// DecodeSysinfo reads the fields EncodeSysinfo writes back, with memory
// in bytes and loads in FSHIFT fixed point; for tests and logs.
func DecodeSysinfo(b [SysinfoSize]byte) (s Sysinfo, memUnit uint32) {
	e := binary.NativeEndian
	memUnit = e.Uint32(b[siMemUnit:])
	mem := func(off int) uint64 { return e.Uint64(b[off:]) * uint64(memUnit) }
	s.Uptime = int64(e.Uint64(b[siUptime:]))
	for i := range s.Loads {
		s.Loads[i] = e.Uint64(b[siLoads+8*i:]) >> (siLoadShift - loadFShift)
	}
	s.TotalRAM, s.FreeRAM, s.SharedRAM, s.BufferRAM = mem(siTotalRAM), mem(siFreeRAM), mem(siSharedRAM), mem(siBufferRAM)
	s.TotalSwap, s.FreeSwap = mem(siTotalSwap), mem(siFreeSwap)
	s.Procs = uint64(e.Uint16(b[siProcs:]))
	return s, memUnit
}
