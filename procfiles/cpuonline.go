package procfiles

import "strconv"

// RenderCPURange renders a /sys/devices/system/cpu cpulist file (online,
// present, possible) for n CPUs numbered from 0: "0-3\n", "0\n", or "\n"
// for none, as the kernel writes an empty list.
func RenderCPURange(n int) []byte {
	switch {
	case n <= 0:
		return []byte("\n")
	case n == 1:
		return []byte("0\n")
	}
	return []byte("0-" + strconv.Itoa(n-1) + "\n")
}
