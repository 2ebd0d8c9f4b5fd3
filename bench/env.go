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
		"CHATD_BCRYPT_COST=4", "CHATD_MAX_CONNS_PER_USER=10000",
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
	serverRSS int64   // after the run
	load1     float64
	// allocs and allocBytes are what the server allocated while the
	// streams ran (runSpec.allocs only).
	allocs, allocBytes int64
	// serverCPUs is serverCPU per process (runSpec.servers), in order.
	serverCPUs []float64
}

// perToken divides a server count by the tokens produced upstream.
func (s sample) perToken(v int64, tokensPerAnswer int) float64 {
	return float64(v) / float64(max(s.res.Expected*tokensPerAnswer, 1))
}

// framesPerToken is how many delta frames (or SSE chunks) the tabs read per
// token they received: 1 for a server that writes every token as it comes.
func (s sample) framesPerToken() float64 {
	return float64(s.res.Frames) / float64(max(s.res.Tokens, 1))
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
// start and end marks.
func (e *env) run(ctx context.Context, rs runSpec) (sample, error) {
	url := map[string]string{load.TargetChatd: e.chatdURL, load.TargetRelay: e.relayURL, load.TargetUpstream: e.fakeURL}[rs.target]
	usersFile := e.usersFile
	if rs.url != "" {
		url, usersFile = rs.url, rs.usersFile
	}
	args := []string{"run", "-marks", "-target", rs.target, "-url", url, "-streams", strconv.Itoa(rs.streams),
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
	var each0 []float64 // each server's CPU at the start mark
	var alloc0 memStats
	profDone := make(chan error, 1)
	profDone <- nil
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var last []byte
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case bytes.Equal(line, []byte(`{"mark":"start"}`)):
			if rs.allocs && srv != nil {
				alloc0, _ = allocStats(ctx, e.pprofAddr(rs.target))
			}
			each0, fake0 = e.cpuEach(servers), cpuSeconds(e.fake.pid())
			if rs.profile != "" && srv != nil {
				<-profDone
				go func() { profDone <- e.profile(ctx, rs.target, rs.profileFor, rs.profile) }()
			}
		case bytes.Equal(line, []byte(`{"mark":"end"}`)):
			s.fakeCPU = cpuSeconds(e.fake.pid()) - fake0
			for i, v := range e.cpuEach(servers) {
				s.serverCPUs = append(s.serverCPUs, v-each0[i])
				s.serverCPU += v - each0[i]
			}
			if rs.allocs && srv != nil {
				if m, err := allocStats(ctx, e.pprofAddr(rs.target)); err == nil && alloc0.Mallocs > 0 {
					s.allocs, s.allocBytes = m.Mallocs-alloc0.Mallocs, m.TotalAlloc-alloc0.TotalAlloc
				}
			}
		default:
			last = append(last[:0], line...)
		}
	}
	if err := cmd.Wait(); err != nil {
		return s, fmt.Errorf("loadgen %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	s.loadCPU = (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
	s.loadWall = time.Since(started).Seconds()
	if srv != nil {
		s.serverRSS = rssBytes(srv.pid())
	}
	if err := json.Unmarshal(last, &s.res); err != nil {
		return s, fmt.Errorf("loadgen output %q: %w", last, err)
	}
	if err := <-profDone; err != nil {
		return s, err
	}
	return s, nil
}

// cpuEach is the CPU time each of the processes used so far.
func (e *env) cpuEach(ps []*proc) []float64 {
	out := make([]float64, len(ps))
	for i, p := range ps {
		out[i] = e.cpu(p)
	}
	return out
}

func (e *env) cpu(p *proc) float64 {
	if p == nil {
		return 0
	}
	return cpuSeconds(p.pid())
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
