package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"chatd/persistence/ferret"
)

// Cluster test settings: the lease is short so a crash is noticed fast,
// yet past a stall of a loaded machine (2 s, with renewals bounded to half
// of it, could lapse on a live instance, FerretDB running in this -race
// test process); answers are long enough to be running when an instance
// stops.
const (
	clusterLeaseTTL = 5 * time.Second
	clusterGrace    = 20 * time.Second
	// Each wave of answers runs while one instance restarts; three waves
	// make the 50 answers.
	clusterWaves        = 3
	clusterWaveAnswers  = 17
	clusterAnswerPrompt = "[[fake tokens=60 delay=40ms]] rolling restart"
)

// chatdCluster is three chatd processes on one MongoDB-compatible store
// and one NATS cluster, behind nginx.
type chatdCluster struct {
	t     *testing.T
	bin   string
	env   []string // shared by every instance
	nodes []*chatdServer
	site  *nginxSite
	nats  *natsCluster
}

// startChatdCluster starts the NATS cluster (three nats-server processes
// from deploy/nats-server.conf), FerretDB on a TCP port of this test
// process, the fake model, three chatd processes one after the other, and
// nginx with the three as its upstream.
func startChatdCluster(t *testing.T) *chatdCluster {
	t.Helper()
	need(t, "nginx", "apt-get update && apt-get install -y nginx")
	nats := startNATSCluster(t, false)
	mongoURI := ferret.Start(t)
	openai := fakeAI(t)
	c := &chatdCluster{t: t, bin: buildBinary(t, "chatd"), nats: nats}
	c.env = append(nats.ChatdEnv(),
		"MONGODB_URI="+mongoURI, "MONGODB_DATABASE=chatd_cluster",
		"JWT_SECRET="+strings.Repeat("c", 40), "CHATD_BCRYPT_COST=4",
		"CHATD_LEASE_TTL="+clusterLeaseTTL.String(), "CHATD_SHUTDOWN_GRACE="+clusterGrace.String(),
		"CHATD_MAX_CONNS_PER_USER=1000", "CHATD_MAX_ANSWERS_PER_USER=1000", "CHATD_SENDS_PER_MINUTE=1000", "CHATD_FRAMES_PER_MINUTE=100000",
		"OPENAI_BASE_URL="+openai, "OPENAI_API_KEY=sk-deploy-test", "OPENAI_MODELS=fake-mini")
	var addrs []string
	for i := range 3 {
		s := &chatdServer{Addr: fmt.Sprintf("127.0.0.1:%d", freePort(t)), DataDir: t.TempDir()}
		c.nodes = append(c.nodes, s)
		addrs = append(addrs, s.Addr)
		c.start(i) // one at a time: each sets up JetStream before the next joins
	}
	c.site = startNginx(t, nginxOptions{Root: standinRoot(t), Upstream: strings.Join(addrs, ",")})
	conf, err := os.ReadFile(c.site.Conf)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if !strings.Contains(string(conf), "server "+a+" ") {
			t.Fatalf("the rendered nginx.conf has no upstream server %s", a)
		}
	}
	return c
}

// start (re)starts instance i on its address and waits until /readyz
// answers 200 (store and bus usable).
func (c *chatdCluster) start(i int) {
	c.t.Helper()
	s := c.nodes[i]
	env := append(chatdEnv(s.Addr, s.DataDir, chatdOptions{}),
		append(c.env, fmt.Sprintf("CHATD_INSTANCE_ID=web-%d", i+1))...)
	s.proc = startProc(c.t, fmt.Sprintf("chatd-%d", i+1), env, s.DataDir, c.bin)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := waitOK(ctx, http.DefaultClient, "http://"+s.Addr+"/readyz", s.proc); err != nil {
		c.t.Fatal(err)
	}
}

// stop sends sig to instance i and waits for it to exit, at most within
// the shutdown grace and a margin; it returns the exit error.
func (c *chatdCluster) stop(i int, sig syscall.Signal) error {
	c.t.Helper()
	p := c.nodes[i].proc
	if err := syscall.Kill(-p.cmd.Process.Pid, sig); err != nil {
		c.t.Fatal(err)
	}
	select {
	case <-p.done:
		return p.err
	case <-time.After(clusterGrace + 15*time.Second):
		c.t.Fatalf("chatd-%d did not exit within the grace after %v", i+1, sig)
		return nil
	}
}

