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
// (BENCH_TEST_RESULT, JSON). Between the marks it sends SIGUSR1 to
// BENCH_TEST_SIGNAL_PID, if set, and waits until that process is using
// CPU time (startWork); with -hold it waits for its standard input to
// close, as loadgen does.
func fakeLoadgenMain(args []string) int {
	fmt.Println(`{"mark":"start"}`)
	if pid := os.Getenv("BENCH_TEST_SIGNAL_PID"); pid != "" {
		var n int
		fmt.Sscan(pid, &n)
		if err := startWork(n); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	fmt.Println(`{"mark":"end"}`)
	if slices.Contains(args, "-hold") {
		_, _ = io.Copy(io.Discard, os.Stdin)
	}
	fmt.Println(os.Getenv("BENCH_TEST_RESULT"))
	return 0
}

// startWork sends SIGUSR1 to pid and returns once its CPU time rose by two
// ticks of /proc's (it is burning, see fakeServerMain; an idle process
// may use a tick), or after 30 s with an error.
func startWork(pid int) error {
	cpu0, err := cpuSeconds(pid)
	if err != nil {
		return err
	}
	if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		cpu, err := cpuSeconds(pid)
		if err != nil {
			return err
		}
		if cpu-cpu0 >= 0.015 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("process %d used no CPU time within 30 s of SIGUSR1", pid)
		}
		time.Sleep(time.Millisecond) // a poll of /proc, not a synchronisation
	}
}

// fakeServerMain says it listens, then on SIGUSR1 burns 300 ms of CPU
// time (the deferred work: its first ticks before the end mark, the
// rest after it); SIGTERM ends it.
func fakeServerMain() int {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGUSR1, syscall.SIGTERM)
	fmt.Println("fake server listening at nowhere")
	for s := range sigs {
		if s == syscall.SIGTERM {
			return 0
		}
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
