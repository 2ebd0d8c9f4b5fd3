package app

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"chatd/hub"
	"chatd/hub/natsbus"
	"chatd/hub/protocol"
	"chatd/llm/fakeai"
	"chatd/persistence"
)

// TestClusterFollowResumeCancel (issue 9, behaviours 1 and 2): a tab on B
// joins an answer running on A mid-stream and sees it byte-exact; a tab on
// C resumes it with messageId+lastSeq; a cancel from B stops it on A, the
// upstream request is aborted (promptly: a cancel lost on the way never
// aborts it, the answer runs to its end), and every tab gets exactly one
// done.
func TestClusterFollowResumeCancel(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOptions{})
	a, b, cc := c.nodes[0], c.nodes[1], c.nodes[2]
	u := a.register(t)
	tabA := a.dial(t, u)
	ack := tabA.start("follow me [[fake tokens=6000 delay=5ms]]") // 30 s: still running at the cancel
	seenA := tabA.until(func(f frame) bool { return f.Type == "delta" && f.Seq > 40 })

	tabB := b.dial(t, u)
	seenB := subscribe(tabB, ack.ConversationID)
	seenB = append(seenB, tabB.until(func(f frame) bool { return f.Type == "delta" && f.Seq > 200 })...)
	have, _ := answer(t, live(seenB), ack.MessageID)
	lastSeq := int64(len(have))

	tabC := cc.dial(t, u)
	tabC.write(map[string]any{"type": "subscribe", "id": "r", "conversationId": ack.ConversationID,
		"messageId": ack.MessageID, "lastSeq": lastSeq})
	seenC := tabC.until(func(f frame) bool { return f.Type == "delta" })

	tabB.write(map[string]any{"type": "cancel", "id": "c", "conversationId": ack.ConversationID})
	sent := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), abortBound)
	defer cancel()
	if err := c.fake.WaitAbort(ctx); err != nil {
		t.Fatalf("the upstream on A was not aborted within %s of the cancel on B: %v", abortBound, err)
	}
	t.Logf("upstream aborted %s after the cancel", time.Since(sent))

	textA, doneA := answer(t, live(append(seenA, tabA.until(isDone(ack.MessageID))...)), ack.MessageID)
	textB, doneB := answer(t, live(append(seenB, tabB.until(isDone(ack.MessageID))...)), ack.MessageID)
	restC := live(append(seenC, tabC.until(isDone(ack.MessageID))...))
	prefix := frame{Type: "delta", MessageID: ack.MessageID, Seq: lastSeq, Text: have}
	var fromC []frame
	for _, f := range restC {
		if f.Type == "delta" || f.Type == "done" {
			fromC = append(fromC, f)
		}
	}
	textC, doneC := answer(t, append([]frame{prefix}, fromC...), ack.MessageID)
	for name, d := range map[string]frame{"A": doneA, "B": doneB, "C": doneC} {
		if d.Status != "cancelled" {
			t.Fatalf("tab on %s: done %s, want cancelled", name, d.raw)
		}
	}
	if textA == "" || textA != textB || textA != textC {
		t.Fatalf("texts differ: A %d bytes, B %d, C %d", len(textA), len(textB), len(textC))
	}
	for _, tab := range []*client{tabA, tabB, tabC} {
		noSecondDone(t, tab, 200*time.Millisecond)
	}
	stored := a.thread(t, u, ack.ConversationID).message(t, ack.MessageID)
	if stored.Status != persistence.StatusCancelled || stored.Content != textA {
		t.Fatalf("stored %d bytes (%s), want %d (cancelled)", len(stored.Content), stored.Status, len(textA))
	}
}