// dialNode opens a live connection straight to instance i.
func (c *chatdCluster) dialNode(ctx context.Context, i int, token string) (*wsConn, error) {
	w, _, err := dialLive(ctx, "ws://"+c.nodes[i].Addr+"/ws", http.DefaultClient, token, "")
	return w, err
}

// dialSite opens a live connection through nginx (any instance).
func (c *chatdCluster) dialSite(ctx context.Context, token string) (*wsConn, error) {
	w, _, err := dialWS(ctx, c.site, token, c.site.Origin())
	return w, err
}

// standinRoot is a static root for nginx: the cluster test needs the proxy,
// not the web client.
func standinRoot(t *testing.T) string {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("<!doctype html><title>chatd</title>\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestClusterBehindNginx runs three chatd processes behind the repository's
// nginx.conf with a three-server round-robin upstream, sharing FerretDB and
// a NATS cluster started from deploy/nats-server.conf, and checks what a
// multi-instance deployment promises: a tab on one instance follows an
// answer running on another byte for byte; a rolling restart (SIGTERM, one
// instance at a time) during 50 running answers ends every one complete
// with the same text in every tab; kill -9 of an instance ends its answer
// interrupted, soon after the lease TTL, in a tab on another instance.
func TestClusterBehindNginx(t *testing.T) {
	c := startChatdCluster(t)
	acct := register(t, c.site.Client(true), c.site.Origin())
	t.Run("a tab on one instance follows an answer running on another", func(t *testing.T) {
		checkClusterFollow(t, c, acct.Token)
	})
	t.Run("rolling restart during running answers cuts none", func(t *testing.T) {
		checkRollingRestart(t, c)
	})
	t.Run("a NATS node lost mid-answer changes nothing", func(t *testing.T) {
		checkNATSNodeLoss(t, c, acct.Token)
	})
	t.Run("kill -9 of an instance ends its answer interrupted within the lease", func(t *testing.T) {
		checkInstanceCrash(t, c, acct.Token)
	})
}

func checkClusterFollow(t *testing.T, c *chatdCluster, token string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	convID := newConversation(t, c.site.Client(true), c.site.Origin(), token)
	tabs := make([]*liveTab, 3)
	conns := make([]*wsConn, 3)
	for i := range tabs {
		w, err := c.dialNode(ctx, i, token)
		if err != nil {
			t.Fatalf("dial chatd-%d: %v", i+1, err)
		}
		defer w.close()
		conns[i] = w
		tabs[i] = &liveTab{name: fmt.Sprintf("tab on chatd-%d", i+1), conv: convID}
	}
	// chatd-2 follows from the start, chatd-1 sends, chatd-3 joins mid-answer.
	if err := tabs[1].subscribe(ctx, conns[1]); err != nil {
		t.Fatal(err)
	}
	if err := conns[0].send(ctx, map[string]any{"type": "send", "id": "f1", "conversationId": convID,
		"content": "[[fake tokens=80 delay=20ms]] follow me"}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 3)
	started := make(chan struct{}, 1)
	for i, st := range []chan struct{}{started, nil} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = tabs[i].follow(ctx, conns[i], nil, st)
		}()
	}
	select {
	case <-started:
	case <-ctx.Done():
		t.Fatal("the answer did not start")
	}
	if err := tabs[2].subscribe(ctx, conns[2]); err != nil {
		t.Fatal(err)
	}
	errs[2] = tabs[2].follow(ctx, conns[2], nil, nil)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("%s: %v", tabs[i].name, err)
		}
	}
	content, status := storedAnswer(t, c.site, token, convID, tabs[0].msgID)
	for _, tab := range tabs {
		if tab.msgID != tabs[0].msgID || tab.status != "complete" || tab.text.String() != content {
			t.Errorf("%s: answer %s ended %q with %d bytes; stored %s: %q, %d bytes", tab.name, tab.msgID,
				tab.status, tab.text.Len(), tabs[0].msgID, status, len(content))
		}
	}
	if status != "complete" || content == "" {
		t.Errorf("stored answer %q (%s)", content, status)
	}
}

