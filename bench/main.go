// Command bench is chatd's benchmark suite: it builds chatd, the fake
// OpenAI server (cmd/fakeai), the minimal relay (cmd/relay) and the load
// generator (cmd/loadgen), runs them as separate processes on this host and
// reports chatd's latency, capacity, memory, database writes and fan-out as
// ratios and differences against baselines measured in the same run:
// (A) the load generator reading the fake upstream directly and (B) the
// relay. Baselines and chatd are interleaved round by round and the median
// of the per-round comparisons is reported, because a shared machine is
// noisy.
//
//	go run ./bench                          # everything, growth included, 5 rounds
//	go run ./bench -scenarios latency,capacity,cpu,burst,memory,writes,fanout,bus -rounds 3 -latency-levels 1,10,50,200,800  # make bench
//	go run ./bench -scenarios latency,memory -rounds 3
//	go run ./bench -smoke                   # a few connections, a few seconds (make bench-smoke)
//
// The report (Markdown) goes to stdout and to <out>/report.md; profiles and
// server logs stay in <out>. The exit status is non-zero when the harness
// itself failed (a run that errored, answers that did not arrive whole);
// targets missed are reported, not failures.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "bench:", err)
		}
		os.Exit(1)
	}
}

// scenarios in the order of the issue.
var scenarios = []struct {
	name string
	run  func(context.Context, *env, *report, config) error
}{
	{"latency", latency}, {"capacity", capacity}, {"cpu", cpuPerToken}, {"burst", burst},
	{"memory", memory}, {"writes", writes}, {"fanout", fanout}, {"growth", growth}, {"bus", bus},
}

