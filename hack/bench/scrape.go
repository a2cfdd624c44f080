package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

func init() {
	register(benchmark{
		Name:  "scrape",
		Doc:   "reads/s of proc/meminfo with 8 readers, with a metrics scrape every 100 ms and without",
		Run:   runScrapeBench,
		Child: scrapeChild,
	})
}

const (
	// scrapeContainers other containers are tracked, so that each scrape
	// computes their figures too (load, memory, CPU time, CPUs).
	scrapeContainers = 20
	scrapeEvery      = 100 * time.Millisecond
	scrapeReaders    = 8
)

// scrapeResult is what the child measured.
type scrapeResult struct {
	Without, With summary
	// Scrapes is how many scrapes ran during the "with" turns and their
	// latency.
	Scrapes      int
	ScrapeP50    time.Duration
	ScrapeMax    time.Duration
	ScrapeErrors int
	ScrapeBytes  int
}

func runScrapeBench(e *env) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addr := ln.Addr().String()
	ln.Close()
	mp := filepath.Join(e.tmp, "scrape")
	d, err := e.startDaemon("cgprocfs (metrics)", mp, e.bin, "mount", "--metrics-listen", addr, mp)
	if err != nil {
		return err
	}
	meminfo := filepath.Join(d.mountpoint, "proc", "meminfo")
	fmt.Printf("tracking %d more containers (2 sleeping processes each, each read once) ...\n", scrapeContainers)
	for i := range scrapeContainers {
		cg, err := e.newCgroup("scrape-"+strconv.Itoa(i), 256<<20)
		if err != nil {
			return err
		}
		if err := e.startSleepers(cg, 2); err != nil {
			return err
		}
		if _, err := e.runChild("scrape", cg, "touch", "-path", meminfo); err != nil {
			return err
		}
	}
	cg, err := e.newCgroup("scrape", benchLimit)
	if err != nil {
		return err
	}
	if err := e.startSleepers(cg, benchSleepers); err != nil {
		return err
	}
	out, err := e.runChild("scrape", cg, "measure", "-path", meminfo, "-metrics", "http://"+addr+"/metrics",
		"-duration", (e.duration * 2).String(), "-rounds", strconv.Itoa(e.rounds))
	if err != nil {
		return err
	}
	var r scrapeResult
	if err := json.Unmarshal(out, &r); err != nil {
		return fmt.Errorf("scrape child: %w", err)
	}
	fmt.Printf("\n%d readers of proc/meminfo, no CPU quota, %d tracked containers:\n", scrapeReaders, scrapeContainers+1)
	printTable(os.Stdout, []summary{r.Without, r.With})
	if r.Without.PerSecond() > 0 {
		fmt.Printf("reads/s with scrapes / without: %.3f\n", r.With.PerSecond()/r.Without.PerSecond())
	}
	fmt.Printf("scrapes: %d (%d failed), p50 %s, max %s, %d bytes each\n", r.Scrapes, r.ScrapeErrors, ms(r.ScrapeP50), ms(r.ScrapeMax), r.ScrapeBytes)
	return nil
}

// scrapeChild runs in a cgroup: "touch" reads the file once (so the daemon
// tracks the cgroup); "measure" alternates turns of readers without and
// with a scraper, rounds times, and writes a scrapeResult.
func scrapeChild(args []string) error {
	if len(args) < 1 {
		return errors.New("want touch or measure")
	}
	fl := flag.NewFlagSet("scrape "+args[0], flag.ContinueOnError)
	path := fl.String("path", "", "the served file to read")
	metrics := fl.String("metrics", "", "the daemon's metrics URL")
	duration := fl.Duration("duration", time.Second, "measuring time per turn")
	rounds := fl.Int("rounds", 3, "rounds")
	if err := fl.Parse(args[1:]); err != nil {
		return err
	}
	if args[0] == "touch" {
		_, err := os.ReadFile(*path)
		return err
	}
	var without, with loopResult
	var scrapes []time.Duration
	var res scrapeResult
	readLoop(*path, scrapeReaders, 100*time.Millisecond) // warm-up
	for range *rounds {
		without.add(readLoop(*path, scrapeReaders, *duration))
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			c := http.Client{Timeout: 5 * time.Second}
			t := time.NewTicker(scrapeEvery)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
				}
				t0 := time.Now()
				resp, err := c.Get(*metrics)
				if err != nil {
					res.ScrapeErrors++
					continue
				}
				n, err := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK {
					res.ScrapeErrors++
					continue
				}
				scrapes = append(scrapes, time.Since(t0))
				res.ScrapeBytes = int(n)
			}
		})
		with.add(readLoop(*path, scrapeReaders, *duration))
		close(stop)
		wg.Wait()
	}
	res.Without = summarize("no scrape", scrapeReaders, without.lat, without.fails, without.wall)
	res.With = summarize(fmt.Sprintf("scrape every %v", scrapeEvery), scrapeReaders, with.lat, with.fails, with.wall)
	if s := summarize("", 1, scrapes, 0, 0); len(scrapes) > 0 {
		res.Scrapes, res.ScrapeP50, res.ScrapeMax = len(scrapes), s.P50, s.Max
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}