// checkRollingRestart restarts the three instances one at a time with
// SIGTERM, each while a wave of answers runs (sent through nginx, so on
// every instance); every answer has the sending tab and a second tab, both
// through nginx, which reconnect through nginx when their instance closes
// them and resume by messageId and lastSeq.
func checkRollingRestart(t *testing.T, c *chatdCluster) {
	ctx, cancel := context.WithTimeout(context.Background(), 75*time.Second)
	defer cancel()
	client := c.site.Client(true)
	var all []*liveTab
	var token string
	tokens := map[*liveTab]string{}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	for wave := range clusterWaves {
		started := make(chan struct{}, clusterWaveAnswers)
		for n := range clusterWaveAnswers {
			// A user per eight answers (a user may create ten conversations
			// a minute), each registered from its own loopback address (ten
			// sign-ups an hour per address).
			k := wave*clusterWaveAnswers + n
			if k%8 == 0 {
				from := &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(k/8+1))}
				token = register(t, c.site.clientFrom(true, from), c.site.Origin()).Token
			}
			token := token // this answer's user, for the goroutines below
			convID := newConversation(t, client, c.site.Origin(), token)
			sender := &liveTab{name: fmt.Sprintf("wave %d answer %d sender", wave+1, n+1), conv: convID}
			follower := &liveTab{name: fmt.Sprintf("wave %d answer %d follower", wave+1, n+1), conv: convID,
				lookup: latestAnswer(client, c.site.Origin(), token, convID)}
			all = append(all, sender, follower)
			tokens[sender] = token
			fw, err := c.dialSite(ctx, token)
			if err != nil {
				t.Fatal(err)
			}
			sw, err := c.dialSite(ctx, token)
			if err != nil {
				t.Fatal(err)
			}
			if err := follower.subscribe(ctx, fw); err != nil {
				t.Fatal(err)
			}
			if err := sw.send(ctx, map[string]any{"type": "send", "id": "r1", "conversationId": convID,
				"content": clusterAnswerPrompt}); err != nil {
				t.Fatal(err)
			}
			for _, run := range []struct {
				tab     *liveTab
				w       *wsConn
				started chan struct{}
			}{{sender, sw, started}, {follower, fw, nil}} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					redial := func(ctx context.Context) (*wsConn, error) { return c.dialSite(ctx, token) }
					if err := run.tab.follow(ctx, run.w, redial, run.started); err != nil {
						mu.Lock()
						failures = append(failures, fmt.Sprintf("%s: %v", run.tab.name, err))
						mu.Unlock()
					}
				}()
			}
		}
		for range clusterWaveAnswers {
			select {
			case <-started:
			case <-ctx.Done():
				t.Fatalf("wave %d: answers did not start", wave+1)
			}
		}
		// Answers of this wave run on every instance; restart one.
		began := time.Now()
		if err := c.stop(wave, syscall.SIGTERM); err != nil {
			t.Errorf("chatd-%d exited with %v after SIGTERM", wave+1, err)
		}
		t.Logf("chatd-%d drained and stopped in %s", wave+1, time.Since(began).Round(time.Millisecond))
		c.start(wave)
	}
	wg.Wait()
	for _, f := range failures {
		t.Error(f)
	}
	reconnects, reloads := 0, 0
	for i := 0; i < len(all); i += 2 {
		sender, follower := all[i], all[i+1]
		reconnects += sender.reconnects + follower.reconnects
		reloads += follower.reloads
		content, status := storedAnswer(t, c.site, tokens[sender], sender.conv, sender.msgID)
		if status != "complete" || sender.status != "complete" || follower.status != "complete" {
			t.Errorf("%s: stored %s, sender saw %s %s, follower saw %s %s", sender.name, status,
				sender.status, sender.doneError, follower.status, follower.doneError)
		}
		if sender.text.String() != content || follower.text.String() != content || follower.msgID != sender.msgID {
			t.Errorf("%s: sender %d bytes, follower %d bytes (%s), stored %d bytes", sender.name,
				sender.text.Len(), follower.text.Len(), follower.msgID, len(content))
		}
	}
	if reconnects == 0 {
		t.Error("no tab was ever closed by a stopping instance: the restarts did not hit the answers")
	}
	t.Logf("%d answers, %d tabs, %d reconnects after 1001 closes (%d by a follower that had received nothing of its answer yet)",
		len(all)/2, len(all), reconnects, reloads)
}

