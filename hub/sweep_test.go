package hub

import (
	"context"
	"errors"
	"testing"
	"time"

	"chatd/persistence"
)

// sweepPassResult is what one pass of the sweep reported.
type sweepPassResult struct {
	ended int
	err   error
}

// sweeper is an instance whose sweep of answers left streaming the test
// drives: each pass runs when the test ticks, with the sweep's clock
// ahead of the real one by ahead.
type sweeper struct {
	*testHub
	tick   chan time.Time
	waits  chan time.Duration // each wait the loop asked for
	passes chan sweepPassResult
}

func (tc *testCluster) startSweeper(t *testing.T, name string, ahead time.Duration, opts func(*Options)) *sweeper {
	t.Helper()
	s := &sweeper{tick: make(chan time.Time), waits: make(chan time.Duration, 16), passes: make(chan sweepPassResult, 16)}
	s.testHub = tc.startHooked(t, name, nil, opts, func(h *Hub) {
		h.sweep.now = func() time.Time { return time.Now().Add(ahead) }
		h.sweep.after = func(d time.Duration) <-chan time.Time {
			s.waits <- d
			return s.tick
		}
		h.sweep.passed = func(ended int, err error) { s.passes <- sweepPassResult{ended, err} }
	})
	return s
}

// startSoloSweeper is startSweeper for a single process: a hub on a
// bus of its own (NewLocalBus), as cmd/chatd runs without a cluster.
func (tc *testCluster) startSoloSweeper(t *testing.T, name string, ahead time.Duration) *sweeper {
	t.Helper()
	s := &sweeper{tick: make(chan time.Time), waits: make(chan time.Duration, 16), passes: make(chan sweepPassResult, 16)}
	s.testHub = tc.startHooked(t, name, func(*MemBus) Bus { return NewLocalBus() }, nil, func(h *Hub) {
		h.sweep.now = func() time.Time { return time.Now().Add(ahead) }
		h.sweep.after = func(d time.Duration) <-chan time.Time {
			s.waits <- d
			return s.tick
		}
		h.sweep.passed = func(ended int, err error) { s.passes <- sweepPassResult{ended, err} }
	})
	return s
}

// TestSoloSweepLeftStreaming: a single process sweeps too. A row its
// start could not mark interrupted (the store refused the write: a full
// disk) or whose end it dropped is marked interrupted with its text by a
// pass once SweepAge old, while its own answer, silent for as long, runs
// on and completes. Before, a single process never swept, and a failed
// start-up sweep stopped the start.
func TestSoloSweepLeftStreaming(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t)
	s := tc.startSoloSweeper(t, "solo", time.Hour)
	if !s.solo {
		t.Fatal("the hub on NewLocalBus is not a single process")
	}
	left := tc.leftStreaming(t)
	conv := tc.conversation(t)
	tab := tc.follow(t, s.testHub, "tab", conv.ID)
	res := tc.send(t, s.testHub, tab, conv.ID, "think hard")
	run := s.model.next(t)
	if r := s.pass(t); r.err != nil || r.ended != 1 {
		t.Fatalf("pass: ended %d, err %v; want the row left streaming ended", r.ended, r.err)
	}
	if m := tc.message(t, left.ID); m.Status != persistence.StatusInterrupted || m.Error != sweptReason || m.Content != left.Content {
		t.Fatalf("row left streaming: %q %q %q; want interrupted, %q, %q", m.Status, m.Error, m.Content, sweptReason, left.Content)
	}
	if m := tc.message(t, res.MessageID); m.Status != persistence.StatusStreaming {
		t.Fatalf("the running answer stored %q (%q) after the pass", m.Status, m.Error)
	}
	run.say(t, "answer")
	close(run.tokens)
	if st := tab.waitDone(t, res.MessageID); st != "complete" {
		t.Fatalf("done status %q, want complete", st)
	}
}

// pass runs one pass of the sweep and returns what it reported.
func (s *sweeper) pass(t *testing.T) sweepPassResult {
	t.Helper()
	select {
	case s.tick <- time.Now():
	case <-time.After(waitLimit):
		t.Fatalf("%s: the sweep does not wait for its next pass", s.name)
	}
	select {
	case r := <-s.passes:
		return r
	case <-time.After(waitLimit):
		t.Fatalf("%s: the sweep's pass did not end", s.name)
		return sweepPassResult{}
	}
}