type options struct {
	scenarios string
	smoke     bool
	out       string
	reportTo  string
	chatdBin  string
	cfg       config
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.StringVar(&o.scenarios, "scenarios", "latency,capacity,cpu,burst,memory,writes,fanout,growth,bus", "scenarios to run, comma-separated")
	fs.BoolVar(&o.smoke, "smoke", false, "a few connections for a few seconds per scenario, to check the harness")
	fs.StringVar(&o.out, "out", "", "directory for the report, profiles and logs (default: a new temporary directory)")
	fs.StringVar(&o.reportTo, "report", "", "also write the Markdown report to this file")
	rounds := fs.Int("rounds", 0, "interleaved rounds per comparison (default 5; 1 with -smoke)")
	fs.StringVar(&o.chatdBin, "chatd-bin", "", "run this chatd binary instead of building ./cmd/chatd (to measure another version)")
	var lat, capa, mem, busLv intList
	fs.Var(&lat, "latency-levels", "concurrent streams of the latency scenario (default 1,10,50,200)")
	fs.Var(&capa, "capacity-levels", "the capacity ramp (default 200,400,800,1200,1600)")
	fs.Var(&mem, "memory-levels", "idle connections of the memory scenario (default 1000,5000)")
	fs.Var(&busLv, "bus-levels", "concurrent streams of the bus scenario (default 50,200 with -bus-mongodb-uri, else 50)")
	fs.StringVar(&o.cfg.busMongoURI, "bus-mongodb-uri", "", "bus scenario: a real MongoDB for the instances (default: FerretDB from cmd/devstack, which cannot hold 200 streams)")
	busTokens := fs.Int("bus-tokens", 0, "bus scenario: tokens per answer (default 200)")
	busProfile := fs.Bool("bus-profile", false, "bus scenario: save each cluster instance's CPU profile of the first round of each cluster run (bus-<run>-<instance>.pprof in -out) and summarize it in the report")
	var growthDir string
	fs.StringVar(&growthDir, "growth-dir", "", "growth scenario: keep the filled SQLite database in this directory and reuse it on later runs of the same size (default: fill a new one each run and delete it)")
	growthMessages := fs.Int("growth-messages", 0, "growth scenario: messages in the SQLite data set, with one conversation per 20 and one user per 2,000 (default 1,000,000)")
	growthSamples := fs.Int("growth-samples", 0, "growth scenario: timed operations of each kind on SQLite (default 2000)")
	growthFerret := fs.Bool("growth-ferret", true, "growth scenario: also fill and time the MongoDB store on FerretDB")
	growthQuiet := fs.Duration("growth-index-quiet", 0, "growth scenario: the SQLite store's IndexQuiet (default: the store's, 200ms; negative: index every commit at once, as before the indexer waited for a quiet moment)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	busMongo := o.cfg.busMongoURI
	o.cfg = fullConfig()
	if o.smoke {
		o.cfg = smokeConfig()
	}
	o.cfg.busMongoURI = busMongo
	o.cfg.busProfile = *busProfile
	if *busTokens > 0 {
		o.cfg.busTokens = *busTokens
	}
	o.cfg.growthDir = growthDir
	o.cfg.growthQuiet = *growthQuiet
	o.cfg.growthNoFerret = !*growthFerret
	if *growthSamples > 0 {
		o.cfg.growthSQLite.samples = *growthSamples
	}
	if *growthMessages > 0 {
		n := *growthMessages
		o.cfg.growthSQLite.messages = n
		o.cfg.growthSQLite.conversations = max(n/20, 1)
		o.cfg.growthSQLite.users = max(n/2000, 1)
	}
	if busMongo == "" && !o.smoke && len(busLv) == 0 {
		o.cfg.busLevels = []int{50} // FerretDB times out at 200 streams (docs/scale.md)
	}
	if *rounds > 0 {
		o.cfg.rounds = *rounds
	}
	for _, ov := range []struct {
		flag intList
		to   *[]int
	}{{lat, &o.cfg.latencyLevels}, {capa, &o.cfg.capacityLevels}, {mem, &o.cfg.memoryLevels}, {busLv, &o.cfg.busLevels}} {
		if len(ov.flag) > 0 {
			*ov.to = ov.flag
		}
	}
	for _, s := range strings.Split(o.scenarios, ",") {
		if !known(s) {
			return o, fmt.Errorf("unknown scenario %q", s)
		}
	}
	return o, nil
}

func known(name string) bool {
	for _, s := range scenarios {
		if s.name == name {
			return true
		}
	}
	return false
}

func run(ctx context.Context, args []string) error {
	o, err := parseFlags(args)
	if err != nil {
		return err
	}
	if _, err := raiseFileLimit(); err != nil {
		return fmt.Errorf("raise the open files limit: %w", err)
	}
	tempOut := o.out == ""
	if tempOut {
		if o.out, err = os.MkdirTemp("", "chatd-bench-"); err != nil {
			return err
		}
	} else if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	start, load0 := time.Now(), loadAvg()
	logf("building into %s", o.out)
	b, err := build(ctx, filepath.Join(o.out, "bin"))
	if err != nil {
		return err
	}
	if o.chatdBin != "" {
		b.chatd = o.chatdBin
	}
	e := &env{bins: b, dir: o.out}
	defer e.close()
	if err := e.startUpstream(ctx); err != nil {
		return err
	}
	r := &report{}
	for _, s := range scenarios {
		if !strings.Contains(","+o.scenarios+",", ","+s.name+",") {
			continue
		}
		logf("scenario %s (load %.2f)", s.name, loadAvg())
		t := time.Now()
		if err := s.run(ctx, e, r, o.cfg); err != nil {
			r.problem("scenario %s failed: %v", s.name, err)
			if ctx.Err() != nil {
				break
			}
		}
		logf("scenario %s done in %s", s.name, time.Since(t).Round(time.Second))
	}
	e.close()
	md := r.markdown(header(ctx, o, args, start, load0))
	if !o.smoke || len(r.problems) > 0 {
		fmt.Print(md)
	} else {
		logf("smoke run: every scenario ran and every answer arrived whole (%d checks, timings not judged)", len(r.checks))
	}
	if err := os.WriteFile(filepath.Join(o.out, "report.md"), []byte(md), 0o644); err != nil {
		return err
	}
	if o.reportTo != "" {
		if err := os.WriteFile(o.reportTo, []byte(md), 0o644); err != nil {
			return err
		}
	}
	if len(r.problems) > 0 {
		logf("report, profiles and logs in %s", o.out)
		return fmt.Errorf("%d problems found by the harness (see the report)", len(r.problems))
	}
	if o.smoke && tempOut {
		return os.RemoveAll(o.out)
	}
	logf("report, profiles and logs in %s", o.out)
	return nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench %s: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}
