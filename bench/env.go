package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"chatd/bench/load"
)

// bins are the binaries the benchmark runs, built from this module.
type bins struct{ chatd, fakeai, relay, loadgen, devstack string }

// build compiles the binaries into dir.
func build(ctx context.Context, dir string) (bins, error) {
	root, err := moduleRoot(ctx)
	if err != nil {
		return bins{}, err
	}
	b := bins{filepath.Join(dir, "chatd"), filepath.Join(dir, "fakeai"), filepath.Join(dir, "relay"), filepath.Join(dir, "loadgen"),
		filepath.Join(dir, "devstack")}
	for _, t := range []struct{ out, pkg string }{
		{b.chatd, "./cmd/chatd"}, {b.fakeai, "./cmd/fakeai"}, {b.relay, "./cmd/relay"}, {b.loadgen, "./cmd/loadgen"},
		{b.devstack, "./cmd/devstack"},
	} {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", t.out, t.pkg)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return b, fmt.Errorf("go build %s: %w\n%s", t.pkg, err, out)
		}
	}
	return b, nil
}

func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(out)) == "" || strings.TrimSpace(string(out)) == os.DevNull {
		return "", fmt.Errorf("run the benchmark inside the chatd module (go env GOMOD: %v)", err)
	}
	return filepath.Dir(strings.TrimSpace(string(out))), nil
}

// env is the set of processes of a benchmark run.
type env struct {
	bins bins
	dir  string // logs, data directories, profiles

	fake    *proc
	fakeURL string // API root, http://host:port/v1

	relay      *proc
	relayURL   string // ws://host:port/ws
	relayPprof string
	relayRuns  int

	chatd      *proc
	chatdURL   string // http://host:port
	chatdPprof string
	chatdRuns  int
	chatdData  string // the data directory of the last startChatd
	usersFile  string
	users      int
}

var (
	pprofAddrRE = regexp.MustCompile(`pprof listening addr=(\S+)`)
	chatdAddrRE = regexp.MustCompile(`"msg":"listening","addr":"([^"]+)"`)
	chatdPprof  = regexp.MustCompile(`"msg":"pprof listening","addr":"([^"]+)"`)
)

// startUpstream starts the fake OpenAI server and the relay in front of it.
func (e *env) startUpstream(ctx context.Context) error {
	p, err := startProc(ctx, "fakeai", e.bins.fakeai, []string{"-addr", "127.0.0.1:0", "-log-level", "info"}, nil, e.dir,
		map[string]*regexp.Regexp{"addr": regexp.MustCompile(`fakeai listening.* addr=(\S+)`)})
	if err != nil {
		return err
	}
	e.fake, e.fakeURL = p, "http://"+p.addrs["addr"]+"/v1"
	return e.startRelay(ctx)
}

// startRelay starts (or restarts) the relay.
func (e *env) startRelay(ctx context.Context) error {
	if e.relay != nil {
		e.relay.stop()
		e.relay = nil
	}
	e.relayRuns++
	p, err := startProc(ctx, fmt.Sprintf("relay-%d", e.relayRuns), e.bins.relay,
		[]string{"-addr", "127.0.0.1:0", "-upstream", e.fakeURL, "-pprof", "127.0.0.1:0"}, nil, e.dir,
		map[string]*regexp.Regexp{"addr": regexp.MustCompile(`^relay listening addr=(\S+)`), "pprof": pprofAddrRE})
	if err != nil {
		return err
	}
	e.relay, e.relayURL, e.relayPprof = p, "ws://"+p.addrs["addr"]+"/ws", p.addrs["pprof"]
	return nil
}

// startChatd starts a fresh chatd (a new SQLite data directory) and
// registers users accounts through its API. The per-user limits are raised
// so that the load, not the limits, is measured; everything else keeps the
// production defaults (coalescing 25ms, checkpoints 300ms, info logs).
func (e *env) startChatd(ctx context.Context, users int) error {
	data, err := os.MkdirTemp(e.dir, "chatd-data-") // fresh, even in a reused -out
	if err != nil {
		return err
	}
	e.chatdData = data
	if err := e.restartChatd(ctx); err != nil {
		return err
	}
	e.usersFile = filepath.Join(e.dir, fmt.Sprintf("users-%d.json", e.chatdRuns))
	out, err := exec.CommandContext(ctx, e.bins.loadgen, "register", "-url", e.chatdURL, "-n", strconv.Itoa(users),
		"-parallel", "4", "-out", e.usersFile).CombinedOutput()
	if err != nil {
		return fmt.Errorf("register %d users: %w: %s", users, err, out)
	}
	e.users = users
	return nil
}