// leftStreaming stores, in a new conversation, a question and an answer
// row left streaming with some text, as nothing in the cluster runs it.
func (tc *testCluster) leftStreaming(t *testing.T) persistence.Message {
	t.Helper()
	ctx := context.Background()
	conv := tc.conversation(t)
	q := persistence.Message{ConversationID: conv.ID, OwnerID: tc.user.ID, Role: persistence.RoleUser,
		Content: "question", Status: persistence.StatusComplete}
	a := persistence.Message{ConversationID: conv.ID, OwnerID: tc.user.ID, Role: persistence.RoleAssistant,
		Model: "script", Status: persistence.StatusStreaming}
	if err := tc.store.InsertMessages(ctx, &q, &a); err != nil {
		t.Fatal(err)
	}
	if _, err := tc.store.ApplyMessageUpdates(ctx, []persistence.MessageUpdate{{ID: a.ID, Append: "saved so far", At: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	return tc.message(t, a.ID)
}

// TestClusterSweepLeftStreaming: an answer row left streaming (its end
// dropped, or its insert reported failed, and its instance gone) that no
// lock names, or whose conversation's lock names another answer, is
// marked interrupted by the next sweep of any instance, its saved text
// kept; one whose lock names it (a live answer, or one being taken over)
// and one whose last checkpoint is recent are left streaming. Without the
// sweep nothing ends them in a cluster.
func TestClusterSweepLeftStreaming(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		ahead time.Duration // the sweep's clock ahead of the real one
		lock  func(row persistence.Message) *AnswerRef
		ended bool
	}{
		{"no lock", time.Hour, nil, true},
		{"the lock names another answer", time.Hour, func(row persistence.Message) *AnswerRef {
			return &AnswerRef{ConversationID: row.ConversationID, MessageID: persistence.NewID(), UserID: row.OwnerID, Instance: "X"}
		}, true},
		{"the lock names it", time.Hour, func(row persistence.Message) *AnswerRef {
			return &AnswerRef{ConversationID: row.ConversationID, MessageID: row.ID, UserID: row.OwnerID, Instance: "X"}
		}, false},
		{"saved recently", 0, nil, false},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tc := newTestCluster(t)
			rec := newBusMetricsRecorder()
			s := tc.startSweeper(t, "A", tt.ahead, func(o *Options) { o.Metrics = rec })
			row := tc.leftStreaming(t)
			if tt.lock != nil {
				if _, err := tc.mem.Join("X").Acquire(t.Context(), *tt.lock(row)); err != nil {
					t.Fatal(err)
				}
			}
			r := s.pass(t)
			got := tc.message(t, row.ID)
			if r.err != nil || (r.ended == 1) != tt.ended {
				t.Fatalf("pass ended %d, err %v; want ended %v", r.ended, r.err, tt.ended)
			}
			if swept := rec.counts().swept; swept != r.ended {
				t.Errorf("AnswerSwept counted %d, the pass ended %d", swept, r.ended)
			}
			switch {
			case tt.ended && (got.Status != persistence.StatusInterrupted || got.Error != sweptReason || got.Content != row.Content):
				t.Fatalf("swept row: status %q error %q content %q; want interrupted, %q, %q",
					got.Status, got.Error, got.Content, sweptReason, row.Content)
			case !tt.ended && got.Status != persistence.StatusStreaming:
				t.Fatalf("row left alone: status %q error %q, want streaming", got.Status, got.Error)
			}
		})
	}
}

// TestClusterSweepWaitsJittered: the sweep waits SweepInterval give or
// take a quarter before each pass, so that instances do not sweep in step.
func TestClusterSweepWaitsJittered(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t)
	const every = 40 * time.Second
	s := tc.startSweeper(t, "A", 0, func(o *Options) { o.SweepInterval = every })
	for range 3 {
		if r := s.pass(t); r.err != nil || r.ended != 0 {
			t.Fatalf("pass over nothing: ended %d, err %v", r.ended, r.err)
		}
	}
	for range 3 {
		if d := <-s.waits; d < every*3/4 || d > every*5/4 {
			t.Fatalf("wait before a pass %v, want within a quarter of %v", d, every)
		}
	}
}

