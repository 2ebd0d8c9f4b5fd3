package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"chatd/bench/load"
)

// busCluster is the bus scenario's processes: cmd/devstack twice (FerretDB
// in one process, a NATS server with JetStream in another), two chatd instances joined over NATS, and a
// single chatd on the same store without NATS (the single-process figure).
type busCluster struct {
	stack, natsStack   *proc // devstack's FerretDB and its NATS server, each in a process of its own
	nodes              []*proc
	urls               []string
	users              string // users registered through the cluster
	solo               *proc
	soloURL, soloUsers string
}

// chatd settings shared by the bus scenario's instances: the per-user
// limits raised as in startChatd, one signing key for the cluster, and
// loadgen's registrations taken as coming from many addresses (sign-ups
// are limited per address).
func (e *env) busChatdEnv(mongoURI, db string) []string {
	return []string{
		"CHATD_ADDR=127.0.0.1:0", "MONGODB_URI=" + mongoURI, "MONGODB_DATABASE=" + db,
		"JWT_SECRET=bench-cluster-secret-of-at-least-32-bytes",
		"OPENAI_API_KEY=bench", "OPENAI_BASE_URL=" + e.fakeURL, "OPENAI_MODELS=fake-mini",
		"CHATD_BCRYPT_COST=4", "CHATD_MAX_CONNS_PER_USER=10000", "CHATD_MAX_ANSWERS_PER_USER=10000", "CHATD_TRUSTED_PROXIES=127.0.0.1",
		"CHATD_SENDS_PER_MINUTE=1000000", "CHATD_FRAMES_PER_MINUTE=1000000",
	}
}

// startBusCluster starts the scenario's processes and registers users on
// the cluster and on the single process; mongoURI2, when set, replaces
// devstack's FerretDB as the store.
func (e *env) startBusCluster(ctx context.Context, users int, mongoURI2 string) (*busCluster, error) {
	b := &busCluster{}
	data, err := os.MkdirTemp(e.dir, "bus-data-") // fresh, even in a reused -out
	if err != nil {
		return b, err
	}
	// FerretDB and NATS in processes of their own, as in production (they
	// run elsewhere): in one Go runtime the store's work delays the bus's.
	b.stack, err = startProc(ctx, "devstack-mongo", e.bins.devstack, []string{"-dir", data + "/devstack", "-only", "mongo"}, nil, e.dir,
		map[string]*regexp.Regexp{"mongo": regexp.MustCompile(`^MONGODB_URI=(\S+)`)})
	if err != nil {
		return b, err
	}
	b.natsStack, err = startProc(ctx, "devstack-nats", e.bins.devstack, []string{"-dir", data + "/devstack", "-only", "nats"}, nil, e.dir,
		map[string]*regexp.Regexp{"nats": regexp.MustCompile(`^CHATD_NATS_URL=(\S+)`)})
	if err != nil {
		return b, err
	}
	mongoURI, natsURL := b.stack.addrs["mongo"], b.natsStack.addrs["nats"]
	if mongoURI2 != "" {
		mongoURI = mongoURI2
	}
	run := time.Now().Unix() // fresh databases, even on a MongoDB kept between runs
	// One at a time: the first sets JetStream up.
	for i := range 2 {
		env := append(e.busChatdEnv(mongoURI, fmt.Sprintf("chatd_bench_cluster_%d", run)), "CHATD_NATS_URL="+natsURL,
			fmt.Sprintf("CHATD_INSTANCE_ID=bench-%d", i+1), fmt.Sprintf("CHATD_DATA_DIR=%s/chatd-%d", data, i+1),
			"CHATD_PPROF_ADDR=127.0.0.1:0")
		p, err := startProc(ctx, fmt.Sprintf("bus-chatd-%d", i+1), e.bins.chatd, nil, env, e.dir,
			map[string]*regexp.Regexp{"addr": chatdAddrRE, "pprof": chatdPprof})
		if err != nil {
			return b, err
		}
		b.nodes = append(b.nodes, p)
		b.urls = append(b.urls, "http://"+p.addrs["addr"])
		if err := waitReady(ctx, b.urls[i]); err != nil {
			return b, err
		}
	}
	env := append(e.busChatdEnv(mongoURI, fmt.Sprintf("chatd_bench_solo_%d", run)), "CHATD_DATA_DIR="+data+"/solo",
		"CHATD_PPROF_ADDR=127.0.0.1:0")
	if b.solo, err = startProc(ctx, "bus-solo", e.bins.chatd, nil, env, e.dir,
		map[string]*regexp.Regexp{"addr": chatdAddrRE, "pprof": chatdPprof}); err != nil {
		return b, err
	}
	b.soloURL = "http://" + b.solo.addrs["addr"]
	if b.users, err = e.register(ctx, b.urls[0], users, "bus-users.json"); err != nil {
		return b, err
	}
	b.soloUsers, err = e.register(ctx, b.soloURL, users, "bus-solo-users.json")
	return b, err
}