// checkNATSNodeLoss kills the JetStream meta leader among the NATS nodes
// while an answer runs on chatd-1 and a tab on chatd-2 follows it: both
// tabs must get the whole answer, complete, as if nothing happened.
func checkNATSNodeLoss(t *testing.T, c *chatdCluster, token string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	convID := newConversation(t, c.site.Client(true), c.site.Origin(), token)
	tabs := []*liveTab{{name: "sender on chatd-1", conv: convID}, {name: "follower on chatd-2", conv: convID}}
	conns := make([]*wsConn, 2)
	for i := range conns {
		w, err := c.dialNode(ctx, i, token)
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = w
	}
	if err := tabs[1].subscribe(ctx, conns[1]); err != nil {
		t.Fatal(err)
	}
	if err := conns[0].send(ctx, map[string]any{"type": "send", "id": "n1", "conversationId": convID,
		"content": "[[fake tokens=150 delay=20ms]] node loss"}); err != nil {
		t.Fatal(err)
	}
	// The node is killed once the follower on the other instance has its
	// first delta, while the 3 s answer still runs: a tab that ends first
	// (the follow started late) fails the check.
	started := make(chan struct{}, 1)
	errs := make(chan error, 2)
	for i, st := range []chan struct{}{nil, started} {
		go func() { errs <- tabs[i].follow(ctx, conns[i], nil, st) }()
	}
	select {
	case <-started:
	case err := <-errs:
		t.Fatalf("a tab ended before the follower on chatd-2 got its first delta: %v", err)
	}
	leader := c.nats.Nodes[0].jsz(t).Meta.Leader
	var victim *natsNode
	for _, n := range c.nats.Nodes {
		if n.Name == leader {
			victim = n
		}
	}
	if victim == nil {
		t.Fatalf("no JetStream meta leader among the nodes (leader %q)", leader)
	}
	if err := syscall.Kill(-victim.proc.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-victim.proc.done
	for range tabs {
		if err := <-errs; err != nil {
			t.Fatalf("after %s was killed: %v", victim.Name, err)
		}
	}
	content, status := storedAnswer(t, c.site, token, convID, tabs[0].msgID)
	for _, tab := range tabs {
		if tab.status != "complete" || tab.text.String() != content || tab.reconnects != 0 {
			t.Errorf("%s: %s with %d bytes after %d reconnects; stored %s, %d bytes", tab.name, tab.status,
				tab.text.Len(), tab.reconnects, status, len(content))
		}
	}
	t.Logf("killed NATS node %s (the meta leader) mid-answer; both tabs got all %d bytes", victim.Name, len(content))
}

// checkInstanceCrash kills the instance running an answer; a tab on
// another instance must get done "interrupted" soon after the lease TTL
// (3 TTLs at most, to find and claim it on a loaded machine), and the
// stored message must say so too.
func checkInstanceCrash(t *testing.T, c *chatdCluster, token string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// The subtest before this one killed a NATS node; while JetStream
	// elects new leaders, lease renewals can time out, and an instance
	// whose renewal failed declares nobody dead before a full TTL of
	// renewals again (natsbus, leaseView.judging). Measure the crash on a
	// settled cluster.
	waitSettled(t, c, 2*clusterLeaseTTL)
	convID := newConversation(t, c.site.Client(true), c.site.Origin(), token)
	owner, err := c.dialNode(ctx, 0, token)
	if err != nil {
		t.Fatal(err)
	}
	defer owner.close()
	fw, err := c.dialNode(ctx, 1, token)
	if err != nil {
		t.Fatal(err)
	}
	defer fw.close()
	follower := &liveTab{name: "tab on chatd-2", conv: convID}
	if err := follower.subscribe(ctx, fw); err != nil {
		t.Fatal(err)
	}
	if err := owner.send(ctx, map[string]any{"type": "send", "id": "k1", "conversationId": convID,
		"content": "[[fake tokens=2000 delay=20ms]] crash"}); err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{}, 1)
	ended := make(chan error, 1)
	go func() { ended <- follower.follow(ctx, fw, nil, started) }()
	select {
	case <-started:
	case err := <-ended:
		t.Fatalf("the answer ended before it started: %v", err)
	}
	// Let a checkpoint or two be written, then crash the owner.
	for follower.seqNow() < 200 {
		select {
		case err := <-ended:
			t.Fatalf("the answer ended early: %v", err)
		case <-time.After(20 * time.Millisecond): // polling the tab's progress
		}
	}
	killed := time.Now()
	_ = c.stop(0, syscall.SIGKILL)
	select {
	case err := <-ended:
		if err != nil {
			t.Fatal(err)
		}
	case <-ctx.Done():
		t.Fatal("the follower never got a done frame after the owner was killed")
	}
	took := time.Since(killed)
	if follower.status != "interrupted" {
		t.Fatalf("after kill -9 the answer ended %q, want interrupted", follower.status)
	}
	// The lease lapses within one TTL; finding, claiming and storing it
	// takes a little more, a loaded machine's stalls included (one TTL
	// plus 3 s left them little room). The answer runs 40 s otherwise.
	if limit := 3 * clusterLeaseTTL; took > limit {
		t.Errorf("interrupted %s after the kill, want within %s", took, limit)
	}
	content, status := storedAnswer(t, c.site, token, convID, follower.msgID)
	if status != "interrupted" || !strings.HasPrefix(follower.text.String(), content) || content == "" {
		t.Errorf("stored %q (%d bytes), want interrupted with a prefix of the %d bytes seen", status, len(content), follower.text.Len())
	}
	if follower.text.String() != content {
		t.Errorf("the done frame's text (%d bytes) differs from the stored text (%d bytes)", follower.text.Len(), len(content))
	}
	t.Logf("interrupted %s after kill -9 (lease TTL %s); %d bytes kept, %d seen after the last checkpoint",
		took.Round(time.Millisecond), clusterLeaseTTL, len(content), follower.lost)
	c.start(0)
}

