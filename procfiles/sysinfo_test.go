package procfiles

import (
	"bytes"
	"math"
	"os"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The offsets EncodeSysinfo writes at are those of x/sys's Sysinfo_t,
// which is generated from the kernel's header.
func TestSysinfoLayoutMatchesXSys(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("the encoding is for 64-bit ABIs")
	}
	var s unix.Sysinfo_t
	for _, f := range []struct {
		name      string
		got, want uintptr
	}{
		{"size", SysinfoSize, unsafe.Sizeof(s)},
		{"uptime", siUptime, unsafe.Offsetof(s.Uptime)},
		{"loads", siLoads, unsafe.Offsetof(s.Loads)},
		{"totalram", siTotalRAM, unsafe.Offsetof(s.Totalram)},
		{"freeram", siFreeRAM, unsafe.Offsetof(s.Freeram)},
		{"sharedram", siSharedRAM, unsafe.Offsetof(s.Sharedram)},
		{"bufferram", siBufferRAM, unsafe.Offsetof(s.Bufferram)},
		{"totalswap", siTotalSwap, unsafe.Offsetof(s.Totalswap)},
		{"freeswap", siFreeSwap, unsafe.Offsetof(s.Freeswap)},
		{"procs", siProcs, unsafe.Offsetof(s.Procs)},
		{"totalhigh", siTotalHigh, unsafe.Offsetof(s.Totalhigh)},
		{"freehigh", siFreeHigh, unsafe.Offsetof(s.Freehigh)},
		{"mem_unit", siMemUnit, unsafe.Offsetof(s.Unit)},
	} {
		if f.got != f.want {
			t.Errorf("%s: offset %d, x/sys says %d", f.name, f.got, f.want)
		}
	}
}

// The kernel writes exactly SysinfoSize bytes, and encoding what it wrote
// gives back its bytes: same layout, byte order, padding, mem_unit rule.
func TestEncodeSysinfoMatchesKernel(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("the encoding is for 64-bit ABIs")
	}
	var buf [2 * SysinfoSize]byte
	for i := range buf {
		buf[i] = 0xa5
	}
	if _, _, errno := unix.Syscall(unix.SYS_SYSINFO, uintptr(unsafe.Pointer(&buf[0])), 0, 0); errno != 0 {
		t.Fatalf("sysinfo: %v", errno)
	}
	if tail := buf[SysinfoSize:]; !bytes.Equal(tail, bytes.Repeat([]byte{0xa5}, len(tail))) {
		t.Fatalf("the kernel wrote past %d bytes: %x", SysinfoSize, tail)
	}
	raw := [SysinfoSize]byte(buf[:SysinfoSize])
	s, unit := DecodeSysinfo(raw)
	if unit != 1 {
		t.Fatalf("the kernel's mem_unit is %d, want 1 on 64-bit", unit)
	}
	if got := EncodeSysinfo(s, uint64(os.Getpagesize())); got != raw {
		t.Fatalf("encoding the kernel's values\n got %x\nwant %x", got, raw)
	}
}

func TestEncodeSysinfo(t *testing.T) {
	const mib = 1 << 20
	s := Sysinfo{
		Uptime: 42,
		// 1.00, 0.50, 2.25 in FSHIFT fixed point.
		Loads:    LoadAverages{2048, 1024, 4608},
		TotalRAM: 200 * mib, FreeRAM: 150 * mib, SharedRAM: 4096, BufferRAM: 0,
		TotalSwap: 100 * mib, FreeSwap: 100*mib - 8192,
		Procs: 7,
	}
	b := EncodeSysinfo(s, 4096)
	// Copied, not cast: b need not be aligned as Sysinfo_t is.
	var k unix.Sysinfo_t
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&k)), SysinfoSize), b[:])
	want := unix.Sysinfo_t{
		Uptime: 42,
		// SI_LOAD_SHIFT: 1.0 is 65536.
		Loads:    [3]uint64{65536, 32768, 147456},
		Totalram: 200 * mib, Freeram: 150 * mib, Sharedram: 4096,
		Totalswap: 100 * mib, Freeswap: 100*mib - 8192,
		Procs: 7, Unit: 1,
	}
	if k != want {
		t.Fatalf("encoded\n got %+v\nwant %+v", k, want)
	}
	if got, unit := DecodeSysinfo(b); got != s || unit != 1 {
		t.Fatalf("decoded %+v unit %d, want %+v unit 1", got, unit, s)
	}
}

func TestSysinfoMemUnit(t *testing.T) {
	for _, c := range []struct {
		name     string
		in       [6]uint64
		pageSize uint64
		want     [6]uint64
		unit     uint32
	}{
		{"bytes fit", [6]uint64{200 << 20, 1 << 20, 0, 0, 0, 0}, 4096, [6]uint64{200 << 20, 1 << 20, 0, 0, 0, 0}, 1},
		// do_sysinfo starts from pages: a partial page is not counted.
		{"whole pages", [6]uint64{8191, 4097, 4095, 0, 12288, 1}, 4096, [6]uint64{4096, 4096, 0, 0, 12288, 0}, 1},
		{"64 KiB pages", [6]uint64{1 << 30, 65536, 0, 0, 0, 0}, 65536, [6]uint64{1 << 30, 65536, 0, 0, 0, 0}, 1},
		// ram + swap in bytes overflows 64 bits: the kernel leaves
		// pages and mem_unit the page size.
		{"overflow", [6]uint64{math.MaxUint64, 4096, 0, 0, math.MaxUint64, 0}, 4096,
			[6]uint64{math.MaxUint64 / 4096, 1, 0, 0, math.MaxUint64 / 4096, 0}, 4096},
		{"just fits", [6]uint64{1 << 62, 0, 0, 0, 1<<62 - 4096, 0}, 4096, [6]uint64{1 << 62, 0, 0, 0, 1<<62 - 4096, 0}, 1},
	} {
		got, unit := sysinfoMemUnit(c.in, c.pageSize)
		if got != c.want || unit != c.unit {
			t.Errorf("%s: got %v unit %d, want %v unit %d", c.name, got, unit, c.want, c.unit)
		}
	}
}

func TestEncodeSysinfoSaturatesProcs(t *testing.T) {
	for _, c := range []struct{ in, want uint64 }{{0, 0}, {65535, 65535}, {65536, 65535}, {1 << 40, 65535}} {
		s, _ := DecodeSysinfo(EncodeSysinfo(Sysinfo{Procs: c.in}, 4096))
		if s.Procs != c.want {
			t.Errorf("procs %d encoded as %d, want %d", c.in, s.Procs, c.want)
		}
	}
}
