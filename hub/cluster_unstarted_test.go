package hub

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"chatd/hub/protocol"
	"chatd/persistence"
)

// appliedThenFailStore is a store whose next InsertMessages, once armed,
// stores the messages and then reports failure: a reply lost after the
// database applied the write, or the request's context ending while the
// reply was on its way (the tab closed).
type appliedThenFailStore struct {
	*gateStore
	armed chan struct{} // closed: the next InsertMessages fails after applying
	fired chan struct{} // closed once it did
}

func (s *appliedThenFailStore) InsertTouching(ctx context.Context, ms ...*persistence.Message) (persistence.Conversation, error) {
	return insertThenRead(ctx, s, ms)
}

func (s *appliedThenFailStore) InsertMessages(ctx context.Context, ms ...*persistence.Message) error {
	err := s.gateStore.InsertMessages(ctx, ms...)
	select {
	case <-s.armed:
		select {
		case <-s.fired:
		default:
			close(s.fired)
			if err == nil {
				return errors.New("insert messages: context canceled (after the write was applied)")
			}
		}
	default:
	}
	return err
}

// TestClusterInsertAppliedButFailedEnds: a send whose messages the store
// applied but reported failed is refused; its lock is given up, and its
// answer's row, stored streaming after all, does not stay streaming (no
// instance would ever end it: no lock names it, and a cluster has no
// start-up sweep): the sweep of late ends stores it interrupted.
func TestClusterInsertAppliedButFailedEnds(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t)
	var fs *appliedThenFailStore
	a := tc.startWith(t, "A", nil, func(o *Options) {
		fs = &appliedThenFailStore{gateStore: o.Store.(*gateStore), armed: make(chan struct{}), fired: make(chan struct{})}
		o.Store = fs
	})
	conv := tc.conversation(t)
	onA := tc.follow(t, a, "a1", conv.ID)
	close(fs.armed)
	if _, err := a.Send(context.Background(), onA, tc.user.ID, SendRequest{ConversationID: conv.ID, Content: "hi", ClientMessageID: "c-1"}); err == nil {
		t.Fatal("the send did not fail")
	}
	tc.waitUnlocked(t, conv.ID)
	msgs, err := tc.store.Messages(context.Background(), tc.user.ID, conv.ID)
	if err != nil {
		t.Fatal(err)
	}
	answer := ""
	for _, m := range msgs {
		if m.Role == persistence.RoleAssistant {
			answer = m.ID
		}
	}
	if answer == "" {
		t.Fatal("no answer row was stored: the test tests nothing")
	}
	tc.waitStored(t, answer, "interrupted", func(m persistence.Message) bool {
		return m.Status == persistence.StatusInterrupted && m.Error == unstartedReason
	})
}

// TestClusterResumeOnClaimantDuringTakeOver: A dies while answering; B
// claims the answer (the lock names B) and is still storing it
// interrupted when a tab that was on A reconnects to B and resumes it.
// The tab gets the answer's end (the stored text and a done interrupted)
// through the answer's stream, as on any other instance, instead of
// waiting for a done nobody sends it.
func TestClusterResumeOnClaimantDuringTakeOver(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, "A", "B")
	a, b := tc.hubs[0], tc.hubs[1]
	conv := tc.conversation(t)
	onA := tc.follow(t, a, "a1", conv.ID)
	res := tc.send(t, a, onA, conv.ID, "hi")
	a.model.next(t).say(t, "kept ")
	onA.waitText(t, res.MessageID, "kept ")
	tc.waitStored(t, res.MessageID, "checkpoint", func(m persistence.Message) bool { return m.Content == "kept " })
	release := b.store.holdInterrupts()
	a.crashed = true
	tc.mem.Crash("A")
	waitFor(t, "B to claim the answer", func() bool {
		l, held := tc.mem.Lock(conv.ID)
		return held && l.Instance == "B"
	})
	s := newTab(tc.user.ID, "a1-again")
	b.Register(s)
	t.Cleanup(func() { b.Detach(s) })
	last := int64(len("kept "))
	if err := b.Subscribe(context.Background(), s, tc.user.ID, SubscribeRequest{ConversationID: conv.ID,
		MessageID: res.MessageID, LastSeq: &last}); err != nil {
		t.Fatal(err)
	}
	release()
	if st := s.waitDone(t, res.MessageID); st != "interrupted" {
		t.Fatalf("the resumed tab's done: %q, want interrupted", st)
	}
	tc.waitUnlocked(t, conv.ID)
	frames, _ := s.snapshot()
	if n := countType(frames, res.MessageID, protocol.TypeDone); n != 1 {
		t.Fatalf("the resumed tab got %d done frames:\n%s", n, dump(frames))
	}
}