// TestClusterSweepSparesSilentAnswer: an answer that thinks silently, its
// row unchanged for longer than SweepAge, is left running by the sweep of
// its own instance and of another (its lock names it), and completes.
func TestClusterSweepSparesSilentAnswer(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t)
	a := tc.startSweeper(t, "A", time.Hour, nil)
	b := tc.startSweeper(t, "B", time.Hour, nil)
	conv := tc.conversation(t)
	onA := tc.follow(t, a.testHub, "a1", conv.ID)
	res := tc.send(t, a.testHub, onA, conv.ID, "think hard")
	run := a.model.next(t)
	for _, s := range []*sweeper{a, b} {
		if r := s.pass(t); r.err != nil || r.ended != 0 {
			t.Fatalf("%s's pass over a live answer: ended %d, err %v", s.name, r.ended, r.err)
		}
	}
	if m := tc.message(t, res.MessageID); m.Status != persistence.StatusStreaming {
		t.Fatalf("live answer stored %q (%q) after the sweeps", m.Status, m.Error)
	}
	run.say(t, "answer")
	close(run.tokens)
	if st := onA.waitDone(t, res.MessageID); st != "complete" {
		t.Fatalf("done status %q, want complete", st)
	}
	if m := tc.message(t, res.MessageID); m.Status != persistence.StatusComplete || m.Content != "answer" {
		t.Fatalf("stored %q %q, want complete \"answer\"", m.Status, m.Content)
	}
}

// endsWhenFound is a store whose StreamingBefore, once it found rows,
// calls found: the test ends a row between the sweep's find and its
// interrupt.
type endsWhenFound struct {
	*gateStore
	found func()
}

func (s *endsWhenFound) StreamingBefore(ctx context.Context, before time.Time, after persistence.StreamingMessage, limit int) ([]persistence.StreamingMessage, error) {
	ms, err := s.gateStore.StreamingBefore(ctx, before, after, limit)
	if len(ms) > 0 {
		s.found()
	}
	return ms, err
}

// TestClusterSweepKeepsEndMeanwhile: a row found left streaming whose end
// is stored before the sweep marks it (its owner's retried final update,
// another instance's sweep) keeps that end: the first final write wins.
func TestClusterSweepKeepsEndMeanwhile(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t)
	var row persistence.Message
	end := func() {
		if _, err := tc.store.ApplyMessageUpdates(context.Background(), []persistence.MessageUpdate{
			{ID: row.ID, Append: " and the end", Status: persistence.StatusComplete, FinishReason: "stop", At: time.Now()},
		}); err != nil {
			t.Error(err)
		}
	}
	s := tc.startSweeper(t, "A", time.Hour, func(o *Options) {
		o.Store = &endsWhenFound{gateStore: o.Store.(*gateStore), found: end}
	})
	row = tc.leftStreaming(t)
	if r := s.pass(t); r.err != nil || r.ended != 0 {
		t.Fatalf("pass: ended %d, err %v; want none ended", r.ended, r.err)
	}
	if m := tc.message(t, row.ID); m.Status != persistence.StatusComplete || m.Error != "" || m.Content != row.Content+" and the end" {
		t.Fatalf("stored %q error %q content %q; want the end stored meanwhile", m.Status, m.Error, m.Content)
	}
}

// blockedFind is a store whose StreamingBefore waits for its context.
type blockedFind struct {
	*gateStore
	called chan struct{}
}

