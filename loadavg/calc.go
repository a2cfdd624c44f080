package loadavg

// The kernel's constants (include/linux/sched/loadavg.h).
const (
	FShift = 11          // bits of precision
	Fixed1 = 1 << FShift // 1.0 as fixed-point
	Exp1   = 1884        // 1/exp(5sec/1min) as fixed-point
	Exp5   = 2014        // 1/exp(5sec/5min)
	Exp15  = 2037        // 1/exp(5sec/15min)
)

// CalcLoad is the kernel's calc_load: one 5 s step of an average load
// towards active (fixed-point, i.e. nr_active * Fixed1). It rounds up when
// the load grows, so that a constant count is reached exactly rather than
// approached forever from below.
func CalcLoad(load, exp, active uint64) uint64 {
	newload := load*exp + active*(Fixed1-exp)
	if active >= load {
		newload += Fixed1 - 1
	}
	return newload / Fixed1
}

// FixedPowerInt is the kernel's fixed_power_int: x^n in fixed-point with
// fracBits fractional bits, rounding each multiplication to nearest.
func FixedPowerInt(x uint64, fracBits uint, n uint64) uint64 {
	result := uint64(1) << fracBits
	if n == 0 {
		return result
	}
	for {
		if n&1 != 0 {
			result *= x
			result += 1 << (fracBits - 1)
			result >>= fracBits
		}
		n >>= 1
		if n == 0 {
			break
		}
		x *= x
		x += 1 << (fracBits - 1)
		x >>= fracBits
	}
	return result
}

// CalcLoadN is the kernel's calc_load_n: n steps of CalcLoad with a constant
// active count in one go, as the kernel folds the periods a tickless CPU
// missed. The sampler uses it when it falls behind its grid.
func CalcLoadN(load, exp, active, n uint64) uint64 {
	return CalcLoad(load, FixedPowerInt(exp, FShift, n), active)
}

// Avg is the 1, 5 and 15 minute averages in fixed-point, like the kernel's
// avenrun[]. Printing them is procfiles' part (procfiles.LoadAverages).
type Avg [3]uint64

// Fold advances the averages by n 5 s periods in which nrActive threads were
// runnable or uninterruptible.
func (a Avg) Fold(nrActive uint64, n uint64) Avg {
	if n == 0 {
		return a
	}
	active := nrActive * Fixed1
	if n == 1 {
		return Avg{CalcLoad(a[0], Exp1, active), CalcLoad(a[1], Exp5, active), CalcLoad(a[2], Exp15, active)}
	}
	return Avg{CalcLoadN(a[0], Exp1, active, n), CalcLoadN(a[1], Exp5, active, n), CalcLoadN(a[2], Exp15, active, n)}
}

// Float is the averages as floating point, for tests and logs.
func (a Avg) Float() [3]float64 {
	return [3]float64{float64(a[0]) / Fixed1, float64(a[1]) / Fixed1, float64(a[2]) / Fixed1}
}
