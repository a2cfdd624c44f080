package main

import (
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"
)

// summary is what the table shows of one target at one reader count.
type summary struct {
	Target  string
	Readers int
	// Reads is the number of complete open+read+close cycles, Errors the
	// failed ones; Seconds the wall time they took, summed over rounds.
	Reads   int
	Errors  int
	Seconds float64
	P50     time.Duration
	P99     time.Duration
	Max     time.Duration
}

// PerSecond is the throughput over all readers.
func (s summary) PerSecond() float64 {
	if s.Seconds <= 0 {
		return 0
	}
	return float64(s.Reads) / s.Seconds
}

// summarize sorts lat in place and takes its percentiles.
func summarize(target string, readers int, lat []time.Duration, errs int, wall time.Duration) summary {
	s := summary{Target: target, Readers: readers, Reads: len(lat), Errors: errs, Seconds: wall.Seconds()}
	if len(lat) == 0 {
		return s
	}
	slices.Sort(lat)
	s.P50 = percentile(lat, 50)
	s.P99 = percentile(lat, 99)
	s.Max = lat[len(lat)-1]
	return s
}

// percentile is the nearest-rank percentile of sorted lat.
func percentile(lat []time.Duration, p int) time.Duration {
	rank := (len(lat)*p + 99) / 100 // ceil(n*p/100)
	return lat[max(rank, 1)-1]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f ms", msf(d)) }

// printTable writes one row per summary; one never measured (no wall
// time: the target does not serve the file) is a row of dashes.
func printTable(w io.Writer, rows []summary) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\treaders\treads/s\tp50\tp99\tmax\terrors\t")
	for _, r := range rows {
		if r.Seconds <= 0 {
			fmt.Fprintf(tw, "%s\t%d\t-\t-\t-\t-\t-\t\n", r.Target, r.Readers)
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%s\t%s\t%s\t%d\t\n", r.Target, r.Readers, r.PerSecond(), ms(r.P50), ms(r.P99), ms(r.Max), r.Errors)
	}
	tw.Flush()
}

// findResult is the result of one file, target and reader count; an empty
// summary when it was not measured.
func findResult(res []fileResult, file, target string, readers int) summary {
	for _, r := range res {
		if r.File == file && r.Target == target && r.Readers == readers {
			return r.summary
		}
	}
	return summary{Target: target, Readers: readers}
}

// cpuPer10k is target's CPU seconds per 10,000 reads of file ("": every
// file), over all reader counts; 0 without reads.
func cpuPer10k(res []fileResult, file, target string) float64 {
	var cpu float64
	var reads int
	for _, r := range res {
		if (file == "" || r.File == file) && r.Target == target {
			cpu += r.CPU
			reads += r.Reads
		}
	}
	if reads == 0 {
		return 0
	}
	return cpu / float64(reads) * 10000
}

// printFilesTable is the files benchmark's table: a row per file and reader
// count; per target reads/s, p50 and p99; then cgprocfs's reads/s over
// lxcfs's and over the C floor's, and its p99 over the C floor's (above 1x:
// slower), and over the baseline's reads/s when there is one.
func printFilesTable(w io.Writer, specs []fileSpec, targets []string, res []fileResult) {
	find := func(file, target string, readers int) summary { return findResult(res, file, target, readers) }
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := "file\treaders\t"
	for _, t := range targets {
		head += t + " r/s\tp50\tp99\t"
	}
	head += "/lxcfs\t/floor\tp99/floor\t"
	hasBase := slices.Contains(targets, targetBaseline)
	if hasBase {
		head += "/baseline\t"
	}
	fmt.Fprintln(tw, head)
	for _, s := range specs {
		for _, n := range readerCounts {
			row := fmt.Sprintf("%s\t%d\t", s.Name, n)
			for _, t := range targets {
				m := find(s.Name, t, n)
				if m.Reads == 0 {
					row += "-\t-\t-\t"
					continue
				}
				row += fmt.Sprintf("%.0f\t%.3f\t%.3f\t", m.PerSecond(), msf(m.P50), msf(m.P99))
			}
			cg := find(s.Name, targetCgprocfs, n)
			fl := find(s.Name, targetFloor, n)
			row += ratio(cg.PerSecond(), find(s.Name, targetLxcfs, n).PerSecond()) + "\t" +
				ratio(cg.PerSecond(), fl.PerSecond()) + "\t" +
				ratio(float64(cg.P99), float64(fl.P99)) + "\t"
			if hasBase {
				row += ratio(cg.PerSecond(), find(s.Name, targetBaseline, n).PerSecond()) + "\t"
			}
			fmt.Fprintln(tw, row)
		}
	}
	tw.Flush()
	fmt.Fprintln(w, "(p50, p99 in ms; /lxcfs, /floor: cgprocfs's reads/s over theirs, above 1x faster; p99/floor: cgprocfs's p99 over the C floor's, above 1x slower)")
	fmt.Fprintln(w, "(targets: /lxcfs at least 1.5x with 1 and 8 readers, /floor at least 0.8x with 1 reader, p99/floor at most 1x with 8 readers)")
}

// printFloorsTable sets the targets against what the floors reach in the
// same run: how far go-fuse's raw API and cgprocfs's tree get of the C
// floor serving the same bytes, and what each target asks of the raw
// floor (above 1x: more than any daemon on go-fuse did here with no work
// per open).
func printFloorsTable(w io.Writer, specs []fileSpec, res []fileResult) {
	find := func(file, target string, readers int) summary { return findResult(res, file, target, readers) }
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "file\treaders\tGo raw/C floor\tGo tree/C floor\tcgprocfs/Go tree\t1.5x lxcfs/Go raw\t0.8x C floor/Go raw\tC floor p99/Go raw p99\t")
	for _, s := range specs {
		for _, n := range readerCounts {
			c, raw, tree := find(s.Name, targetFloor, n), find(s.Name, targetGoRaw, n), find(s.Name, targetGoTree, n)
			cg, lx := find(s.Name, targetCgprocfs, n), find(s.Name, targetLxcfs, n)
			floorAsk, p99Ask := "-", "-"
			if n == 1 {
				floorAsk = ratio(0.8*c.PerSecond(), raw.PerSecond())
			} else {
				p99Ask = ratio(float64(c.P99), float64(raw.P99))
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t\n", s.Name, n,
				ratio(raw.PerSecond(), c.PerSecond()), ratio(tree.PerSecond(), c.PerSecond()),
				ratio(cg.PerSecond(), tree.PerSecond()), ratio(1.5*lx.PerSecond(), raw.PerSecond()),
				floorAsk, p99Ask)
		}
	}
	tw.Flush()
	fmt.Fprintln(w, "(reads/s ratios; the last three: what a target asks of go-fuse's raw API serving fixed bytes, above 1x more than it reached)")
}