func (s *blockedFind) StreamingBefore(ctx context.Context, _ time.Time, _ persistence.StreamingMessage, _ int) ([]persistence.StreamingMessage, error) {
	close(s.called)
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestClusterSweepEndsWithHub: the sweep ends with the hub's context
// (Run returns once it stopped), and a pass waiting on the store ends
// at Shutdown.
func TestClusterSweepEndsWithHub(t *testing.T) {
	t.Parallel()
	t.Run("Run's context", func(t *testing.T) {
		t.Parallel()
		store, _ := sqliteWithUser(t, "u@example.test")
		waiting := make(chan struct{})
		h := New(Options{Store: store, Model: newScriptModel(), Bus: NewMemCluster().Join("A")}) // no answer runs: no writer
		h.sweep.after = func(time.Duration) <-chan time.Time {
			close(waiting)
			return nil // never: the test ends the sweep while it waits
		}
		ctx, cancel := context.WithCancel(context.Background())
		ran := make(chan struct{})
		go func() {
			defer close(ran)
			_ = h.Run(ctx)
		}()
		select {
		case <-waiting:
		case <-time.After(waitLimit):
			t.Fatal("the sweep never waited for a pass")
		}
		cancel()
		select {
		case <-ran:
		case <-time.After(waitLimit):
			t.Fatal("Run did not return once its context ended")
		}
	})
	t.Run("Shutdown", func(t *testing.T) {
		t.Parallel()
		tc := newTestCluster(t)
		called := make(chan struct{})
		s := tc.startSweeper(t, "A", time.Hour, func(o *Options) {
			o.Store = &blockedFind{gateStore: o.Store.(*gateStore), called: called}
		})
		select {
		case s.tick <- time.Now():
		case <-time.After(waitLimit):
			t.Fatal("the sweep does not wait for its next pass")
		}
		select {
		case <-called:
		case <-time.After(waitLimit):
			t.Fatal("the sweep's pass did not look for rows")
		}
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		select {
		case r := <-s.passes:
			if !errors.Is(r.err, context.Canceled) {
				t.Fatalf("pass ended with %v, want context canceled", r.err)
			}
		case <-time.After(waitLimit):
			t.Fatal("the sweep's pass did not end at Shutdown")
		}
	})
}

// TestClusterSweepEndsCrashedInstancesRow: a send whose answer's insert
// the store applied but reported failed gives its lock up at once and
// leaves the row to its instance's late ends; that instance crashes
// before the store answers it again (here: the store stays down for it),
// so nothing of it ends the row and no lock leads another instance to it.
// Another instance's sweep marks it interrupted. Before the sweep it
// stayed streaming for ever.
func TestClusterSweepEndsCrashedInstancesRow(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t)
	ds := &downStore{failed: make(chan struct{}, 1)}
	a := tc.startWith(t, "A", nil, func(o *Options) {
		ds.gateStore = o.Store.(*gateStore)
		o.Store = ds
	})
	b := tc.startSweeper(t, "B", time.Hour, nil)
	conv := tc.conversation(t)
	ds.down.Store(true)
	if _, err := a.Send(context.Background(), nil, tc.user.ID, SendRequest{ConversationID: conv.ID, Content: "hi"}); err == nil {
		t.Fatal("the send did not fail")
	}
	select {
	case <-ds.failed: // A's late end tried, and failed
	case <-time.After(waitLimit):
		t.Fatal("A did not try to end the row")
	}
	tc.waitUnlocked(t, conv.ID)
	a.crashed = true
	tc.mem.Crash("A")
	msgs, err := tc.store.Messages(context.Background(), tc.user.ID, conv.ID)
	if err != nil {
		t.Fatal(err)
	}
	var answer persistence.Message
	for _, m := range msgs {
		if m.Role == persistence.RoleAssistant {
			answer = m
		}
	}
	if answer.Status != persistence.StatusStreaming {
		t.Fatalf("answer row %+v, want one left streaming: the test tests nothing", answer)
	}
	if r := b.pass(t); r.err != nil || r.ended != 1 {
		t.Fatalf("B's pass: ended %d, err %v; want 1 ended", r.ended, r.err)
	}
	if m := tc.message(t, answer.ID); m.Status != persistence.StatusInterrupted || m.Error != sweptReason {
		t.Fatalf("row %q error %q after B's sweep, want interrupted with %q", m.Status, m.Error, sweptReason)
	}
}

// TestSweepLeavesEndTheWriterHolds: an answer whose final update the
// writer still holds, retried while the store fails bulk writes (its
// Finish gave up waiting, the done said the server keeps trying), is left
// alone by its instance's sweep once its row is older than SweepAge, the
// store taking the sweep's small write meanwhile (a nearly full disk);
// once the store takes bulk writes again the answer is stored complete,
// with its whole text. The sweep marked it interrupted with its last
// checkpoint's text, and the writer's retry was then skipped.
func TestSweepLeavesEndTheWriterHolds(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t)
	s := tc.startSweeper(t, "A", time.Hour, func(o *Options) { o.FinishTimeout = 50 * time.Millisecond })
	conv := tc.conversation(t)
	tab := tc.follow(t, s.testHub, "tab", conv.ID)
	res := tc.send(t, s.testHub, tab, conv.ID, "hi")
	run := s.model.next(t)
	run.say(t, "saved ")
	tc.waitStored(t, res.MessageID, "the checkpoint", func(m persistence.Message) bool { return m.Content == "saved " })
	s.store.failBulkWrites(true)
	t.Cleanup(func() { s.store.failBulkWrites(false) }) // before the writer closes, also when the test failed
	run.say(t, "and the rest")
	close(run.tokens)
	if st := tab.waitDone(t, res.MessageID); st != string(persistence.StatusError) {
		t.Fatalf("done status %q, want error (not stored yet)", st)
	}
	if !s.writer.HoldsFinal(res.MessageID) {
		t.Fatal("the writer does not hold the answer's final update")
	}
	if r := s.pass(t); r.err != nil || r.ended != 0 {
		t.Fatalf("pass: ended %d, err %v; want the answer whose end the writer holds left alone", r.ended, r.err)
	}
	s.store.failBulkWrites(false)
	m := tc.waitStored(t, res.MessageID, "the end", func(m persistence.Message) bool { return m.Status.Final() })
	if m.Status != persistence.StatusComplete || m.Error != "" || m.Content != "saved and the rest" {
		t.Fatalf("stored %q error %q content %q; want complete, the whole text", m.Status, m.Error, m.Content)
	}
}