func (b *busCluster) stop() {
	b.solo.stop()
	for _, p := range b.nodes {
		p.stop()
	}
	b.natsStack.stop()
	b.stack.stop()
}

// register creates n accounts through chatd at url into e.dir/file.
func (e *env) register(ctx context.Context, url string, n int, file string) (string, error) {
	path := e.dir + "/" + file
	out, err := exec.CommandContext(ctx, e.bins.loadgen, "register", "-url", url, "-n", strconv.Itoa(n),
		"-parallel", "4", "-out", path).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("register %d users at %s: %w: %s", n, url, err, out)
	}
	return path, nil
}

// waitReady polls url's /readyz until it answers 200 (a cluster instance
// is ready once its bus is).
func waitReady(ctx context.Context, url string) error {
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get(url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready within a minute (%v)", url, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond): // polling readiness
		}
	}
}

// busModes are the three runs compared at each level.
var busModes = []string{"single process", "cluster, follower on the same instance", "cluster, follower on the other instance"}

// bus measures what the NATS bus between instances adds: every stream's
// user has two tabs, the first sends, the second follows; the follower is
// on the same instance as the sender or on the other one, and a single
// chatd on the same store without NATS is the baseline. The modes are
// interleaved round by round at each level.
func bus(ctx context.Context, e *env, r *report, c config) error {
	bc, err := e.startBusCluster(ctx, slices.Max(c.busLevels), c.busMongoURI)
	defer bc.stop()
	if err != nil {
		return err
	}
	spec := func(mode string, streams int) runSpec {
		rs := runSpec{target: load.TargetChatd, streams: streams, tokens: c.busTokens, delay: c.busDelay,
			spread: c.busSpread, tabs: 2, url: bc.urls[0], usersFile: bc.users, servers: bc.nodes}
		switch mode {
		case busModes[0]:
			rs.url, rs.usersFile, rs.servers = bc.soloURL, bc.soloUsers, []*proc{bc.solo}
		case busModes[2]:
			rs.followURL = bc.urls[1]
		}
		return rs
	}
	p99 := func(s sample) float64 { return s.res.FollowerLateness.P99 }
	cpu := func(s sample) float64 { return s.cpuPerToken(c.busTokens) }
	var rows [][]string
	var profiles []string
	for _, n := range c.busLevels {
		got := map[string][]sample{}
		for round := range c.rounds {
			for _, mode := range rotate(busModes, round) {
				var prof func() ([]string, error)
				if c.busProfile && round == 0 {
					procs := bc.nodes
					if mode == busModes[0] {
						procs = []*proc{bc.solo}
					}
					prof = profileProcs(ctx, procs, e.dir, fmt.Sprintf("%d-%s", n, map[string]string{busModes[0]: "single", busModes[1]: "same", busModes[2]: "other"}[mode]),
						time.Duration(c.busTokens)*c.busDelay+c.busSpread+8*time.Second)
				}
				s, err := e.run(ctx, spec(mode, n))
				if prof != nil {
					files, perr := prof()
					if perr != nil {
						r.problem("bus CPU profile: %v", perr)
					}
					profiles = append(profiles, files...)
				}
				if err != nil {
					return err
				}
				noteBroken(r, fmt.Sprintf("bus %s, %d streams", mode, n), s)
				got[mode] = append(got[mode], s)
			}
		}
		single, same, other := got[busModes[0]], got[busModes[1]], got[busModes[2]]
		added := pairMedian(other, same, func(a, b sample) float64 { return p99(a) - p99(b) })
		cpuRatio := pairMedian(other, single, func(a, b sample) float64 { return cpu(a) / cpu(b) })
		r.checkOver(fmt.Sprintf("bus: p99 lateness added by a follower on another instance (%s)", streams(n)),
			"<= 5 ms", fmt.Sprintf("%+.2f ms", added), added <= 5, other, same)
		r.checkOver(fmt.Sprintf("bus: CPU per token summed over the instances vs one process (%s)", streams(n)),
			"<= 1.5x", times(cpuRatio), within(cpuRatio, 1.5), other, single)
		for _, mode := range busModes {
			rows = append(rows, []string{strconv.Itoa(n), mode,
				f2(medianOf(got[mode], func(s sample) float64 { return s.res.FollowerLateness.P50 })),
				f2(medianOf(got[mode], p99)),
				f2(medianOf(got[mode], func(s sample) float64 { return s.res.SenderLateness.P99 })),
				fmt.Sprintf("%+.2f", medianOf(got[mode], func(s sample) float64 { return p99(s) - s.res.SenderLateness.P99 })),
				f2(medianOf(got[mode], cpu)),
				perInstance(got[mode], c.busTokens),
				f2(medianOf(got[mode], func(s sample) float64 { return float64(s.res.MergedByBus) }))})
		}
	}
	r.section("9. Bus between instances", fmt.Sprintf(`
Two chatd instances joined over NATS JetStream (cmd/devstack -only nats:
one NATS server, in a process of its own; the shared store is %s) and, as
the baseline, one chatd on the same store without NATS. Each stream's user has two tabs: the first sends
(always on instance 1), the second follows the answer, on the same instance
or on the other one, where every frame arrived over the bus. %d tokens per
answer at %.0f tokens/s, %d rounds with the three runs interleaved. Lateness
(ms) is the followers' only; CPU (µs per token produced upstream) is summed
over every chatd of the run (FerretDB and NATS run in devstack and are not
counted); "per instance" splits it, instance 1 (the senders') + instance 2.
The targets compare, round by round, the follower on the other
instance with the one on the same instance (lateness) and with the single
process (CPU). "Sender p99" is the sending tabs' (on instance 1) in the
same runs, and "follower - sender" the difference within each run: how
much later a follower got its tokens than a tab on the answer's own
instance under the same load, median over rounds. "Merged" is how many follower tabs (median over rounds) got
the exact text in fewer deltas than the sending tab: deltas that waited
for a slow bus leave the owner merged (hub/publishmerge.go); a tab whose
text was not whole and exact is a problem listed above.

%s`, map[bool]string{true: "FerretDB (cmd/devstack -only mongo), which times out beyond some 50 streams here: -bus-mongodb-uri measures more, and CHATD_CHECKPOINT_INTERVAL=10s in the bench's environment one round of 200 (docs/scale.md)",
		false: "the MongoDB of -bus-mongodb-uri"}[c.busMongoURI == ""], c.busTokens, float64(time.Second)/float64(c.busDelay), c.rounds,
		table([]string{"streams", "run", "follower lateness p50", "p99", "sender p99", "follower - sender p99", "CPU µs/token", "per instance", "merged"}, rows)))
	for _, f := range profiles {
		top, err := pprofTop(ctx, e.bins.chatd, f, 20, "-cum")
		if err != nil {
			r.problem("bus CPU profile %s: %v", f, err)
			continue
		}
		r.section("Bus CPU profile "+filepath.Base(f), "```\n"+top+"```\n")
	}
	return nil
}

