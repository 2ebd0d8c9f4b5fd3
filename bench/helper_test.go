package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"chatd/bench/load"
)

// The test binary doubles as a fake loadgen and a fake server process for
// env.run's tests, chosen by BENCH_TEST_HELPER.
func TestMain(m *testing.M) {
	switch os.Getenv("BENCH_TEST_HELPER") {
	case "loadgen":
		os.Exit(fakeLoadgenMain(os.Args[1:]))
	case "server":
		os.Exit(fakeServerMain())
	}
	os.Exit(m.Run())
}

// fakeLoadgenMain prints loadgen run's marks and then its result
// (BENCH_TEST_RESULT, JSON). After the end mark it sends SIGUSR1 to
// BENCH_TEST_SIGNAL_PID, if set, and with -hold waits for its standard
// input to close, as loadgen does.
func fakeLoadgenMain(args []string) int {
	fmt.Println(`{"mark":"start"}`)
	fmt.Println(`{"mark":"end"}`)
	if pid := os.Getenv("BENCH_TEST_SIGNAL_PID"); pid != "" {
		var n int
		fmt.Sscan(pid, &n)
		if err := syscall.Kill(n, syscall.SIGUSR1); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	if slices.Contains(args, "-hold") {
		_, _ = io.Copy(io.Discard, os.Stdin)
	}
	fmt.Println(os.Getenv("BENCH_TEST_RESULT"))
	return 0
}

// fakeServerMain says it listens, then on SIGUSR1 waits 200 ms (as chatd's
// search indexer waits for a quiet moment) and burns 300 ms of CPU time;
// SIGTERM ends it.
func fakeServerMain() int {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGUSR1, syscall.SIGTERM)
	fmt.Println("fake server listening at nowhere")
	for s := range sigs {
		if s == syscall.SIGTERM {
			return 0
		}
		time.Sleep(200 * time.Millisecond) // the deferred work starts after the end mark
		burn(300 * time.Millisecond)
	}
	return 0
}

var burnt int

// burn spins until the process used d more CPU time, however busy the
// machine is.
func burn(d time.Duration) {
	start := ownCPU()
	for ownCPU()-start < d {
		for range 100_000 {
			burnt++
		}
	}
}

func ownCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// fakeBins returns binaries whose loadgen is this test binary as
// fakeLoadgenMain, printing res, with env added to its environment.
func fakeBins(t *testing.T, res load.Result, env ...string) bins {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	env = append(env, "BENCH_TEST_HELPER=loadgen", "BENCH_TEST_RESULT="+string(data))
	script := "#!/bin/sh\nexec env '" + strings.Join(env, "' '") + "' '" + exe + "' \"$@\"\n"
	path := filepath.Join(t.TempDir(), "loadgen")
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return bins{loadgen: path}
}

// startFakeServer starts this test binary as fakeServerMain.
func startFakeServer(ctx context.Context, t *testing.T, name string) *proc {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p, err := startProc(ctx, name, exe, nil, []string{"BENCH_TEST_HELPER=server"}, t.TempDir(),
		map[string]*regexp.Regexp{"addr": regexp.MustCompile(`^fake server listening at (\S+)`)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.stop)
	return p
}

// wholeResult is a run of streams x tokens that arrived whole.
func wholeResult(streams, tokens int) load.Result {
	return load.Result{Target: load.TargetRelay, Streams: streams, Tabs: 1, Answers: streams, Expected: streams,
		Tokens: int64(streams * tokens), ExpectedTokens: int64(streams * tokens)}
}
