// Command loadgen drives streaming chat load and measures it (package
// chatd/bench/load): time to first token and per-token lateness against the
// fake upstream's CLOCK_MONOTONIC stamps, as percentiles.
//
//	loadgen register -url http://127.0.0.1:8080 -n 100 -out users.json
//	loadgen run -target chatd -url http://127.0.0.1:8080 -users users.json \
//	        -streams 50 -tokens 100 -delay 20ms [-answers 2 -spread 1s -tabs 4 -stall]
//	loadgen run -target relay -url ws://127.0.0.1:8090/ws -streams 50 -tokens 100 -delay 20ms
//	loadgen run -target upstream -url http://127.0.0.1:8081/v1 -streams 50 -tokens 100 -delay 20ms
//	loadgen idle -target chatd -url http://127.0.0.1:8080 -users users.json -conns 5000 [-sse]
//
// run prints one JSON object (load.Result) on stdout, or a table with
// -table (lateness also by when the tokens were stamped, from the first
// prompt); with -marks it first prints {"mark":"start"} and {"mark":"end"}
// lines around the streaming (after the connections are open, before they
// close), so a caller can sample the server's CPU time there; with -hold
// too it keeps the connections open after the end mark until its standard
// input closes, so the caller can wait for the server to finish the run's
// work (such as indexing the answers) before it samples. idle prints
// {"ready":N} once its connections are open, keeps them open until its
// standard input closes, then prints {"dropped":N}: how many the server
// closed meanwhile. The target's server, the fake upstream and
// loadgen must run on the same host (the stamps are CLOCK_MONOTONIC).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"chatd/bench/load"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: loadgen register|run|idle [flags] (-h for the flags)")
	}
	fs := flag.NewFlagSet("loadgen "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	switch args[0] {
	case "register":
		return register(ctx, fs, args[1:], stdout)
	case "run":
		return runLoad(ctx, fs, args[1:], stdin, stdout)
	case "idle":
		return idle(ctx, fs, args[1:], stdin, stdout)
	}
	return fmt.Errorf("unknown command %q: use register, run or idle", args[0])
}

func register(ctx context.Context, fs *flag.FlagSet, args []string, stdout io.Writer) error {
	url := fs.String("url", "http://127.0.0.1:8080", "chatd base URL")
	n := fs.Int("n", 10, "accounts to register")
	prefix := fs.String("prefix", "bench", "email prefix (emails are <prefix><i>@bench.example)")
	par := fs.Int("parallel", 8, "registrations at once")
	out := fs.String("out", "", "write the users here (JSON) instead of stdout")
	if err := fs.Parse(args); err != nil {
		return err
	}
	users, err := load.Register(ctx, *url, *n, *par, *prefix)
	if err != nil {
		return err
	}
	data, err := json.Marshal(users)
	if err != nil {
		return err
	}
	if *out == "" {
		_, err = fmt.Fprintf(stdout, "%s\n", data)
		return err
	}
	return os.WriteFile(*out, data, 0o600)
}