// TestClusterOneAnswerPerConversation (behaviour 3): two sends into one
// conversation on two instances at the same moment start one answer; the
// other gets generation_running. The answer runs until it is cancelled, so
// a send that a loaded machine handles late still finds it running (with a
// short answer it could find it ended and rightly start another).
func TestClusterOneAnswerPerConversation(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOptions{})
	u := c.nodes[0].register(t)
	first := c.nodes[0].dial(t, u)
	ack := first.start("hello")
	first.until(isDone(ack.MessageID))

	for round := range 3 {
		tabs := []*client{c.nodes[1].dial(t, u), c.nodes[2].dial(t, u)}
		var wg sync.WaitGroup
		for _, tab := range tabs {
			wg.Go(func() { tab.write(sendFrame("race", ack.ConversationID, "race [[fake tokens=6000 delay=5ms]]")) })
		}
		wg.Wait()
		var acks, running int
		var started frame
		var owner *client
		for _, tab := range tabs {
			f := tab.until(func(f frame) bool { return f.Type == "ack" || f.Type == "error" })
			last := f[len(f)-1]
			switch {
			case last.Type == "ack":
				acks++
				started, owner = last, tab
			case last.Code == "generation_running":
				running++
			default:
				t.Fatalf("round %d: %s", round, last.raw)
			}
		}
		if acks != 1 || running != 1 {
			t.Fatalf("round %d: %d answers started, %d refused; want 1 and 1", round, acks, running)
		}
		owner.write(map[string]any{"type": "cancel", "id": "c", "conversationId": ack.ConversationID})
		owner.until(isDone(started.MessageID))
		c.lockFree(t, ack.ConversationID)
		if m := c.nodes[0].thread(t, u, ack.ConversationID).message(t, started.MessageID); m.Status != persistence.StatusCancelled {
			t.Fatalf("round %d: the answer ended %s, want cancelled", round, m.Status)
		}
		for _, tab := range tabs {
			tab.c.CloseNow()
		}
	}
}

// TestClusterUserEvents (behaviour 4): conversation frames reach the
// user's tabs on every instance, and a logout on one instance closes the
// user's sockets everywhere with 4401 at once (within closeBound).
func TestClusterUserEvents(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOptions{})
	u := c.nodes[0].register(t)
	tabs := []*client{c.nodes[0].dial(t, u), c.nodes[1].dial(t, u), c.nodes[2].dial(t, u)}
	ack := tabs[0].start("events please")
	tabs[0].until(isDone(ack.MessageID))
	for i, tab := range tabs[1:] {
		f := tab.until(func(f frame) bool {
			return f.Type == "conversation" && f.Conversation != nil && f.Conversation.ID == ack.ConversationID
		})
		if got := f[len(f)-1]; got.Action != "created" {
			t.Fatalf("instance %d: first conversation frame %s", i+1, got.raw)
		}
	}
	titled := "Title: " + firstWords("events please")
	for _, tab := range tabs[1:] { // the title made on A
		tab.until(conversationFrame(ack.ConversationID, func(f frame) bool { return f.Conversation.Title == titled }))
	}
	c.nodes[2].rest(t, u.Token, http.MethodPatch, "/api/conversations/"+ack.ConversationID,
		map[string]string{"title": "Renamed on C"}, http.StatusOK, nil)
	for _, tab := range tabs[:2] {
		tab.until(conversationFrame(ack.ConversationID, func(f frame) bool { return f.Conversation.Title == "Renamed on C" }))
	}
	c.nodes[2].rest(t, u.Token, http.MethodDelete, "/api/conversations/"+ack.ConversationID, nil, http.StatusNoContent, nil)
	for _, tab := range tabs[:2] {
		tab.until(conversationFrame(ack.ConversationID, func(f frame) bool { return f.Action == "deleted" }))
	}

	start := time.Now()
	c.nodes[1].rest(t, u.Token, http.MethodPost, "/api/auth/logout", nil, http.StatusNoContent, nil)
	for i, tab := range tabs {
		if code := tab.closeStatus(); code != 4401 {
			t.Fatalf("tab on instance %d closed with %d, want 4401", i, code)
		}
	}
	if took := time.Since(start); took > closeBound {
		t.Fatalf("logout reached every instance in %s, want within %s", took, closeBound)
	}
}

// closeBound is how soon a logout, a password change or an account
// deletion on one instance closes the user's sockets on every instance:
// over the bus at once, where without it only the accounts' periodic check
// would (auth.DefaultWatchInterval, a minute). A second was overrun on a
// loaded machine under -race, where a goroutine may wait a second or two
// for a core.
const closeBound = 10 * time.Second

// abortBound is how soon a cancel or a regenerate on one instance aborts
// the upstream request of the answer running on another: a cancel lost on
// the way never does (the answer runs to its end), so the bound only keeps
// a loaded machine's stalls from failing the test, as a second did.
const abortBound = 10 * time.Second

// conversationFrame matches a conversation frame of conversation id that
// also matches match.
func conversationFrame(id string, match func(frame) bool) func(frame) bool {
	return func(f frame) bool {
		return f.Type == "conversation" && f.Conversation != nil && f.Conversation.ID == id && match(f)
	}
}

