package procfiles

import (
	"bytes"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// testVM is a container with a 256 MiB limit, 100 MiB used, the
// memory.stat of a 6.18 kernel, and 64 MiB read and 32 MiB written.
func testVM() ContainerVM {
	const mib = 1 << 20
	vals := []VMValue{
		{"file_thp", 4 * mib}, {"kernel_stack", 49152}, {"oom_kill", 1}, {"pagetables", 229376},
		{"pgfault", 98765}, {"pgmajfault", 321}, {"pgscan_kswapd", 3000}, {"pswpin", 1111}, {"pswpout", 2222},
		{"shmem_thp", 2 * mib}, {"swapcached", 16384}, {"workingset_refault_anon", 120},
	}
	slices.SortFunc(vals, func(a, b VMValue) int { return strings.Compare(a.Key, b.Key) })
	return ContainerVM{
		Memory: ContainerMemory{Total: 256 * mib, Free: 156 * mib, Stat: MemoryStat{
			Anon: 40 * mib, AnonTHP: 4 * mib, File: 50 * mib, FileMapped: 8 * mib, Shmem: 4 * mib,
			FileDirty: 1 * mib, FileWriteback: 2 * mib, ActiveAnon: 8 * mib, InactiveAnon: 36 * mib,
			ActiveFile: 20 * mib, InactiveFile: 30 * mib, Unevictable: 1 * mib,
			SlabReclaimable: 512 << 10, SlabUnreclaimable: 256 << 10,
		}},
		Values:   vals,
		PgpgIn:   64 << 10,
		PgpgOut:  32 << 10,
		PageSize: 4096, THPSize: 2 * mib,
	}
}

func vmstatMap(t *testing.T, b []byte) (names []string, m map[string]uint64) {
	t.Helper()
	m = map[string]uint64{}
	for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		name, v, ok := strings.Cut(l, " ")
		n, err := strconv.ParseUint(v, 10, 64)
		if !ok || err != nil {
			t.Fatalf("malformed line %q", l)
		}
		names = append(names, name)
		m[name] = n
	}
	return names, m
}

func TestRenderVMStat(t *testing.T) {
	host, err := os.ReadFile("testdata/vmstat/host-6.18")
	if err != nil {
		t.Fatal(err)
	}
	got, err := RenderVMStat(host, testVM())
	if err != nil {
		t.Fatal(err)
	}
	hostNames, hostVals := vmstatMap(t, host)
	names, vals := vmstatMap(t, got)
	if !slices.Equal(names, hostNames) {
		t.Fatalf("lines differ from the host's:\n%v\n%v", names, hostNames)
	}
	for name, want := range map[string]uint64{
		"nr_free_pages": 156 * 256, "nr_inactive_anon": 36 * 256, "nr_zone_inactive_anon": 36 * 256,
		"nr_active_file": 20 * 256, "nr_unevictable": 256, "nr_zone_write_pending": 3 * 256,
		"nr_slab_reclaimable": 128, "nr_slab_unreclaimable": 64, "nr_anon_pages": 40 * 256,
		"nr_mapped": 8 * 256, "nr_file_pages": 50 * 256, "nr_dirty": 256, "nr_writeback": 512, "nr_shmem": 1024,
		"nr_anon_transparent_hugepages": 2, "nr_shmem_hugepages": 1, "nr_file_hugepages": 2,
		"nr_kernel_stack": 48, "nr_page_table_pages": 56, "nr_swapcached": 4,
		"pgpgin": 64 << 10, "pgpgout": 32 << 10, "pswpin": 1111, "pswpout": 2222,
		"pgfault": 98765, "pgmajfault": 321, "pgscan_kswapd": 3000, "workingset_refault_anon": 120, "oom_kill": 1,
		// No source: 0, not the host's.
		"numa_hit": 0, "pgalloc_normal": 0, "pgfree": 0, "workingset_nodes": 0, "nr_mlock": 0, "allocstall_normal": 0,
		"pgsteal_direct": 0, "nr_free_cma": 0,
		// The machine's: the host's.
		"nr_dirty_threshold": hostVals["nr_dirty_threshold"], "nr_dirty_background_threshold": hostVals["nr_dirty_background_threshold"],
		"nr_memmap_boot_pages": hostVals["nr_memmap_boot_pages"], "drop_pagecache": hostVals["drop_pagecache"],
		"direct_map_level2_splits": hostVals["direct_map_level2_splits"],
	} {
		if g, ok := vals[name]; !ok || g != want {
			t.Errorf("%s = %d (present %v), want %d", name, g, ok, want)
		}
	}
	want, err := os.ReadFile("testdata/vmstat/want-6.18")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("render differs from testdata/vmstat/want-6.18:\n%s", got)
	}
}

func TestRenderVMStatHostIO(t *testing.T) {
	c := testVM()
	c.HostIO = true
	got, err := RenderVMStat([]byte("pgpgin 5\npgpgout 6\npswpin 7\n"), c)
	if err != nil || string(got) != "pgpgin 5\npgpgout 6\npswpin 1111\n" {
		t.Fatalf("got %q, %v", got, err)
	}
}

func TestRenderVMStatMalformed(t *testing.T) {
	for _, in := range []string{"nr_free_pages\n", " 1\n", "pgfault x\n", "pgfault -1\n", "pgfault 1 2\n"} {
		if got, err := RenderVMStat([]byte(in), testVM()); err == nil {
			t.Errorf("%q rendered as %q, want an error", in, got)
		}
	}
}

func FuzzRenderVMStat(f *testing.F) {
	if b, err := os.ReadFile("testdata/vmstat/host-6.18"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("pgpgin 1\n\nnr_free_pages 99999999999999999999\n"))
	f.Add([]byte("x 1"))
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := RenderVMStat(data, testVM())
		if err != nil {
			return
		}
		// Every line rendered is "name value", the value decimal.
		for _, l := range bytes.Split(bytes.TrimSuffix(out, []byte{'\n'}), []byte{'\n'}) {
			if len(out) == 0 {
				break
			}
			_, v, ok := bytes.Cut(l, []byte{' '})
			if _, err := strconv.ParseUint(string(v), 10, 64); !ok || err != nil {
				t.Fatalf("%q rendered line %q", data, l)
			}
		}
	})
}
