package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"chatd/bench/load"
)

// idleSample is what N idle connections cost a server.
type idleSample struct {
	heapStack  float64 // bytes per connection of heap in use plus stacks, after a GC
	rss        float64 // bytes per connection of resident memory, over the process's before they opened
	rssOpen    int64   // resident memory with the connections open
	goroutines float64 // per connection
	dropped    int
}

// chatdSSE stands for chatd's SSE event streams in the memory scenario.
const chatdSSE = "chatd SSE"

// memory opens N idle connections (authenticated ones on chatd) on the
// relay and on chatd, interleaved, and measures what each costs the server
// after a garbage collection; and as many of chatd's SSE event streams.
func memory(ctx context.Context, e *env, r *report, c config) error {
	if err := e.startChatd(ctx, c.memoryUsers); err != nil {
		return err
	}
	got := map[string]map[int][]idleSample{load.TargetRelay: {}, load.TargetChatd: {}, chatdSSE: {}}
	for _, n := range c.memoryLevels {
		for round := range c.memoryRounds {
			for _, t := range rotate([]string{load.TargetRelay, load.TargetChatd, chatdSSE}, round) {
				heap := ""
				if t == load.TargetChatd && round == 0 && n == maxOf(c.memoryLevels) {
					heap = filepath.Join(e.dir, "chatd-idle-heap.pprof")
				}
				s, err := e.idle(ctx, t, n, heap)
				if err != nil {
					return err
				}
				if s.dropped > 0 {
					r.problem("memory: the server closed %d of %d idle %s connections", s.dropped, n, t)
				}
				got[t][n] = append(got[t][n], s)
			}
		}
	}
	var rows [][]string
	for _, n := range c.memoryLevels {
		for _, t := range []string{load.TargetRelay, load.TargetChatd, chatdSSE} {
			ss := got[t][n]
			rows = append(rows, []string{fmt.Sprint(n), t,
				f1(medianOf(ss, func(s idleSample) float64 { return s.heapStack / 1024 })),
				f1(medianOf(ss, func(s idleSample) float64 { return s.rss / 1024 })),
				f2(medianOf(ss, func(s idleSample) float64 { return s.goroutines }))})
		}
		kib := medianOf(got[load.TargetChatd][n], func(s idleSample) float64 { return s.rss / 1024 })
		heap := medianOf(got[load.TargetChatd][n], func(s idleSample) float64 { return s.heapStack / 1024 })
		r.check(fmt.Sprintf("RSS per idle authenticated connection, %d", n), "<= 32 KiB",
			fmt.Sprintf("%s KiB (heap and stacks %s KiB)", f1(kib), f1(heap)), kib <= 32)
		g := medianOf(got[load.TargetChatd][n], func(s idleSample) float64 { return s.goroutines })
		r.check(fmt.Sprintf("goroutines per idle connection, %d", n), "<= 2 (the reader and one more)", f2(g), g <= 2.05)
	}
	slopes := rssSlopes(got, c.memoryLevels)
	heapTop := ""
	if heapFile := filepath.Join(e.dir, "chatd-idle-heap.pprof"); fileExists(heapFile) {
		top, err := pprofTop(ctx, e.bins.chatd, heapFile, 12, "-sample_index=inuse_space")
		if err != nil {
			r.problem("idle heap profile: %v", err)
		}
		heapTop = fmt.Sprintf("chatd's heap with %d idle connections open (chatd-idle-heap.pprof), by what allocated it:\n\n%s", maxOf(c.memoryLevels), codeBlock(top))
	}
	r.section("3. Memory per idle connection", fmt.Sprintf(`
N WebSockets opened and left idle (chatd's authenticated with a JWT, spread
over %d users; the relay's bare), each sample in a server process started
for it (chatd on the same data directory). Per connection: Go heap in use plus goroutine
stacks after two forced GCs (the pprof heap endpoint with gc=1, MemStats HeapInuse +
StackInuse) and goroutines, differences between before opening and after,
divided by N; resident set size (from /proc) with the N connections open over
the process's before they opened, each read after the same memory readings
of the harness (which raise a fresh process's RSS by some 2 MiB), divided by
N (an upper bound: it includes the garbage and the runtime's slack); median
of %d rounds. The relay is the bare
library: a handler goroutine blocked in Read and the library's buffers.
"chatd SSE" is chatd's user-wide event stream (GET /api/events), the live
channel's fallback, opened as many times and left idle.

%s
%s
%s`, c.memoryUsers, c.memoryRounds,
		table([]string{"connections", "server", "KiB heap+stacks / conn", "KiB RSS / conn", "goroutines / conn"}, rows), slopes, heapTop))
	return nil
}

// idle measures n idle connections to target on a server process started
// for this sample alone; heap, when set, receives a heap profile taken
// while they are open. Resident memory, which a Go process keeps once it
// has it until the runtime returns it, then grows from a known start: a
// sample taken in a process that held more connections before (chatd's SSE
// streams cost twice its WebSockets) would count what the runtime has not
// yet returned.
func (e *env) idle(ctx context.Context, target string, n int, heap string) (idleSample, error) {
	start := e.restartChatd
	if target == load.TargetRelay {
		start = e.startRelay
	}
	if err := start(ctx); err != nil {
		return idleSample{}, err
	}
	srv, addr := e.relay, e.relayPprof
	url := e.relayURL
	args := []string{"idle", "-target", target}
	switch target {
	case load.TargetChatd:
		srv, addr, url = e.chatd, e.chatdPprof, e.chatdURL
	case chatdSSE:
		srv, addr, url = e.chatd, e.chatdPprof, e.chatdURL
		args = []string{"idle", "-target", load.TargetChatd, "-sse"}
	}
	p := idleProbe{addr: addr, rss: func() (int64, error) { return rssBytes(srv.pid()) }, poll: 200 * time.Millisecond}
	open := func(ctx context.Context) (func() (int, error), error) {
		return e.openIdle(ctx, append(args, "-url", url, "-users", e.usersFile, "-conns", strconv.Itoa(n)), n, target)
	}
	var whileOpen func(context.Context) error
	if heap != "" {
		whileOpen = func(ctx context.Context) error { return saveProfile(ctx, addr, "heap", heap) }
	}
	return measureIdle(ctx, p, n, open, whileOpen)
}

