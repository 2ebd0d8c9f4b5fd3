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
	"strconv"
	"time"

	"chatd/bench/load"
)

// idleSample is what N idle connections cost a server.
type idleSample struct {
	heapStack  float64 // bytes per connection of heap in use plus stacks, after a GC
	rss        float64 // bytes per connection of resident memory, over the fresh process's
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
the freshly started process's, divided by N (an upper bound: it includes the
garbage and the runtime's slack); median of %d rounds. The relay is the bare
library: a handler goroutine blocked in Read and the library's buffers.
"chatd SSE" is chatd's user-wide event stream (GET /api/events), the live
channel's fallback, opened as many times and left idle.

%s
%s`, c.memoryUsers, c.memoryRounds,
		table([]string{"connections", "server", "KiB heap+stacks / conn", "KiB RSS / conn", "goroutines / conn"}, rows), heapTop))
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
	freshRSS, err := rssBytes(srv.pid())
	if err != nil {
		return idleSample{}, err
	}
	before, g0, _, err := e.idleState(ctx, addr, srv)
	if err != nil {
		return idleSample{}, err
	}
	cmd := exec.CommandContext(ctx, e.bins.loadgen, append(args, "-url", url, "-users", e.usersFile, "-conns", strconv.Itoa(n))...)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		return idleSample{}, err
	}
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() || lines.Text() != fmt.Sprintf(`{"ready":%d}`, n) {
		stdin.Close()
		return idleSample{}, fmt.Errorf("loadgen idle %d %s: %q, %v", n, target, lines.Text(), cmd.Wait())
	}
	after, g1, rss1, err := e.settled(ctx, addr, srv, g0+n)
	if err == nil && heap != "" {
		err = saveProfile(ctx, addr, "heap", heap)
	}
	stdin.Close()
	var out struct{ Dropped int }
	if lines.Scan() {
		_ = json.Unmarshal(lines.Bytes(), &out)
	}
	_, _ = io.Copy(io.Discard, stdout)
	if werr := cmd.Wait(); err == nil {
		err = werr
	}
	if err != nil {
		return idleSample{}, err
	}
	d := float64(n)
	return idleSample{
		heapStack:  float64(after.HeapInuse+after.StackInuse-before.HeapInuse-before.StackInuse) / d,
		rss:        float64(rss1-freshRSS) / d,
		goroutines: float64(g1-g0) / d,
		dropped:    out.Dropped,
	}, nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// idleState returns the server's heap after two collections (the first
// leaves what sync.Pools held, such as the router's request contexts, for
// the second to free), its goroutines and its resident memory.
func (e *env) idleState(ctx context.Context, addr string, p *proc) (memStats, int, int64, error) {
	if _, err := readMemStats(ctx, addr); err != nil {
		return memStats{}, 0, 0, err
	}
	m, err := readMemStats(ctx, addr)
	if err != nil {
		return m, 0, 0, err
	}
	g, err := goroutines(ctx, addr)
	if err != nil {
		return m, 0, 0, err
	}
	rss, err := rssBytes(p.pid())
	return m, g, rss, err
}

// settled waits until the server's goroutine count stops moving (at least
// want, or unchanged over three readings) and returns its state then.
func (e *env) settled(ctx context.Context, addr string, p *proc, want int) (memStats, int, int64, error) {
	prev, same := -1, 0
	for range 50 {
		g, err := goroutines(ctx, addr)
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
		time.Sleep(200 * time.Millisecond)
	}
	return e.idleState(ctx, addr, p)
}