// TestClusterDeleteAccount (behaviour 4, account deletion): deleting an
// account on B while its answer runs on A closes every socket of the user
// on every instance with 4401 at once (closeBound), ends its event stream on
// C, stops the answer on A (the upstream request is aborted), and leaves
// nothing of the user in the shared store; another user's tab stays.
func TestClusterDeleteAccount(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOptions{})
	u, other := c.nodes[0].register(t), c.nodes[0].register(t)
	tabs := []*client{c.nodes[0].dial(t, u), c.nodes[1].dial(t, u), c.nodes[2].dial(t, u)}
	stays := c.nodes[2].dial(t, other)
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		c.nodes[2].sse(t, u, http.MethodGet, "/api/events", "", nil)
	}()
	ack := tabs[0].start("cut short [[fake tokens=600 delay=10ms]]")
	subscribe(tabs[1], ack.ConversationID)
	tabs[1].until(func(f frame) bool { return f.Type == "delta" })
	waitFor(t, "the event stream on C to open", func() bool { return c.nodes[2].app.Hub().Connections(u.ID) == 2 })

	start := time.Now()
	deleted := make(chan struct{})
	go func() {
		defer close(deleted)
		c.nodes[1].rest(t, u.Token, http.MethodDelete, "/api/auth/me", map[string]string{"password": "correct horse battery"}, http.StatusNoContent, nil)
	}()
	for i, tab := range tabs {
		if code := tab.closeStatus(); code != 4401 {
			t.Fatalf("tab on instance %d closed with %d, want 4401", i, code)
		}
	}
	if took := time.Since(start); took > closeBound {
		t.Fatalf("the deletion closed every tab in %s, want within %s", took, closeBound)
	}
	for i, tab := range tabs {
		if got := tab.closeReason(); got != protocol.ReasonAccountDeleted {
			t.Fatalf("tab on instance %d closed with reason %q, want %q", i, got, protocol.ReasonAccountDeleted)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := c.fake.WaitAbort(ctx); err != nil {
		t.Fatalf("the answer on A was not stopped: %v", err)
	}
	for what, ch := range map[string]chan struct{}{"the event stream on C to end": ended, "the deletion to answer": deleted} {
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		}
	}
	checkGone(ctx, t, c.nodes[0].store, u.ID, []frame{ack})
	stays.write(`{"type":"ping"}`)
	stays.expect("pong")
}

// TestClusterChangePassword: a password change on B closes at once
// (closeBound) the user's sockets opened with the old token on every instance
// (4401, signed out) and ends their event stream on C; the new token then
// works on every instance, the old one nowhere.
func TestClusterChangePassword(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOptions{})
	u := c.nodes[0].register(t)
	tabs := []*client{c.nodes[0].dial(t, u), c.nodes[1].dial(t, u), c.nodes[2].dial(t, u)}
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		c.nodes[2].sse(t, u, http.MethodGet, "/api/events", "", nil)
	}()
	waitFor(t, "the event stream on C to open", func() bool { return c.nodes[2].app.Hub().Connections(u.ID) == 2 })

	start := time.Now()
	var session struct{ Token string }
	c.nodes[1].rest(t, u.Token, http.MethodPatch, "/api/auth/me",
		map[string]string{"currentPassword": "correct horse battery", "newPassword": "a better one, longer"}, http.StatusOK, &session)
	for i, tab := range tabs {
		if code, reason := tab.closeStatus(), tab.closeReason(); code != 4401 || reason != protocol.ReasonSignedOut {
			t.Fatalf("old tab on instance %d closed with %d %q, want 4401 %q", i, code, reason, protocol.ReasonSignedOut)
		}
	}
	if took := time.Since(start); took > closeBound {
		t.Fatalf("the change closed the old tabs in %s, want within %s", took, closeBound)
	}
	select {
	case <-ended:
	case <-time.After(testTimeout):
		t.Fatal("the old session's event stream on C is still open")
	}
	fresh := user{ID: u.ID, Token: session.Token}
	for i, n := range c.nodes {
		n.rest(t, u.Token, http.MethodGet, "/api/auth/me", nil, http.StatusUnauthorized, nil)
		n.rest(t, fresh.Token, http.MethodGet, "/api/auth/me", nil, http.StatusOK, nil)
		tab := n.dial(t, fresh)
		ack := tab.start(fmt.Sprintf("after the change on %d", i))
		if _, done := answer(t, live(tab.until(isDone(ack.MessageID))), ack.MessageID); done.Status != "complete" {
			t.Fatalf("answer with the new token on instance %d: %s", i, done.raw)
		}
	}
}

