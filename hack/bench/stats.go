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

func ms(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d)/float64(time.Millisecond)) }

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