// openIdle starts loadgen idle with args and returns once its n
// connections are open; the function it returns closes them and says how
// many the server had closed meanwhile.
func (e *env) openIdle(ctx context.Context, args []string, n int, target string) (func() (int, error), error) {
	cmd := exec.CommandContext(ctx, e.bins.loadgen, args...)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() || lines.Text() != fmt.Sprintf(`{"ready":%d}`, n) {
		stdin.Close()
		return nil, fmt.Errorf("loadgen idle %d %s: %q, %v", n, target, lines.Text(), cmd.Wait())
	}
	return func() (int, error) {
		stdin.Close()
		var out struct{ Dropped int }
		if lines.Scan() {
			_ = json.Unmarshal(lines.Bytes(), &out)
		}
		_, _ = io.Copy(io.Discard, stdout)
		return out.Dropped, cmd.Wait()
	}, nil
}

// measureIdle measures what n connections cost the server p reads: its
// state before, the connections opened (open), its state once they
// settled (whileOpen, when set, runs then), and the connections closed.
// Both states are read after the same sequence of the harness's own reads
// (goroutine counts, two heap dumps with a collection, a goroutine dump):
// the first of them raise a fresh process's resident memory by 1.6 to
// 2 MiB, which a baseline read before them charged to the connections.
func measureIdle(ctx context.Context, p idleProbe, n int, open func(context.Context) (func() (int, error), error),
	whileOpen func(context.Context) error) (idleSample, error) {
	before, g0, rss0, err := p.settled(ctx, 0)
	if err != nil {
		return idleSample{}, err
	}
	closeConns, err := open(ctx)
	if err != nil {
		return idleSample{}, err
	}
	after, g1, rss1, err := p.settled(ctx, g0+n)
	if err == nil && whileOpen != nil {
		err = whileOpen(ctx)
	}
	dropped, cerr := closeConns()
	if err == nil {
		err = cerr
	}
	if err != nil {
		return idleSample{}, err
	}
	d := float64(max(n, 1))
	return idleSample{
		heapStack:  float64(after.HeapInuse+after.StackInuse-before.HeapInuse-before.StackInuse) / d,
		rss:        float64(rss1-rss0) / d,
		rssOpen:    rss1,
		goroutines: float64(g1-g0) / d,
		dropped:    dropped,
	}, nil
}

// rssSlopes says, for each server, the resident memory each connection
// added between the fewest and the most connections measured (medians of
// the RSS with them open): a figure without the fixed costs of a process.
// Empty for fewer than two levels.
func rssSlopes(got map[string]map[int][]idleSample, levels []int) string {
	lo, hi := slices.Min(levels), slices.Max(levels)
	if lo == hi {
		return ""
	}
	var parts []string
	for _, t := range []string{load.TargetRelay, load.TargetChatd, chatdSSE} {
		open := func(n int) float64 {
			return medianOf(got[t][n], func(s idleSample) float64 { return float64(s.rssOpen) })
		}
		parts = append(parts, fmt.Sprintf("%s %s", t, f1((open(hi)-open(lo))/float64(hi-lo)/1024)))
	}
	return fmt.Sprintf("RSS per connection between %d and %d connections (the slope, KiB): %s.\n", lo, hi, strings.Join(parts, ", "))
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// idleProbe reads a server's memory for the memory scenario: through its
// pprof endpoint at addr, and its resident memory through rss; poll is the
// pause between goroutine counts while the server settles.
type idleProbe struct {
	addr string
	rss  func() (int64, error)
	poll time.Duration
}

// state returns the server's heap after two collections (the first
// leaves what sync.Pools held, such as the router's request contexts, for
// the second to free), its goroutines and its resident memory.
func (p idleProbe) state(ctx context.Context) (memStats, int, int64, error) {
	if _, err := readMemStats(ctx, p.addr); err != nil {
		return memStats{}, 0, 0, err
	}
	m, err := readMemStats(ctx, p.addr)
	if err != nil {
		return m, 0, 0, err
	}
	g, err := goroutines(ctx, p.addr)
	if err != nil {
		return m, 0, 0, err
	}
	rss, err := p.rss()
	return m, g, rss, err
}

// settled waits until the server's goroutine count stops moving (at least
// want, or unchanged over three readings) and returns its state then.
func (p idleProbe) settled(ctx context.Context, want int) (memStats, int, int64, error) {
	prev, same := -1, 0
	for range 50 {
		g, err := goroutines(ctx, p.addr)
		if err != nil {
			return memStats{}, 0, 0, err
		}
		if g == prev {
			same++
		} else {
			same = 0
		}
		if same >= 3 || g >= want && same >= 1 {
			break
		}
		prev = g
		select {
		case <-ctx.Done():
			return memStats{}, 0, 0, ctx.Err()
		case <-time.After(p.poll): // polling the count
		}
	}
	return p.state(ctx)
}