// TestClusterLimits (behaviour 5): open connections and sends per minute
// hold for the cluster as a whole.
func TestClusterLimits(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOptions{tweak: func(cfg *Config) {
		cfg.Limits.MaxConns = 2
		cfg.Limits.SendsPerMinute = 4 // a burst of one send
		cfg.Accounts.MaxFailuresPerAccount = 3
		cfg.Limits.ConversationsPerMinute = 2
		cfg.SearchesPerMinute = 1
		cfg.EditsPerMinute = 1
	}})
	u := c.nodes[0].register(t)
	tabA, tabB := c.nodes[0].dial(t, u), c.nodes[1].dial(t, u)
	c.nodes[2].wantTooManyConns(t, u) // the third connection, on a third instance
	ack := tabA.start("one send")
	tabA.until(isDone(ack.MessageID))
	tabB.write(sendFrame("second", ack.ConversationID, "another"))
	f := tabB.until(func(f frame) bool { return f.Type == "error" || f.Type == "ack" })
	if last := f[len(f)-1]; last.Code != "rate_limited" {
		t.Fatalf("a second send on another instance right away: %s, want rate_limited", last.raw)
	}
	// A closed connection frees its place for the cluster.
	tabA.c.Close(websocket.StatusNormalClosure, "bye")
	h := http.Header{}
	h.Set("Authorization", "Bearer "+u.Token)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	waitFor(t, "a free connection slot", func() bool {
		conn, _, err := websocket.Dial(ctx, c.nodes[2].wsURL(), &websocket.DialOptions{HTTPHeader: h})
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer conn.CloseNow()
		_, _, err = conn.Read(ctx) // hello, or the close of a connection over the limit
		return err == nil
	})
	// New conversations count for the cluster: the send above made one,
	// another instance makes the second of the two per minute, and a
	// third instance refuses the third.
	c.nodes[1].rest(t, u.Token, http.MethodPost, "/api/conversations", map[string]string{"title": "second"}, http.StatusCreated, nil)
	c.nodes[2].rest(t, u.Token, http.MethodPost, "/api/conversations", map[string]string{"title": "third"}, http.StatusTooManyRequests, nil)

	// So do searches: one per minute, on any instance.
	c.nodes[0].rest(t, u.Token, http.MethodGet, "/api/conversations?q=send", nil, http.StatusOK, nil)
	c.nodes[1].rest(t, u.Token, http.MethodGet, "/api/conversations?q=send", nil, http.StatusTooManyRequests, nil)

	// And changes of conversations (CHATD_EDITS_PER_MINUTE): one per
	// minute, on any instance.
	rename := "/api/conversations/" + ack.ConversationID
	c.nodes[0].rest(t, u.Token, http.MethodPatch, rename, map[string]string{"title": "renamed"}, http.StatusOK, nil)
	c.nodes[2].rest(t, u.Token, http.MethodPatch, rename, map[string]string{"title": "again"}, http.StatusTooManyRequests, nil)

	// Failed logins count for the cluster: a wrong password on each of
	// the three instances uses up the account's three from this address,
	// everywhere.
	email := fmt.Sprintf("guessed-%d@example.com", userSeq.Add(1))
	c.nodes[1].rest(t, "", http.MethodPost, "/api/auth/register",
		map[string]string{"email": email, "password": "correct horse battery", "name": "G"}, http.StatusCreated, nil)
	for _, n := range c.nodes {
		n.rest(t, "", http.MethodPost, "/api/auth/login",
			map[string]string{"email": email, "password": "a wrong guess"}, http.StatusUnauthorized, nil)
	}
	c.nodes[0].rest(t, "", http.MethodPost, "/api/auth/login",
		map[string]string{"email": email, "password": "correct horse battery"}, http.StatusTooManyRequests, nil)
}