// printCPUTable shows the daemons' CPU time (utime+stime) per 10,000
// reads, over both reader counts, per file and in all.
func printCPUTable(w io.Writer, specs []fileSpec, res []fileResult, lxcfs bool) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "CPU s per 10,000 reads\tcgprocfs\tlxcfs\tC floor\tGo raw\tGo tree\tcgprocfs/lxcfs\tcgprocfs/floor\tGo raw/lxcfs\t")
	names := []string{}
	for _, s := range specs {
		names = append(names, s.Name)
	}
	names = append(names, "")
	for _, f := range names {
		c := cpuPer10k(res, f, targetCgprocfs)
		l := cpuPer10k(res, f, targetLxcfs)
		fl := cpuPer10k(res, f, targetFloor)
		raw := cpuPer10k(res, f, targetGoRaw)
		tree := cpuPer10k(res, f, targetGoTree)
		name := f
		if f == "" {
			name = "all files"
		}
		lx := "-"
		if lxcfs && l > 0 {
			lx = fmt.Sprintf("%.3f", l)
		}
		fmt.Fprintf(tw, "%s\t%.3f\t%s\t%.3f\t%s\t%s\t%s\t%s\t%s\t\n", name, c, lx, fl, orDash(raw), orDash(tree), ratio(c, l), ratio(c, fl), ratio(raw, l))
	}
	tw.Flush()
	fmt.Fprintln(w, "(the daemon's utime+stime from /proc/PID/stat around its turns, 1 and 8 readers together; ticks of 10 ms; target: cgprocfs/lxcfs at most 0.5x; Go raw/lxcfs: what go-fuse's raw API alone costs against it)")
}

// printURingTable sets cgprocfs --io-uring against the targets and against
// cgprocfs through /dev/fuse in the same run: reads/s and p99 per file and
// reader count, then CPU per read.
func printURingTable(w io.Writer, specs []fileSpec, res []fileResult) {
	find := func(file, target string, readers int) summary { return findResult(res, file, target, readers) }
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "io_uring\treaders\tr/s\tp99\t/cgprocfs\t/lxcfs\t/floor\tp99/floor\tCPU s per 10,000 reads\tCPU /lxcfs\t")
	for _, s := range specs {
		for _, n := range readerCounts {
			u := find(s.Name, targetURing, n)
			if u.Reads == 0 {
				continue
			}
			fl := find(s.Name, targetFloor, n)
			// CPU per read over both reader counts, as in the CPU
			// table, on each file's first row.
			cpu, lxCPU := "", ""
			if n == readerCounts[0] {
				c, l := cpuPer10k(res, s.Name, targetURing), cpuPer10k(res, s.Name, targetLxcfs)
				cpu, lxCPU = orDash(c), ratio(c, l)
			}
			fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.3f\t%s\t%s\t%s\t%s\t%s\t%s\t\n", s.Name, n, u.PerSecond(), msf(u.P99),
				ratio(u.PerSecond(), find(s.Name, targetCgprocfs, n).PerSecond()),
				ratio(u.PerSecond(), find(s.Name, targetLxcfs, n).PerSecond()),
				ratio(u.PerSecond(), fl.PerSecond()), ratio(float64(u.P99), float64(fl.P99)), cpu, lxCPU)
		}
	}
	c, l := cpuPer10k(res, "", targetURing), cpuPer10k(res, "", targetLxcfs)
	fmt.Fprintf(tw, "all files\t\t\t\t\t\t\t\t%s\t%s\t\n", orDash(c), ratio(c, l))
	tw.Flush()
	fmt.Fprintln(w, "(cgprocfs --io-uring --holder=false: each request answered on its reader's CPU; /cgprocfs: over cgprocfs through /dev/fuse, the default; the C floor stays on /dev/fuse, as libfuse 3.14 has no io_uring)")
}

// orDash is v with three decimals, or "-" when missing.
func orDash(v float64) string {
	if v <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.3f", v)
}

// ratio is a/b as "1.23x", or "-" when either is missing.
func ratio(a, b float64) string {
	if a <= 0 || b <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", a/b)
}

func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
