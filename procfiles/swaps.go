package procfiles

import "fmt"

// swapsHeader is the kernel's header line of /proc/swaps.
const swapsHeader = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"

// RenderSwaps renders /proc/swaps: the header, and one line for the
// container's virtual swap when it has any, laid out as the kernel lays out
// a swap line (sizes in KiB).
func RenderSwaps(c ContainerMemory) []byte {
	if c.SwapTotal == 0 {
		return []byte(swapsHeader)
	}
	size, used := c.SwapTotal/1024, (c.SwapTotal-c.SwapFree)/1024
	tab := func(v uint64) string {
		if v < 10000000 {
			return "\t"
		}
		return ""
	}
	const name = "none"
	return fmt.Appendf([]byte(swapsHeader), "%s%*s%s\t%d\t%s%d\t%s%d\n",
		name, 40-len(name), " ", "virtual\t", size, tab(size), used, tab(used), -1)
}
