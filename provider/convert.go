package provider

import (
	"github.com/cgprocfs/cgprocfs/cgroupview"
	"github.com/cgprocfs/cgprocfs/loadavg"
	"github.com/cgprocfs/cgprocfs/procfiles"
)

// The conversions from what cgroupview reads and loadavg computes to the
// input types of procfiles, which imports neither so that its renderers
// stay testable on fixtures alone.

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