// TestClusterFollowAfterDoneNoReplay: B's tab b1 saw an answer A ran to
// its done; A has published that done but not yet released the lock (it
// does right after; here the release is held). A tab that begins to follow
// the conversation on B in that moment finds the lock still naming the
// answer: it is not mirrored again (which would replay the whole answer,
// done included, to every tab of the conversation on B).
func TestClusterFollowAfterDoneNoReplay(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t)
	gate := make(chan struct{})
	onA := &releaseGateBus{gate: gate, releases: make(chan struct{}, 1)}
	a := tc.startWith(t, "A", func(m *MemBus) Bus { onA.MemBus = m; return onA }, nil)
	b := tc.start(t, "B")
	conv := tc.conversation(t)
	tabA := tc.follow(t, a, "a1", conv.ID)
	b1 := tc.follow(t, b, "b1", conv.ID)
	res := tc.send(t, a, tabA, conv.ID, "first")
	run := a.model.next(t)
	run.say(t, "one")
	close(run.tokens)
	b1.waitDone(t, res.MessageID)
	select {
	case <-onA.releases: // A published the done; its release waits at the gate
	case <-time.After(waitLimit):
		t.Fatal("A does not release the lock")
	}
	waitFor(t, "B's mirror to end", func() bool {
		c := b.lookup(conv.ID)
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.remote == nil
	})
	b2 := tc.follow(t, b, "b2", conv.ID)
	c := b.lookup(conv.ID)
	c.mu.Lock()
	replaying := c.remote != nil
	c.mu.Unlock()
	close(gate)
	tc.waitUnlocked(t, conv.ID)
	// Another answer, run to its done on both tabs: anything a replay of
	// the first had sent them came before it.
	next := tc.send(t, a, tabA, conv.ID, "second")
	run = a.model.next(t)
	run.say(t, "two")
	close(run.tokens)
	b1.waitDone(t, next.MessageID)
	b2.waitDone(t, next.MessageID)
	for _, s := range []*tab{b1, b2} {
		frames, _ := s.snapshot()
		want := 1
		if s == b2 {
			want = 0 // it began to follow after that answer's done
		}
		if n := countType(frames, res.MessageID, protocol.TypeDone); n != want || replaying {
			t.Fatalf("tab %s got %d done frames of the first answer, want %d (mirrored again: %v):\n%s", s.id, n, want, replaying, dump(frames))
		}
	}
}

// dropRaceStore is a store that refuses to store a message "lost" and
// runs beforeDelete once, before its first DeleteConversation.
type dropRaceStore struct {
	*gateStore
	once         sync.Once
	beforeDelete func(id string)
}

var errDiskFull = errors.New("disk full")

func refusesLost(ms ...*persistence.Message) error {
	for _, m := range ms {
		if m.Content == "lost" {
			return errDiskFull
		}
	}
	return nil
}

func (s *dropRaceStore) InsertMessage(ctx context.Context, m *persistence.Message) error {
	if err := refusesLost(m); err != nil {
		return err
	}
	return s.gateStore.InsertMessage(ctx, m)
}

func (s *dropRaceStore) InsertMessages(ctx context.Context, ms ...*persistence.Message) error {
	if err := refusesLost(ms...); err != nil {
		return err
	}
	return s.gateStore.InsertMessages(ctx, ms...)
}

func (s *dropRaceStore) InsertTouching(ctx context.Context, ms ...*persistence.Message) (persistence.Conversation, error) {
	return insertThenRead(ctx, s, ms)
}

func (s *dropRaceStore) DeleteConversation(ctx context.Context, ownerID, id string) error {
	s.once.Do(func() { s.beforeDelete(id) })
	return s.gateStore.DeleteConversation(ctx, ownerID, id)
}

// TestClusterFailedCreateKeepsOtherInstancesSend: a send on A that created
// its conversation and could store nothing removes that conversation; a
// send on B into it (found in the list after a reload) that comes just
// before the removal is either refused, and then nothing remains, or
// stored, and then the conversation and its message stay.
func TestClusterFailedCreateKeepsOtherInstancesSend(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tc := newTestCluster(t)
	var ds *dropRaceStore
	a := tc.startWith(t, "A", nil, func(o *Options) {
		ds = &dropRaceStore{gateStore: o.Store.(*gateStore)}
		o.Store = ds
	})
	b := tc.start(t, "B")
	var kept Result
	var keptErr error
	ds.beforeDelete = func(id string) {
		a.pubs.Wait() // the failed send's own lock is given up
		kept, keptErr = b.Send(ctx, nil, tc.user.ID, SendRequest{ConversationID: id, Content: "kept"})
	}
	if _, err := a.Send(ctx, nil, tc.user.ID, SendRequest{Content: "lost", ClientMessageID: "c1"}); !errors.Is(err, errDiskFull) {
		t.Fatalf("Send on A = %v, want %v", err, errDiskFull)
	}
	if keptErr == nil && kept.ConversationID == "" {
		t.Fatal("B's send never ran: the test tests nothing")
	}
	convs, err := tc.store.ListConversations(ctx, tc.user.ID, persistence.ListQuery{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if keptErr != nil {
		if len(convs.Conversations) != 0 {
			t.Fatalf("B's send refused (%v), yet %d conversations remain", keptErr, len(convs.Conversations))
		}
		return
	}
	close(b.model.next(t).tokens) // B's answer ends
	if _, err := tc.store.Message(ctx, tc.user.ID, kept.UserMessageID); err != nil {
		t.Fatalf("B's stored message: %v", err)
	}
}