// liveTab is one browser tab following one answer over the live channel,
// checking the seq rules on every frame (no gap, no duplicate) and
// resuming by messageId and lastSeq after its connection ends.
type liveTab struct {
	name       string
	conv       string
	mu         sync.Mutex // guards seq for seqNow
	msgID      string
	text       strings.Builder
	seq        int
	status     string
	doneError  string // the done frame's error body, if any
	reconnects int
	reloads    int // reconnects that needed the conversation over REST
	lost       int // bytes seen but not stored (crash: after the last checkpoint)
	// lookup, when set, finds the answer's message id over REST, for a
	// reconnect before anything of the answer arrived.
	lookup func(context.Context) (string, error)
}

// latestAnswer returns a lookup of the newest assistant message of convID
// through the site.
func latestAnswer(c *http.Client, base, token, convID string) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/conversations/"+convID, nil)
		if err != nil {
			return "", err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := c.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		var out struct {
			Messages []struct{ ID, Role string } `json:"messages"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("GET conversation %s: status %d, %v", convID, resp.StatusCode, err)
		}
		for i := len(out.Messages) - 1; i >= 0; i-- {
			if out.Messages[i].Role == "assistant" {
				return out.Messages[i].ID, nil
			}
		}
		return "", fmt.Errorf("conversation %s has no answer", convID)
	}
}

func (lt *liveTab) seqNow() int {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	return lt.seq
}

// subscribe follows the conversation on w, or resumes the answer when its
// id is known.
func (lt *liveTab) subscribe(ctx context.Context, w *wsConn) error {
	f := map[string]any{"type": "subscribe", "id": "sub", "conversationId": lt.conv}
	if lt.msgID != "" {
		f["messageId"], f["lastSeq"] = lt.msgID, lt.seqNow()
	}
	return w.send(ctx, f)
}

// follow reads w until the answer's done. When the connection ends first
// and redial is set, it reconnects (with a short pause between failed
// attempts) and resumes; started gets a value at the first delta.
func (lt *liveTab) follow(ctx context.Context, w *wsConn, redial func(context.Context) (*wsConn, error), started chan<- struct{}) error {
	defer func() { w.close() }()
	for {
		err := lt.read(ctx, w, &started)
		if err == nil || redial == nil || ctx.Err() != nil || !errors.Is(err, errConnEnded) {
			return err
		}
		w.close()
		for {
			if w, err = redial(ctx); err == nil {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("reconnect: %w (after %v)", ctx.Err(), err)
			case <-time.After(100 * time.Millisecond): // reconnect backoff, as a client's
			}
		}
		lt.reconnects++
		if lt.msgID == "" && lt.lookup != nil {
			// Nothing of the answer arrived before the connection ended: a
			// client reloads the conversation (the answer may even have
			// ended meanwhile) and resumes from the answer's start.
			id, err := lt.lookup(ctx)
			if err != nil {
				return fmt.Errorf("reload the conversation: %w", err)
			}
			lt.msgID = id
			lt.reloads++
		}
		if err := lt.subscribe(ctx, w); err != nil {
			return err
		}
	}
}

var errConnEnded = errors.New("connection ended")

// read applies w's frames until the done frame (nil) or the end of the
// connection (errConnEnded).
func (lt *liveTab) read(ctx context.Context, w *wsConn, started *chan<- struct{}) error {
	for {
		f, err := w.next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("%w after %d bytes", ctx.Err(), lt.seqNow())
			}
			return fmt.Errorf("%w: %v", errConnEnded, err)
		}
		switch {
		case f.Type == "error" && f.Code == "unavailable":
			// An instance stopping, or starting and not yet on the bus:
			// try another one.
			return fmt.Errorf("%w: unavailable: %s", errConnEnded, f.Message)
		case f.Type == "error":
			return fmt.Errorf("error frame %s: %s", f.Code, f.Message)
		case f.Type == "ack" && f.MessageID != "" && lt.msgID == "":
			lt.msgID = f.MessageID
		case f.Type == "message" && f.ConversationID == lt.conv && lt.msgID == "":
			var m struct{ ID, Role string }
			if json.Unmarshal(f.Message, &m) == nil && m.Role == "assistant" {
				lt.msgID = m.ID
			}
		case f.Type == "delta" && f.ConversationID == lt.conv:
			if err := lt.apply(f); err != nil {
				return err
			}
			if *started != nil {
				*started <- struct{}{}
				*started = nil
			}
		case f.Type == "done" && f.ConversationID == lt.conv && (lt.msgID == "" || f.MessageID == lt.msgID):
			return lt.finish(f)
		}
	}
}

// finish applies the done frame. Its seq is the stored text's length: the
// tab's text, except for an answer ended by another instance after its own
// crashed, whose text after the last checkpoint is lost; the tab then cuts
// its text to what was stored, as the web client does.
func (lt *liveTab) finish(f frame) error {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	switch {
	case f.Seq == lt.seq:
	case f.Status == "interrupted" && f.Seq < lt.seq:
		kept := lt.text.String()[:f.Seq]
		lt.lost = lt.seq - f.Seq
		lt.text.Reset()
		lt.text.WriteString(kept)
		lt.seq = f.Seq
	default:
		return fmt.Errorf("done (%s) seq %d after %d bytes", f.Status, f.Seq, lt.seq)
	}
	lt.status, lt.doneError = f.Status, string(f.Error)
	return nil
}

// apply appends a delta of the followed answer, enforcing the seq rule.
func (lt *liveTab) apply(f frame) error {
	if lt.msgID == "" {
		lt.msgID = f.MessageID
	}
	if f.MessageID != lt.msgID {
		return nil
	}
	lt.mu.Lock()
	defer lt.mu.Unlock()
	if f.Seq != lt.seq+len(f.Text) {
		return fmt.Errorf("delta seq %d after %d bytes with %d new bytes: a gap or a duplicate", f.Seq, lt.seq, len(f.Text))
	}
	lt.text.WriteString(f.Text)
	lt.seq = f.Seq
	return nil
}

// waitSettled waits until every instance has answered /readyz with 200 on
// every poll for d in a row.
func waitSettled(t *testing.T, c *chatdCluster, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(30*time.Second + d)
	var since time.Time
	for {
		ok := true
		for _, n := range c.nodes {
			resp, err := http.Get("http://" + n.Addr + "/readyz")
			if err == nil {
				resp.Body.Close()
			}
			ok = ok && err == nil && resp.StatusCode == http.StatusOK
		}
		switch {
		case !ok:
			since = time.Time{}
		case since.IsZero():
			since = time.Now()
		case time.Since(since) >= d:
			waitStreamsLed(t, c, deadline)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the instances were not all ready for %s in a row within 30s", d)
		}
		time.Sleep(100 * time.Millisecond) // polling readiness
	}
}

// waitStreamsLed waits until JetStream answers reads of chatd's lock
// bucket and answer stream: after a NATS node was killed each stream
// elects its leader in its own time, and /readyz checks only the leases
// (a lock read without a leader is refused as unavailable, and a tab
// subscribing then is told to reconnect).
func waitStreamsLed(t *testing.T, c *chatdCluster, deadline time.Time) {
	t.Helper()
	nc, _ := c.nats.connect(t, "chatd", c.nats.Secrets.Chatd)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	probe := func(ctx context.Context) error {
		kv, err := js.KeyValue(ctx, "chatd_locks")
		if err != nil {
			return err
		}
		if _, err := kv.Get(ctx, "settled-probe"); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			return err
		}
		st, err := js.Stream(ctx, "CHATD_ANSWERS")
		if err != nil {
			return err
		}
		_, err = st.Info(ctx)
		return err
	}
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := probe(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("JetStream does not answer reads of chatd's locks and answers: %v", err)
		}
		time.Sleep(100 * time.Millisecond) // polling the streams' leaders
	}
}