// restartChatd stops chatd and starts a new process on the data directory
// of the last startChatd: the accounts and their tokens stay valid, and the
// process starts with none of its predecessor's memory.
func (e *env) restartChatd(ctx context.Context) error {
	e.stopChatd()
	e.chatdRuns++
	env := []string{
		"CHATD_ADDR=127.0.0.1:0", "CHATD_DATA_DIR=" + e.chatdData, "CHATD_PPROF_ADDR=127.0.0.1:0",
		"OPENAI_API_KEY=bench", "OPENAI_BASE_URL=" + e.fakeURL, "OPENAI_MODELS=fake-mini",
		"CHATD_BCRYPT_COST=4", "CHATD_MAX_CONNS_PER_USER=10000", "CHATD_MAX_ANSWERS_PER_USER=10000",
		"CHATD_SENDS_PER_MINUTE=1000000", "CHATD_FRAMES_PER_MINUTE=1000000",
		// loadgen registers each account from its own forwarded address:
		// sign-ups are limited per client address.
		"CHATD_TRUSTED_PROXIES=127.0.0.1",
		"CHATD_REGISTRATIONS_PER_HOUR_IP=1000000", "CHATD_CONVERSATIONS_PER_MINUTE=1000000",
		"CHATD_MAX_CONNECTIONS=1000000",
	}
	p, err := startProc(ctx, fmt.Sprintf("chatd-%d", e.chatdRuns), e.bins.chatd, nil, env, e.dir,
		map[string]*regexp.Regexp{"addr": chatdAddrRE, "pprof": chatdPprof})
	if err != nil {
		return err
	}
	e.chatd, e.chatdURL, e.chatdPprof = p, "http://"+p.addrs["addr"], p.addrs["pprof"]
	return nil
}

func (e *env) stopChatd() {
	if e.chatd != nil {
		e.chatd.stop()
		e.chatd = nil
	}
}

func (e *env) close() {
	e.stopChatd()
	e.relay.stop()
	e.fake.stop()
}

// server returns the process serving a target (nil for the upstream,
// which has no server in between).
func (e *env) server(target string) *proc {
	switch target {
	case load.TargetChatd:
		return e.chatd
	case load.TargetRelay:
		return e.relay
	}
	return nil
}

// runSpec is one loadgen run.
type runSpec struct {
	target  string
	streams int
	answers int
	tokens  int
	delay   time.Duration
	spread  time.Duration
	tabs    int
	stall   bool
	// profile, when set, is a file to save the server's CPU profile of the
	// streaming part of the run to (profileFor long).
	profile    string
	profileFor time.Duration
	// allocs samples the server's allocation counters (through pprof) at
	// the start and end marks.
	allocs bool
	// url, followURL, usersFile and servers, when set, replace the target's
	// URL, its users and the processes whose CPU is counted (summed), for
	// chatd processes other than e.chatd (the bus scenario's cluster);
	// followURL is where the tabs after the first connect.
	url, followURL, usersFile string
	servers                   []*proc
}

// sample is what one run measured: the load generator's result and the
// CPU the processes used while the streams ran.
type sample struct {
	res       load.Result
	serverCPU float64 // seconds; 0 for the upstream target
	fakeCPU   float64
	loadCPU   float64 // the whole loadgen process, setup included
	loadWall  float64 // the loadgen process's lifetime, seconds
	// cpuWall is the window serverCPU and fakeCPU were read over, seconds:
	// from the start mark to the end reading, the servers' settling after
	// the end mark included (res.Wall stops at the last answer's end).
	cpuWall   float64
	serverRSS int64 // after the run
	load1     float64
	// allocs and allocBytes are what the server allocated while the
	// streams ran (runSpec.allocs only).
	allocs, allocBytes int64
	// serverCPUs is serverCPU per process (runSpec.servers), in order.
	serverCPUs []float64
	// faults are the counters the run could not read, or read as nothing
	// where something was done: the figures above are not measurements
	// then, and noteBroken reports each as a problem.
	faults []string
}

// fault notes a counter the run could not read.
func (s *sample) fault(format string, args ...any) {
	s.faults = append(s.faults, fmt.Sprintf(format, args...))
}

// minTokensForCPU is the fewest tokens after which a server that read no
// CPU time at all between the marks is taken as unmeasured: at 1 µs per
// token, well under what any server here spends, they take a tick of
// /proc's 10 ms. Shorter runs (the smoke runs) may read 0 honestly.
const minTokensForCPU = 10_000

// perToken divides a server count by the tokens produced upstream.
func (s sample) perToken(v int64, tokensPerAnswer int) float64 {
	return float64(v) / float64(max(s.res.Expected*tokensPerAnswer, 1))
}