// TestClusterCrash (behaviour 6): an instance dies mid-answer (its NATS
// connection and lease renewal stop at once, nothing of its shutdown runs).
// Within the lease TTL another instance stores the answer as interrupted
// with its last checkpoint's text, and the tabs following it elsewhere get
// done with status interrupted.
//
// C's lookup of the running answer (the subscribe's, made after its ack)
// returns only once the answer has hung, as on a loaded machine where it
// came after B's mirror and the checkpoint: the test must wait for C's tab
// to be sent the answer, not count C's mirrors at a moment (a clean-clone
// CI run once found 0; its "look up the running answer: context canceled"
// was that lookup, still under way, cut by the test closing C's tab).
func TestClusterCrash(t *testing.T) {
	t.Parallel()
	var regs []*prometheus.Registry // each instance's metrics, in start order
	slowC := make(chan struct{})    // closed: C's lookups return
	c := newCluster(t, clusterOptions{tweak: func(cfg *Config) {
		reg := prometheus.NewRegistry()
		cfg.Metrics.Registerer, cfg.Metrics.Gatherer = reg, reg
		regs = append(regs, reg)
		if len(regs) == 3 {
			cfg.Bus = &gatedLookups{Bus: cfg.Bus.(*natsbus.Bus), open: slowC}
		}
	}})
	a, b, cc := c.nodes[0], c.nodes[1], c.nodes[2]
	u := b.register(t)
	tabA := a.dial(t, u)
	ack := tabA.start("crash [[fake tokens=100 delay=5ms fault=hang_mid after=60]]")
	tabB, tabC := b.dial(t, u), cc.dial(t, u)
	seenB := subscribe(tabB, ack.ConversationID)
	seenC := subscribe(tabC, ack.ConversationID)
	seenB = append(seenB, tabB.until(func(f frame) bool { return f.Type == "delta" })...)
	// Wait for the checkpoint of all the hanging answer's text: the tabs
	// then have at most what is stored, and must end with exactly that.
	kept := fakeai.ExpectedPrefix(fakeai.Config{Tokens: 100}, 60)
	waitFor(t, "the checkpoint of the text before the hang", func() bool {
		m, err := b.store.Message(context.Background(), u.ID, ack.MessageID)
		return err == nil && m.Content == kept
	})
	close(slowC)
	seenC = append(seenC, tabC.until(func(f frame) bool { return f.Type == "delta" })...)

	for i, want := range []float64{0, 1, 1} { // tabs on B and C follow the answer running on A
		if got := metricValue(t, regs[i], "chatd_bus_mirrored_answers"); got != want {
			t.Fatalf("instance %d mirrors %v answers, want %v", i, got, want)
		}
		waitFor(t, "every instance seen live", func() bool { return metricValue(t, regs[i], "chatd_bus_instances") == 3 })
		if got := metricValue(t, regs[i], "chatd_bus_session_key_conflicts"); got != 0 {
			t.Fatalf("instance %d counts %v instances disagreeing about session keys, want 0", i, got)
		}
	}

	crashed := time.Now()
	c.crash(0)
	textB, doneB := delivered(t, live(append(seenB, tabB.until(isDone(ack.MessageID))...)), ack.MessageID)
	textC, doneC := delivered(t, live(append(seenC, tabC.until(isDone(ack.MessageID))...)), ack.MessageID)
	took := time.Since(crashed)
	if doneB.Status != "interrupted" || doneC.Status != "interrupted" {
		t.Fatalf("done frames %s / %s, want interrupted", doneB.raw, doneC.raw)
	}
	if took > 4*clusterLease {
		t.Fatalf("the dead instance's answer ended %s after the crash; lease TTL %s", took, clusterLease)
	}
	stored, err := b.store.Message(context.Background(), u.ID, ack.MessageID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Status != persistence.StatusInterrupted || stored.Content == "" ||
		int64(len(stored.Content)) != doneB.Seq || doneC.Seq != doneB.Seq {
		t.Fatalf("stored %d bytes (%s); done seq %d / %d", len(stored.Content), stored.Status, doneB.Seq, doneC.Seq)
	}
	for _, text := range []string{textB, textC} {
		if text != stored.Content || stored.Content != kept {
			t.Fatalf("a tab's text (%d bytes), the stored text (%d) and the text before the hang (%d) differ",
				len(text), len(stored.Content), len(kept))
		}
	}
	// Exactly one of the live instances ended the answer, and says so.
	if n := metricValue(t, regs[1], "chatd_bus_answers_taken_over_total") +
		metricValue(t, regs[2], "chatd_bus_answers_taken_over_total"); n != 1 {
		t.Fatalf("answers taken over, B + C: %v, want 1", n)
	}
	for i := 1; i <= 2; i++ {
		if up := metricValue(t, regs[i], "chatd_bus_up"); up != 1 {
			t.Fatalf("instance %d: chatd_bus_up %v", i, up)
		}
		waitFor(t, "the dead instance no longer counted", func() bool { return metricValue(t, regs[i], "chatd_bus_instances") == 2 })
	}
}

// delivered joins the deltas of one answer as a client does (no gap, no
// duplicate) and returns them with the answer's done frame. After a crash
// the instance ending the answer sends the stored text the dead one never
// published before the done, so the text equals the stored text whenever
// the tabs had no more than was stored.
func delivered(t *testing.T, frames []frame, messageID string) (string, frame) {
	t.Helper()
	var text strings.Builder
	var done frame
	for _, f := range frames {
		if f.MessageID != messageID {
			continue
		}
		switch f.Type {
		case "delta":
			if f.Seq != int64(text.Len()+len(f.Text)) {
				t.Fatalf("delta seq %d after %d bytes: gap or duplicate", f.Seq, text.Len())
			}
			text.WriteString(f.Text)
		case "done":
			done = f
		}
	}
	return text.String(), done
}

// noSecondDone fails if a done frame arrives on tab within d.
func noSecondDone(t *testing.T, tab *client, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case f := <-tab.frames:
			if f.Type == "done" {
				t.Fatalf("a second done: %s", f.raw)
			}
		case <-deadline:
			return
		}
	}
}

