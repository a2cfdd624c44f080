package provider

import (
	"github.com/cgprocfs/cgprocfs/cgroupview"
	"github.com/cgprocfs/cgprocfs/loadavg"
	"github.com/cgprocfs/cgprocfs/procfiles"
)

// The conversions from what cgroupview reads and loadavg computes to the
// input types of procfiles, which imports neither so that its renderers
// stay testable on fixtures alone.

// cgroupMemory keeps "no limit" as it is: cgroupview.NoLimit is
// math.MaxUint64, procfiles' "no limit" too.
func cgroupMemory(m cgroupview.Memory) procfiles.CgroupMemory {
	s := m.Stat
	return procfiles.CgroupMemory{
		Limit:          m.Limit,
		Usage:          m.Usage,
		SwapAccounting: m.SwapAccounting,
		SwapLimit:      m.SwapLimit,
		SwapUsage:      m.SwapUsage,
		Stat: procfiles.MemoryStat{
			Anon:              s.Anon,
			AnonTHP:           s.AnonTHP,
			File:              s.File,
			FileMapped:        s.FileMapped,
			Shmem:             s.Shmem,
			FileDirty:         s.FileDirty,
			FileWriteback:     s.FileWriteback,
			ActiveAnon:        s.ActiveAnon,
			InactiveAnon:      s.InactiveAnon,
			ActiveFile:        s.ActiveFile,
			InactiveFile:      s.InactiveFile,
			Unevictable:       s.Unevictable,
			Slab:              s.Slab,
			SlabReclaimable:   s.SlabReclaimable,
			SlabUnreclaimable: s.SlabUnreclaimable,
		},
	}
}

func diskDev(d cgroupview.Dev) procfiles.Dev {
	return procfiles.Dev{Major: d.Major, Minor: d.Minor}
}

func diskIO(d cgroupview.DeviceIO) procfiles.DiskIO {
	return procfiles.DiskIO{
		ReadIOs: d.ReadIOs, WriteIOs: d.WriteIOs, DiscardIOs: d.DiscardIOs,
		ReadBytes: d.ReadBytes, WriteBytes: d.WriteBytes, DiscardBytes: d.DiscardBytes,
		HasTimes: d.HasTimes,
		ReadNsec: d.ReadNsec, WriteNsec: d.WriteNsec, DiscardNsec: d.DiscardNsec,
	}
}

// loadAverages passes the averages on in the same fixed point: both
// packages use the kernel's (FSHIFT 11).
func loadAverages(a loadavg.Avg) procfiles.LoadAverages {
	return procfiles.LoadAverages(a)
}
