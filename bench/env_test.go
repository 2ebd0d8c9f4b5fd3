package main

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"chatd/bench/load"
	"chatd/persistence/sqlite"
)

// TestRunServerGone: a server whose CPU time cannot be read (its process
// is gone) is a fault of the run, which noteBroken reports; cpuSeconds read
// it as 0 before, and the run measured 0 µs per token without a word.
func TestRunServerGone(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv := startFakeServer(ctx, t, "gone")
	srv.stop()
	e := &env{bins: fakeBins(t, wholeResult(2, 10)), dir: t.TempDir()}
	s, err := e.run(ctx, runSpec{target: load.TargetRelay, streams: 2, tokens: 10, url: "ws://unused", servers: []*proc{srv}})
	if err != nil {
		t.Fatal(err)
	}
	var r report
	noteBroken(&r, "cpu, relay", s)
	if len(r.problems) == 0 || !strings.Contains(strings.Join(r.problems, "\n"), "CPU time") {
		t.Fatalf("problems %q, faults %q: want the unread CPU time", r.problems, s.faults)
	}
}

// TestRunReadsCPU: a server that is there is read without a fault; one
// that read no CPU time over a run too long for that (an idle process
// between the marks, standing for a counter that does not move) is a fault,
// and over a short run it is not (/proc's 10 ms resolution).
func TestRunReadsCPU(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv := startFakeServer(ctx, t, "there")
	for _, c := range []struct {
		streams, tokens int
		fault           bool
	}{{2, 10, false}, {20, minTokensForCPU / 20, true}} {
		e := &env{bins: fakeBins(t, wholeResult(c.streams, c.tokens)), dir: t.TempDir()}
		s, err := e.run(ctx, runSpec{target: load.TargetRelay, streams: c.streams, tokens: c.tokens, url: "ws://unused", servers: []*proc{srv}})
		if err != nil {
			t.Fatal(err)
		}
		if len(s.serverCPUs) != 1 || s.serverRSS <= 0 {
			t.Fatalf("%d x %d tokens: CPU %v, RSS %d", c.streams, c.tokens, s.serverCPUs, s.serverRSS)
		}
		if got := len(s.faults) == 1 && strings.Contains(s.faults[0], "read no CPU time"); got != c.fault && s.serverCPU == 0 {
			t.Errorf("%d x %d tokens, no CPU time read: faults %q, want the fault %v", c.streams, c.tokens, s.faults, c.fault)
		}
	}
}

// TestQuietOutlastsIndexDelay: the end mark's wait for quiet servers
// (quiet.interval) must outlast the delay before chatd's deferred indexing
// starts (the SQLite store's default IndexQuiet, chatd's
// CHATD_SEARCH_INDEX_QUIET), with 100 ms to spare, or the readings stop
// before that work begins and leave its CPU out of the run;
// TestRunCountsDeferredWork widens the interval for its own run and so
// cannot tell.
func TestQuietOutlastsIndexDelay(t *testing.T) {
	t.Parallel()
	if spare := quiet.interval - sqlite.DefaultIndexQuiet; spare < 100*time.Millisecond {
		t.Fatalf("quiet.interval %s leaves %s over the index delay %s, want at least 100ms", quiet.interval, spare, sqlite.DefaultIndexQuiet)
	}
}

// TestRunCountsDeferredWork: work a server does for the run after the last
// answer's end (chatd indexes the finished answers once its store has been
// quiet for 200 ms) is the run's CPU time. The fake server burns 300 ms of
// CPU, all but its first 20 ms or so after the end mark: the fake loadgen
// prints the mark once the server is burning, so the work is under way
// when the wait begins however late a process is scheduled. The end
// reading was taken at the mark before, and counted little of it.
//
// Not parallel: it widens quiet's interval for its run (the parallel tests
// start after it). A process burning CPU on this 2-core machine beside ten
// others read 0 to 100 ms of CPU time per 300 ms, so the default interval
// took a starved burner for a quiet one; over 1 s it is not.
func TestRunCountsDeferredWork(t *testing.T) {
	saved := quiet
	t.Cleanup(func() { quiet = saved })
	quiet.interval, quiet.bound = time.Second, 30*time.Second
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv := startFakeServer(ctx, t, "deferred")
	e := &env{bins: fakeBins(t, wholeResult(2, 10), fmt.Sprintf("BENCH_TEST_SIGNAL_PID=%d", srv.pid())), dir: t.TempDir()}
	s, err := e.run(ctx, runSpec{target: load.TargetChatd, streams: 2, tokens: 10, url: "http://unused", usersFile: "unused",
		servers: []*proc{srv}})
	if err != nil {
		t.Fatal(err)
	}
	if s.serverCPU < 0.25 || len(s.faults) > 0 {
		t.Fatalf("server CPU %.2f s (faults %q), want the 0.3 s it burnt, most of it after the end mark", s.serverCPU, s.faults)
	}
	if min := quiet.interval.Seconds() + 0.25; s.cpuWall < min {
		t.Fatalf("CPU window %.2f s, want the settling after the end mark in it (the burn, then %s of quiet: over %.2f s)",
			s.cpuWall, quiet.interval, min)
	}
}

// TestCountersThatReadNothing: a ratio whose candidate measured nothing (a
// counter that read 0) is not a measurement and meets no bound, nor does a
// ratio over nothing; a run whose tabs received fewer tokens than were
// streamed (missing stamps: no lateness samples, a p99 of 0) is a problem.
func TestCountersThatReadNothing(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		v    float64
		met  bool
		text string
	}{{0, false, "n/a (nothing measured)"}, {math.Inf(1), false, "n/a (too short to measure)"}, {1.2, true, "1.20x"}, {1.31, false, "1.31x"}} {
		if got := within(c.v, 1.3); got != c.met {
			t.Errorf("within(%v, 1.3) = %v, want %v", c.v, got, c.met)
		}
		if got := times(c.v); got != c.text {
			t.Errorf("times(%v) = %q, want %q", c.v, got, c.text)
		}
	}
	res := wholeResult(2, 10)
	res.Tokens = 0
	var r report
	noteBroken(&r, "latency 1 stream, chatd", sample{res: res})
	if len(r.problems) != 1 || !strings.Contains(r.problems[0], "0/20 tokens") {
		t.Fatalf("problems %q", r.problems)
	}
}