func runLoad(ctx context.Context, fs *flag.FlagSet, args []string, stdin io.Reader, stdout io.Writer) error {
	var s load.Spec
	fs.StringVar(&s.Target, "target", load.TargetChatd, "chatd | relay | upstream")
	fs.StringVar(&s.URL, "url", "http://127.0.0.1:8080", "chatd base URL, relay ws:// URL or upstream API root")
	fs.StringVar(&s.FollowURL, "follow-url", "", "chatd: base URL of another instance for the tabs after the first (default: -url)")
	users := fs.String("users", "", "JSON file of registered users (chatd)")
	fs.StringVar(&s.Model, "model", "fake-mini", "model to ask for")
	fs.IntVar(&s.Streams, "streams", 1, "concurrent streams")
	fs.IntVar(&s.Answers, "answers", 1, "answers per stream, one after the other")
	fs.IntVar(&s.Tokens, "tokens", 50, "tokens per answer")
	fs.DurationVar(&s.Delay, "delay", 20*time.Millisecond, "pause between tokens (20ms is 50 tokens/s)")
	fs.DurationVar(&s.Spread, "spread", 0, "stagger the streams' starts over this long")
	fs.IntVar(&s.Tabs, "tabs", 1, "chatd: connections of each stream's user following its answers")
	fs.BoolVar(&s.StallTab, "stall", false, "chatd: the last tab of each stream stops reading")
	fs.DurationVar(&s.Timeout, "timeout", 0, "bound on the whole run (0: from the streams' length)")
	table := fs.Bool("table", false, "print a table instead of JSON")
	marks := fs.Bool("marks", false, `print {"mark":"start"} when the connections are open and {"mark":"end"} when the streams ended`)
	hold := fs.Bool("hold", false, "with -marks: after the end mark, keep the connections open until standard input closes")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *marks {
		s.OnStart = func() { fmt.Fprintln(stdout, `{"mark":"start"}`) }
		s.OnEnd = func() {
			fmt.Fprintln(stdout, `{"mark":"end"}`)
			if *hold {
				untilClosed(ctx, stdin)
			}
		}
	}
	var err error
	if s.Users, err = readUsers(*users); err != nil {
		return err
	}
	res, err := load.Run(ctx, s)
	if err != nil {
		return err
	}
	if *table {
		printTable(stdout, res)
		return nil
	}
	return json.NewEncoder(stdout).Encode(res)
}

// untilClosed returns once r reaches its end (or fails), or ctx ends.
func untilClosed(ctx context.Context, r io.Reader) {
	closed := make(chan struct{})
	go func() { // ends with the process if ctx ends first: a read of stdin cannot be cancelled
		_, _ = io.Copy(io.Discard, r)
		close(closed)
	}()
	select {
	case <-closed:
	case <-ctx.Done():
	}
}

func idle(ctx context.Context, fs *flag.FlagSet, args []string, stdin io.Reader, stdout io.Writer) error {
	var s load.IdleSpec
	fs.StringVar(&s.Target, "target", load.TargetChatd, "chatd | relay")
	fs.StringVar(&s.URL, "url", "http://127.0.0.1:8080", "chatd base URL or relay ws:// URL")
	users := fs.String("users", "", "JSON file of registered users (chatd)")
	fs.IntVar(&s.Conns, "conns", 100, "connections to open")
	fs.IntVar(&s.Parallel, "parallel", 32, "connections being opened at once")
	fs.BoolVar(&s.SSE, "sse", false, "open chatd's event streams (GET /api/events) instead of WebSockets")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var err error
	if s.Users, err = readUsers(*users); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		_, _ = io.Copy(io.Discard, stdin)
		cancel()
	}()
	dropped, err := load.Idle(ctx, s, func() { fmt.Fprintf(stdout, "{\"ready\":%d}\n", s.Conns) })
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "{\"dropped\":%d}\n", dropped)
	return err
}

func readUsers(path string) ([]load.User, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var users []load.User
	if err := json.Unmarshal(data, &users); err != nil {
		return nil, fmt.Errorf("users file %s: %w", path, err)
	}
	return users, nil
}

func printTable(w io.Writer, r load.Result) {
	fmt.Fprintf(w, "target %s: %d streams x %d tabs, %d/%d answers, %d/%d tokens in %d frames, %.2fs, %d errors\n",
		r.Target, r.Streams, r.Tabs, r.Answers, r.Expected, r.Tokens, r.ExpectedTokens, r.Frames, r.Wall, r.Errors)
	fmt.Fprintf(w, "%-14s %8s %8s %8s %8s %8s\n", "ms", "p50", "p90", "p99", "max", "n")
	line := func(name string, s load.Summary) {
		fmt.Fprintf(w, "%-14s %8.2f %8.2f %8.2f %8.2f %8d\n", name, s.P50, s.P90, s.P99, s.Max, s.N)
	}
	line("first token", r.TTFT)
	line("lateness", r.Lateness)
	for _, win := range r.LatenessByTime {
		line(fmt.Sprintf("  %d-%d ms", win.FromMs, win.ToMs), win.Summary)
	}
	for _, e := range r.FirstErrors {
		fmt.Fprintln(w, "error:", e)
	}
}