// framesPerToken is how many delta frames (or SSE chunks) the tabs read per
// token they received: 1 for a server that writes every token as it comes.
func (s sample) framesPerToken() float64 {
	return float64(s.res.Frames) / float64(max(s.res.Tokens, 1))
}

// cpuPercent is cpu, a CPU time read over the run's CPU window, as a share
// of one core over that window (200 for both of two cores).
func (s sample) cpuPercent(cpu float64) float64 {
	return cpu / max(s.cpuWall, 0.001) * 100
}

// cpuPerToken is the server's CPU time per token produced upstream, in µs.
func (s sample) cpuPerToken(tokensPerAnswer int) float64 {
	n := s.res.Expected * tokensPerAnswer
	if n == 0 {
		return 0
	}
	return s.serverCPU / float64(n) * 1e6
}

// run runs loadgen for rs and samples the server's CPU time between its
// start mark and the servers' quiet after its end mark (see quiet); loadgen
// keeps its connections open until then.
func (e *env) run(ctx context.Context, rs runSpec) (sample, error) {
	url := map[string]string{load.TargetChatd: e.chatdURL, load.TargetRelay: e.relayURL, load.TargetUpstream: e.fakeURL}[rs.target]
	usersFile := e.usersFile
	if rs.url != "" {
		url, usersFile = rs.url, rs.usersFile
	}
	args := []string{"run", "-marks", "-hold", "-target", rs.target, "-url", url, "-streams", strconv.Itoa(rs.streams),
		"-answers", strconv.Itoa(max(rs.answers, 1)), "-tokens", strconv.Itoa(rs.tokens), "-delay", rs.delay.String(),
		"-spread", rs.spread.String(), "-tabs", strconv.Itoa(max(rs.tabs, 1))}
	if rs.target == load.TargetChatd {
		args = append(args, "-users", usersFile)
	}
	if rs.followURL != "" {
		args = append(args, "-follow-url", rs.followURL)
	}
	if rs.stall {
		args = append(args, "-stall")
	}
	cmd := exec.CommandContext(ctx, e.bins.loadgen, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return sample{}, err
	}
	hold, err := cmd.StdinPipe() // loadgen -hold keeps its connections open until it closes
	if err != nil {
		return sample{}, err
	}
	s := sample{load1: loadAvg()}
	started := time.Now()
	if err := cmd.Start(); err != nil {
		return s, err
	}
	srv := e.server(rs.target)
	servers := rs.servers
	if len(servers) > 0 {
		srv = servers[0]
	} else if srv != nil {
		servers = []*proc{srv}
	}
	var fake0 float64
	var cpu0 time.Time  // when the start mark's CPU was read
	var each0 []float64 // each server's CPU at the start mark
	var alloc0 memStats
	var alloc0Err error
	profDone := make(chan error, 1)
	profDone <- nil
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var last []byte
	marks := 0
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case bytes.Equal(line, []byte(`{"mark":"start"}`)):
			marks++
			if rs.allocs && srv != nil {
				if alloc0, alloc0Err = allocStats(ctx, e.pprofAddr(rs.target)); alloc0Err != nil {
					s.fault("allocations at the start mark: %v", alloc0Err)
				}
			}
			each0, fake0 = e.startCPU(&s, servers)
			cpu0 = time.Now()
			if rs.profile != "" && srv != nil {
				<-profDone
				go func() { profDone <- e.profile(ctx, rs.target, rs.profileFor, rs.profile) }()
			}
		case bytes.Equal(line, []byte(`{"mark":"end"}`)):
			marks++
			e.settle(ctx, servers)
			e.endCPU(&s, servers, each0, fake0, rs.streams*max(rs.answers, 1)*rs.tokens)
			if !cpu0.IsZero() {
				s.cpuWall = time.Since(cpu0).Seconds()
			}
			if rs.allocs && srv != nil && alloc0Err == nil {
				e.endAllocs(ctx, &s, rs.target, alloc0)
			}
			hold.Close()
		default:
			last = append(last[:0], line...)
		}
	}
	if err := cmd.Wait(); err != nil {
		return s, fmt.Errorf("loadgen %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	s.loadCPU = (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
	s.loadWall = time.Since(started).Seconds()
	hold.Close() // already closed at the end mark, unless loadgen printed none
	if marks != 2 {
		s.fault("%d of loadgen's two marks seen: no CPU time measured", marks)
	}
	if srv != nil {
		if s.serverRSS, err = rssBytes(srv.pid()); err != nil {
			s.fault("resident memory after the run: %v", err)
		}
	}
	if err := json.Unmarshal(last, &s.res); err != nil {
		return s, fmt.Errorf("loadgen output %q: %w", last, err)
	}
	if err := <-profDone; err != nil {
		return s, err
	}
	return s, nil
}

// quiet is how the end mark's readings wait for the servers to finish the
// run's work: after the last answer's end chatd still indexes the finished
// answers for search, once its store has been quiet for 200 ms (the SQLite
// store's IndexQuiet), and that work is the run's. The readings wait until
// the servers' CPU time, summed, rose by at most rise over interval (one
// tick of /proc's 10 ms), for at most bound; the relay and chatd alike.
// interval must exceed the delay before such work starts.
var quiet = struct {
	interval time.Duration
	rise     float64 // seconds
	bound    time.Duration
}{interval: 300 * time.Millisecond, rise: 0.015, bound: 5 * time.Second}

// settle waits until the servers are quiet (see quiet), ctx ends or a
// reading fails (endCPU reports it).
func (e *env) settle(ctx context.Context, servers []*proc) {
	if len(servers) == 0 {
		return
	}
	sum := func() (float64, error) {
		each, err := e.cpuEach(servers)
		var total float64
		for _, v := range each {
			total += v
		}
		return total, err
	}
	prev, err := sum()
	if err != nil {
		return
	}
	deadline := time.Now().Add(quiet.bound)
	t := time.NewTimer(quiet.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cur, err := sum()
		if err != nil || cur-prev <= quiet.rise {
			return
		}
		if !time.Now().Before(deadline) {
			logf("%s still busy %s after the end mark (%.2f s of CPU in the last %s); measured as it was",
				servers[0].name, quiet.bound, cur-prev, quiet.interval)
			return
		}
		prev = cur
		t.Reset(quiet.interval)
	}
}

// startCPU reads the CPU time of the servers and the fake upstream at the
// start mark; a reading that failed is a fault of s.
func (e *env) startCPU(s *sample, servers []*proc) (each []float64, fake float64) {
	each, err := e.cpuEach(servers)
	if err != nil {
		s.fault("CPU time at the start mark: %v", err)
	}
	if fake, err = e.cpu(e.fake); err != nil {
		s.fault("the fake upstream's CPU time at the start mark: %v", err)
	}
	return each, fake
}

// endCPU reads them again at the end mark into s; tokens is what the run
// asked for, to tell a server that read no CPU time from one too short to.
func (e *env) endCPU(s *sample, servers []*proc, each0 []float64, fake0 float64, tokens int) {
	fake, err := e.cpu(e.fake)
	if err != nil {
		s.fault("the fake upstream's CPU time at the end mark: %v", err)
	}
	s.fakeCPU = fake - fake0
	each, err := e.cpuEach(servers)
	if err != nil || len(each0) != len(each) {
		s.fault("CPU time at the end mark: %v", err)
		return
	}
	for i, v := range each {
		d := v - each0[i]
		if d <= 0 && tokens >= minTokensForCPU {
			s.fault("%s read no CPU time over %d tokens", servers[i].name, tokens)
		}
		s.serverCPUs = append(s.serverCPUs, d)
		s.serverCPU += d
	}
}

// endAllocs reads the server's allocation counters at the end mark into s;
// none over a run that streamed is a fault.
func (e *env) endAllocs(ctx context.Context, s *sample, target string, alloc0 memStats) {
	m, err := allocStats(ctx, e.pprofAddr(target))
	if err != nil {
		s.fault("allocations at the end mark: %v", err)
		return
	}
	s.allocs, s.allocBytes = m.Mallocs-alloc0.Mallocs, m.TotalAlloc-alloc0.TotalAlloc
	if s.allocs <= 0 || s.allocBytes <= 0 {
		s.fault("no allocations counted between the marks (%d, %d bytes)", s.allocs, s.allocBytes)
	}
}

// cpuEach is the CPU time each of the processes used so far; nil and the
// first error when one could not be read.
func (e *env) cpuEach(ps []*proc) ([]float64, error) {
	out := make([]float64, len(ps))
	for i, p := range ps {
		v, err := e.cpu(p)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// cpu is p's CPU time so far (0 for no process: the upstream target has
// no server).
func (e *env) cpu(p *proc) (float64, error) {
	if p == nil {
		return 0, nil
	}
	v, err := cpuSeconds(p.pid())
	if err != nil {
		return 0, fmt.Errorf("%s: %w", p.name, err)
	}
	return v, nil
}

// profile saves the CPU profile of a target's server over d to file.
func (e *env) profile(ctx context.Context, target string, d time.Duration, file string) error {
	return saveProfile(ctx, e.pprofAddr(target), fmt.Sprintf("profile?seconds=%d", max(int(d.Seconds()), 1)), file)
}

// pprofAddr is the profiling address of a target's server.
func (e *env) pprofAddr(target string) string {
	if target == load.TargetRelay {
		return e.relayPprof
	}
	return e.chatdPprof
}