// perInstance is the CPU per token of each chatd of the runs (median over
// the runs), "instance 1 + instance 2".
func perInstance(ss []sample, tokensPerAnswer int) string {
	if len(ss) == 0 {
		return ""
	}
	var parts []string
	for i := range ss[0].serverCPUs {
		parts = append(parts, fmt.Sprintf("%.0f", medianOf(ss, func(s sample) float64 {
			if i >= len(s.serverCPUs) || s.res.Expected == 0 {
				return 0
			}
			return s.serverCPUs[i] / float64(s.res.Expected*tokensPerAnswer) * 1e6
		})))
	}
	return strings.Join(parts, " + ")
}

// profileProcs starts saving the CPU profile of each chatd of procs for
// about d (from now, while a run starts) to dir/bus-<name>-<n>.pprof; the
// function it returns waits for the files.
func profileProcs(ctx context.Context, procs []*proc, dir, name string, d time.Duration) func() ([]string, error) {
	secs := fmt.Sprintf("profile?seconds=%d", int(d.Round(time.Second)/time.Second)+1)
	errs := make(chan error, len(procs))
	var files []string
	for i, p := range procs {
		f := filepath.Join(dir, fmt.Sprintf("bus-%s-%d.pprof", name, i+1))
		files = append(files, f)
		go func() { errs <- saveProfile(ctx, p.addrs["pprof"], secs, f) }()
	}
	return func() ([]string, error) {
		var err error
		for range procs {
			err = errors.Join(err, <-errs)
		}
		return files, err
	}
}