// TestClusterRegenerate (behaviour 2): a regenerate from a tab on B stops
// the answer running on A (upstream aborted at once, abortBound; one done,
// cancelled) and starts the new answer, which every tab follows to its end.
func TestClusterRegenerate(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOptions{})
	a, b := c.nodes[0], c.nodes[1]
	u := a.register(t)
	tabA, tabB := a.dial(t, u), b.dial(t, u)
	// The first answer hangs after 40 tokens (times=1: the regenerated one
	// does not), so it is still running at the regenerate however slow the
	// machine; it ran 2 s before, which a loaded machine could outlast.
	ack := tabA.start("regenerate me [[fake tokens=400 delay=5ms fault=hang_mid after=40 times=1]]")
	seenB := subscribe(tabB, ack.ConversationID)
	seenB = append(seenB, tabB.until(func(f frame) bool { return f.Type == "delta" })...)

	tabB.write(map[string]any{"type": "regenerate", "id": "rg", "conversationId": ack.ConversationID})
	ctx, cancel := context.WithTimeout(context.Background(), abortBound)
	defer cancel()
	if err := c.fake.WaitAbort(ctx); err != nil {
		t.Fatalf("the upstream on A was not aborted within %s of the regenerate on B: %v", abortBound, err)
	}
	framesB := live(append(seenB, tabB.until(func(f frame) bool { return f.Type == "ack" && string(f.ID) == `"rg"` })...))
	if _, done := delivered(t, framesB, ack.MessageID); done.Status != "cancelled" {
		t.Fatalf("old answer on B ended %s", done.raw)
	}
	re := framesB[len(framesB)-1]
	if re.MessageID == "" || re.MessageID == ack.MessageID {
		t.Fatalf("regenerate ack %s", re.raw)
	}
	want := fakeai.ExpectedText(fakeai.Config{Tokens: 400})
	restB := live(tabB.until(isDone(re.MessageID)))
	if text, done := answer(t, restB, re.MessageID); done.Status != "complete" || text != want {
		t.Fatalf("new answer on B: %d bytes, %s", len(text), done.raw)
	}
	framesA := live(tabA.until(isDone(re.MessageID)))
	var oldDone int
	for _, f := range framesA {
		if f.Type == "done" && f.MessageID == ack.MessageID {
			oldDone++
		}
	}
	if oldDone != 1 {
		t.Fatalf("tab on A got %d dones of the old answer, want 1", oldDone)
	}
	if text, done := answer(t, framesA, re.MessageID); done.Status != "complete" || text != want {
		t.Fatalf("new answer on A: %d bytes, %s", len(text), done.raw)
	}
}

// gatedLookups is a bus whose lookups of a running answer wait until open
// is closed (or their context ends): a lookup slower than everything else.
type gatedLookups struct {
	*natsbus.Bus
	open <-chan struct{}
}

// Running waits for open, then looks the answer up.
func (g *gatedLookups) Running(ctx context.Context, conversationID string) (hub.AnswerRef, bool, error) {
	select {
	case <-g.open:
	case <-ctx.Done():
		return hub.AnswerRef{}, false, ctx.Err()
	}
	return g.Bus.Running(ctx, conversationID)
}
