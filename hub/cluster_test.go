package hub

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"chatd/hub/protocol"
	"chatd/persistence"
)

// endFrames are the message and done frames of answer id: the frames a
// remote tab gets byte for byte as the owner's tabs do (deltas may arrive
// merged when the bus lags, see mergeText; their text is compared apart).
func endFrames(frames []*protocol.Frame, id string) [][]byte {
	var out [][]byte
	for _, f := range frames {
		if f.MessageID == id && (f.Type == protocol.TypeMessage || f.Type == protocol.TypeDone) {
			out = append(out, f.Data)
		}
	}
	return out
}

// TestClusterFollowRemoteAnswer: a tab on B following a conversation sees
// the answer running on A live, the bytes A's own tab gets,
// with exactly one done; a tab joining on B mid-answer is caught up with no
// gap and no duplicate.
func TestClusterFollowRemoteAnswer(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, "A", "B")
	a, b := tc.hubs[0], tc.hubs[1]
	conv := tc.conversation(t)
	onA := tc.follow(t, a, "a1", conv.ID)
	onB := tc.follow(t, b, "b1", conv.ID)

	res := tc.send(t, a, onA, conv.ID, "hello")
	run := a.model.next(t)
	run.say(t, "héllo ", "wörld ")
	onB.waitText(t, res.MessageID, "héllo wörld ")
	// Every hub names the running answer (REST thread, SSE resume), to its owner only.
	for _, h := range tc.hubs {
		if got := h.ActiveAnswer(t.Context(), tc.user.ID, conv.ID); got != res.MessageID {
			t.Fatalf("ActiveAnswer on %s = %q, want %q", h.name, got, res.MessageID)
		}
		if got := h.ActiveAnswer(t.Context(), persistence.NewID(), conv.ID); got != "" {
			t.Fatalf("ActiveAnswer for another user on %s = %q", h.name, got)
		}
	}
	if got := tc.start(t, "C").ActiveMessageID(conv.ID); got != res.MessageID {
		t.Fatalf("ActiveMessageID on a hub that follows nothing = %q", got)
	}

	late := tc.follow(t, b, "b2", conv.ID) // joins mid-answer
	late.waitText(t, res.MessageID, "héllo wörld ")
	run.say(t, "中文 ", "🙂")
	close(run.tokens)

	const want = "héllo wörld 中文 🙂"
	for _, s := range []*tab{onA, onB, late} {
		if st := s.waitDone(t, res.MessageID); st != "complete" {
			t.Fatalf("tab %s: done status %q", s.id, st)
		}
		frames, _ := s.snapshot()
		text, dones, err := answerOf(frames, res.MessageID, 0)
		if err != nil || text != want || dones != 1 {
			t.Fatalf("tab %s: text %q dones %d err %v\n%s", s.id, text, dones, err, dump(frames))
		}
	}
	fa, _ := onA.snapshot()
	fb, _ := onB.snapshot()
	la, lb := endFrames(fa, res.MessageID), endFrames(fb, res.MessageID)
	if len(la) != len(lb) {
		t.Fatalf("A's tab got %d frames, B's %d", len(la), len(lb))
	}
	for i := range la {
		if !bytes.Equal(la[i], lb[i]) {
			t.Fatalf("frame %d differs:\nA %s\nB %s", i, la[i], lb[i])
		}
	}
	if countType(fb, "", protocol.TypeMessage) != 2 { // the user's message and the answer
		t.Fatalf("B's tab got %d message frames, want 2:\n%s", countType(fb, "", protocol.TypeMessage), dump(fb))
	}
	tc.waitUnlocked(t, conv.ID)
	if m := tc.message(t, res.MessageID); m.Status != persistence.StatusComplete || m.Content != want {
		t.Fatalf("stored %q %q", m.Status, m.Content)
	}
}

// TestClusterResumeOnThirdHub: a tab that had part of an answer running on
// A reconnects to C (which follows nothing yet) and resumes by messageId and
// lastSeq: it gets exactly the rest. A second resume on C, now that C
// mirrors the answer, is caught up from the mirror. A cursor inside a
// character is refused.
func TestClusterResumeOnThirdHub(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, "A", "B", "C")
	a, b, c := tc.hubs[0], tc.hubs[1], tc.hubs[2]
	conv := tc.conversation(t)
	onB := tc.follow(t, b, "b1", conv.ID)
	res := tc.send(t, a, nil, conv.ID, "hi")
	run := a.model.next(t)
	run.say(t, "naïve ", "café ")
	onB.waitText(t, res.MessageID, "naïve café ")
	lastSeq := int64(len("naïve "))

	resume := func(name string, seq int64) (*tab, error) {
		s := newTab(tc.user.ID, name)
		t.Cleanup(func() { c.Detach(s) })
		err := c.Subscribe(context.Background(), s, tc.user.ID,
			SubscribeRequest{ConversationID: conv.ID, MessageID: res.MessageID, LastSeq: &seq})
		return s, err
	}
	first, err := resume("c1", lastSeq)
	if err != nil {
		t.Fatal(err)
	}
	first.waitUntil(t, "ack", func(fs []*protocol.Frame, _ protocol.CloseCode) bool { return countType(fs, "", protocol.TypeAck) == 1 })
	run.say(t, "€uro ")
	second, err := resume("c2", int64(len("naïve café ")))
	if err != nil {
		t.Fatal(err)
	}
	second.waitUntil(t, "the rest", func(fs []*protocol.Frame, _ protocol.CloseCode) bool {
		text, _, err := answerOf(fs, res.MessageID, int64(len("naïve café ")))
		return err == nil && text == "€uro "
	})
	if _, err := resume("c3", 3); errCode(err) != protocol.CodeBadSeq { // inside "ï"
		t.Fatalf("resume inside a character: %v, want bad_seq", err)
	}
	run.say(t, "日本語")
	close(run.tokens)
	for s, from := range map[*tab]int64{first: lastSeq, second: int64(len("naïve café "))} {
		s.waitDone(t, res.MessageID)
		frames, _ := s.snapshot()
		text, dones, err := answerOf(frames, res.MessageID, from)
		want := "naïve café €uro 日本語"[from:]
		if err != nil || text != want || dones != 1 {
			t.Fatalf("tab %s resumed at %d: text %q (want %q) dones %d err %v\n%s", s.id, from, text, want, dones, err, dump(frames))
		}
		if n := countType(frames, res.MessageID, protocol.TypeMessage); n != 0 {
			t.Fatalf("tab %s resumed but got %d message frames", s.id, n)
		}
	}
}

// TestClusterStopFromAnotherHub: cancel and regenerate sent to B stop the
// answer running on A (its upstream request is aborted); each
// answer gets exactly one done on every tab; the regenerated answer runs on
// B under the cluster lock.
func TestClusterStopFromAnotherHub(t *testing.T) {
	t.Parallel()
	for _, regenerate := range []bool{false, true} {
		name := "cancel"
		if regenerate {
			name = "regenerate"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			tc := newTestCluster(t, "A", "B")
			a, b := tc.hubs[0], tc.hubs[1]
			conv := tc.conversation(t)
			onA := tc.follow(t, a, "a1", conv.ID)
			onB := tc.follow(t, b, "b1", conv.ID)
			res := tc.send(t, a, onA, conv.ID, "hi")
			run := a.model.next(t)
			run.say(t, "partial ")
			onB.waitText(t, res.MessageID, "partial ")

			start := time.Now()
			var newID string
			if regenerate {
				r, err := b.Regenerate(context.Background(), onB, tc.user.ID, RegenerateRequest{ConversationID: conv.ID})
				if err != nil {
					t.Fatal(err)
				}
				newID = r.MessageID
			} else if err := b.Cancel(context.Background(), tc.user.ID, conv.ID); err != nil {
				t.Fatal(err)
			}
			// Nothing but the stop aborts the request: the bound only ends a
			// hang (it was 1 s, which a loaded machine's stall may outlast).
			select {
			case <-run.aborted:
				t.Logf("upstream aborted after %v", time.Since(start))
			case <-time.After(waitLimit):
				t.Fatalf("the upstream request on A was not aborted within %v", waitLimit)
			}
			tc.wantCancelled(t, res.MessageID, "partial ", onA, onB)
			if regenerate {
				again := b.model.next(t) // the new answer runs on B
				if lock, _ := tc.mem.Lock(conv.ID); lock.Instance != "B" || lock.MessageID != newID {
					t.Fatalf("lock %+v, want B running %s", lock, newID)
				}
				again.say(t, "fresh")
				close(again.tokens)
				for _, s := range []*tab{onA, onB} {
					s.waitText(t, newID, "fresh")
					s.waitDone(t, newID)
				}
			}
			tc.waitUnlocked(t, conv.ID)
			for _, s := range []*tab{onA, onB} {
				frames, _ := s.snapshot()
				for _, id := range []string{res.MessageID, newID} {
					if id != "" && countType(frames, id, protocol.TypeDone) != 1 {
						t.Fatalf("tab %s: %d dones for %s\n%s", s.id, countType(frames, id, protocol.TypeDone), id, dump(frames))
					}
				}
			}
		})
	}
}

// TestClusterConcurrentSends: two sends into one conversation on two hubs
// at the same moment start one answer; the other is refused with
// generation_running and stores nothing.
func TestClusterConcurrentSends(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, "A", "B")
	conv := tc.conversation(t)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	results := make([]Result, 2)
	gate := make(chan struct{})
	for i, h := range tc.hubs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			results[i], errs[i] = h.Send(context.Background(), nil, tc.user.ID,
				SendRequest{ConversationID: conv.ID, Content: "race " + h.name})
		}()
	}
	close(gate)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil:
			if winner >= 0 {
				t.Fatal("both sends started an answer")
			}
			winner = i
		case errCode(err) != protocol.CodeGenerationRunning:
			t.Fatalf("send on %s: %v, want generation_running", tc.hubs[i].name, err)
		}
	}
	if winner < 0 {
		t.Fatalf("no send started: %v", errs)
	}
	run := tc.hubs[winner].model.next(t)
	close(run.tokens)
	tc.waitStored(t, results[winner].MessageID, "complete", func(m persistence.Message) bool { return m.Status.Final() })
	msgs, err := tc.store.Messages(context.Background(), tc.user.ID, conv.ID)
	if err != nil || len(msgs) != 2 {
		t.Fatalf("stored %d messages (%v), want the winner's question and answer", len(msgs), err)
	}
}

// TestClusterUserEvents: conversation frames and close-user reach every
// connection of the user on every hub, once.
func TestClusterUserEvents(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, "A", "B", "C")
	tabs := make([]*tab, len(tc.hubs))
	for i, h := range tc.hubs {
		tabs[i] = newTab(tc.user.ID, "t"+h.name)
		h.Register(tabs[i])
	}
	conv := tc.conversation(t)
	tc.hubs[0].ConversationChanged(tc.user.ID, "updated", conv)
	for _, s := range tabs {
		s.waitUntil(t, "conversation frame", func(fs []*protocol.Frame, _ protocol.CloseCode) bool {
			return countType(fs, "", protocol.TypeConversation) == 1
		})
	}
	tc.hubs[1].CloseUser(tc.user.ID)
	for _, s := range tabs {
		s.waitUntil(t, "close 4401", func(_ []*protocol.Frame, closed protocol.CloseCode) bool {
			return closed == protocol.CloseUnauthorized
		})
		frames, _ := s.snapshot()
		if n := countType(frames, "", protocol.TypeConversation); n != 1 {
			t.Fatalf("tab %s got %d conversation frames", s.id, n)
		}
	}
}

// TestClusterRegenerateAnnounced: a regenerate on A tells the user's tabs
// on B, following nothing, that the conversation moved up, as a send does:
// one conversation frame (updated) per request, the last carrying the
// conversation as stored after the regenerated answer's insert.
func TestClusterRegenerateAnnounced(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, "A", "B")
	a, b := tc.hubs[0], tc.hubs[1]
	onB := newTab(tc.user.ID, "b1")
	b.Register(onB)
	t.Cleanup(func() { b.Detach(onB) })
	conv := tc.conversation(t)
	res := tc.send(t, a, nil, conv.ID, "hi")
	close(a.model.next(t).tokens)
	tc.waitStored(t, res.MessageID, "complete", func(m persistence.Message) bool { return m.Status.Final() })
	onB.waitUntil(t, "the send's conversation frame", func(fs []*protocol.Frame, _ protocol.CloseCode) bool {
		return countType(fs, "", protocol.TypeConversation) == 1
	})

	if _, err := a.Regenerate(context.Background(), nil, tc.user.ID, RegenerateRequest{ConversationID: conv.ID}); err != nil {
		t.Fatal(err)
	}
	close(a.model.next(t).tokens)
	onB.waitUntil(t, "the regenerate's conversation frame", func(fs []*protocol.Frame, _ protocol.CloseCode) bool {
		return countType(fs, "", protocol.TypeConversation) == 2
	})
	stored, err := tc.store.Conversation(context.Background(), tc.user.ID, conv.ID)
	if err != nil {
		t.Fatal(err)
	}
	frames, _ := onB.snapshot()
	var last struct {
		Action       string                   `json:"action"`
		Conversation persistence.Conversation `json:"conversation"`
	}
	if err := json.Unmarshal(frames[len(frames)-1].Data, &last); err != nil {
		t.Fatal(err)
	}
	if last.Action != "updated" || last.Conversation.ID != conv.ID || !last.Conversation.UpdatedAt.Equal(stored.UpdatedAt) {
		t.Fatalf("tab on B told %s %s at %v, want updated %s at %v\n%s", last.Action, last.Conversation.ID,
			last.Conversation.UpdatedAt, conv.ID, stored.UpdatedAt, dump(frames))
	}
}

// TestClusterEndUser: EndUser on B (an account being deleted) closes the
// user's connections on every hub with 4401 and returns once the answer
// running on A in a listed conversation has ended, stored as cancelled;
// another user's connection stays open.
func TestClusterEndUser(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, "A", "B", "C")
	a, b := tc.hubs[0], tc.hubs[1]
	tabs := make([]*tab, len(tc.hubs))
	for i, h := range tc.hubs {
		tabs[i] = newTab(tc.user.ID, "t"+h.name)
		h.Register(tabs[i])
	}
	stays := newTab("someone-else", "other")
	a.Register(stays)
	conv := tc.conversation(t)
	res := tc.send(t, a, tabs[0], conv.ID, "hi")
	a.model.next(t).say(t, "partial ")
	tabs[0].waitText(t, res.MessageID, "partial ")

	b.EndUser(tc.user.ID, []string{conv.ID})
	if m := tc.message(t, res.MessageID); m.Status != persistence.StatusCancelled {
		t.Fatalf("the answer on A when EndUser returned: %s, want cancelled", m.Status)
	}
	for _, s := range tabs {
		s.waitUntil(t, "close 4401", func(_ []*protocol.Frame, closed protocol.CloseCode) bool {
			return closed == protocol.CloseUnauthorized
		})
	}
	if _, closed := stays.snapshot(); closed != 0 {
		t.Fatalf("another user's connection closed with %d", closed)
	}
}

// sessionTab is a tab opened with the session of token version tv.
type sessionTab struct {
	*tab
	tv int64
}

func (s sessionTab) TokenVersion() int64 { return s.tv }

// TestClusterCloseSessionsBefore: a password change on B (the new session
// at token version 1) closes the user's connections opened with older
// sessions on every hub with 4401, and leaves those of the new session
// and another user's open.
func TestClusterCloseSessionsBefore(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, "A", "B", "C")
	var olds, news []sessionTab
	stays := newTab("someone-else", "other")
	tc.hubs[0].Register(stays)
	for _, h := range tc.hubs {
		old, cur := sessionTab{newTab(tc.user.ID, "old"+h.name), 0}, sessionTab{newTab(tc.user.ID, "new"+h.name), 1}
		h.Register(old)
		h.Register(cur)
		olds, news = append(olds, old), append(news, cur)
	}
	tc.hubs[1].CloseSessionsBefore(tc.user.ID, 1)
	for i, old := range olds {
		old.waitUntil(t, "close 4401", func(_ []*protocol.Frame, closed protocol.CloseCode) bool {
			return closed == protocol.CloseUnauthorized
		})
		// Both tabs of a hub are judged in one pass: the new one is open.
		if _, closed := news[i].snapshot(); closed != 0 {
			t.Fatalf("the new session's tab on %s closed with %d", tc.hubs[i].name, closed)
		}
	}
	if _, closed := stays.snapshot(); closed != 0 {
		t.Fatalf("another user's connection closed with %d", closed)
	}
}

// TestClusterOwnerCrash: A dies mid-answer (its lease expires); exactly one
// other hub stores the answer interrupted with the last checkpoint's text,
// every follower on B and C gets one done interrupted, the lock is
// released and a new answer can start.
func TestClusterOwnerCrash(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t)
	recs := tc.startMetered(t, "A", "B", "C")
	a, b, c := tc.hubs[0], tc.hubs[1], tc.hubs[2]
	conv := tc.conversation(t)
	onB := tc.follow(t, b, "b1", conv.ID)
	onC := tc.follow(t, c, "c1", conv.ID)
	res := tc.send(t, a, nil, conv.ID, "hi")
	run := a.model.next(t)
	run.say(t, "kept ", "text ")
	onC.waitText(t, res.MessageID, "kept text ")
	tc.waitStored(t, res.MessageID, "checkpoint", func(m persistence.Message) bool { return m.Content == "kept text " })
	// B and C mirror the answer to their tabs; its owner does not.
	for i, want := range []int{0, 1, 1} {
		if n := recs[i].counts(); n.mirrors != want {
			t.Fatalf("%s mirrors %d answers, want %d", tc.hubs[i].name, n.mirrors, want)
		}
	}

	a.crashed = true
	tc.mem.Crash("A")
	for _, s := range []*tab{onB, onC} {
		if st := s.waitDone(t, res.MessageID); st != "interrupted" {
			t.Fatalf("tab %s: done %q", s.id, st)
		}
		frames, _ := s.snapshot()
		if n := countType(frames, res.MessageID, protocol.TypeDone); n != 1 {
			t.Fatalf("tab %s: %d dones", s.id, n)
		}
	}
	m := tc.message(t, res.MessageID)
	if m.Status != persistence.StatusInterrupted || m.Content != "kept text " {
		t.Fatalf("stored %q %q", m.Status, m.Content)
	}
	tc.waitUnlocked(t, conv.ID)
	// B and C were both told; exactly one of them ended the answer, and
	// counted it.
	if n := countType(streamFrames(tc.mem, res.MessageID), res.MessageID, protocol.TypeDone); n != 1 {
		t.Fatalf("the answer's stream has %d done frames, want 1", n)
	}
	if n := recs[1].counts().takenOver + recs[2].counts().takenOver; n != 1 {
		t.Fatalf("%d take-overs counted, want 1", n)
	}
	for i := 1; i <= 2; i++ {
		recs[i].waitFor(t, tc.hubs[i].name+" stops mirroring", func(n busCounts) bool { return n.mirrors == 0 && n.lost == 0 })
	}
	next := tc.send(t, b, onB, conv.ID, "again")
	again := b.model.next(t)
	close(again.tokens)
	onC.waitDone(t, next.MessageID)
}

// TestClusterOrphanReportedTwice: the bus reports a dead instance's
// answer to a hub again while that hub is still taking it over (Claim wins
// again for the instance that won it): the answer is still ended once.
func TestClusterOrphanReportedTwice(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, "A", "B")
	a, b := tc.hubs[0], tc.hubs[1]
	conv := tc.conversation(t)
	onB := tc.follow(t, b, "b1", conv.ID)
	res := tc.send(t, a, nil, conv.ID, "hi")
	a.model.next(t).say(t, "kept ")
	onB.waitText(t, res.MessageID, "kept ")
	orphan, ok, err := b.bus.Running(context.Background(), conv.ID)
	if err != nil || !ok {
		t.Fatalf("the answer's lock: %v %v", ok, err)
	}
	release := b.store.holdInterrupts()
	a.crashed = true
	tc.mem.Crash("A")                  // B starts taking the answer over
	busHandler{b.Hub}.Orphaned(orphan) // and is told again meanwhile
	release()
	if st := onB.waitDone(t, res.MessageID); st != "interrupted" {
		t.Fatalf("done %q", st)
	}
	tc.waitUnlocked(t, conv.ID)
	b.Hub.bg.Wait()
	if n := countType(streamFrames(tc.mem, res.MessageID), res.MessageID, protocol.TypeDone); n != 1 {
		t.Fatalf("the answer's stream has %d done frames, want 1", n)
	}
}

// TestClusterOwnerCrashCatchUp: the followers of a dead instance's answer
// end with exactly the stored text. Text stored but never published (the
// bus lost the instance first) reaches them before the done; when they
// got more than was stored (the last checkpoint died with the instance),
// the done says the stored length and status interrupted.
func TestClusterOwnerCrashCatchUp(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name             string
		published, after string // text before the crash, text said after it
		stored           string // the text stored when the answer is ended
		freezeCheckpoint bool   // checkpoints stop before the crash
	}{
		{name: "stored but not published", published: "kept ", after: "lost ", stored: "kept lost "},
		{name: "published but not stored", published: "kept ", after: "", stored: "kept ", freezeCheckpoint: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tc := newTestCluster(t, "A", "B", "C")
			a, b, c := tc.hubs[0], tc.hubs[1], tc.hubs[2]
			conv := tc.conversation(t)
			onB := tc.follow(t, b, "b1", conv.ID)
			onC := tc.follow(t, c, "c1", conv.ID)
			res := tc.send(t, a, nil, conv.ID, "hi")
			run := a.model.next(t)
			run.say(t, tt.published)
			onC.waitText(t, res.MessageID, tt.published)
			tc.waitStored(t, res.MessageID, "checkpoint", func(m persistence.Message) bool { return m.Content == tt.published })
			delivered := tt.published
			if tt.freezeCheckpoint {
				release := a.store.holdUpdates()
				t.Cleanup(release)
				run.say(t, "unstored ")
				delivered += "unstored "
				onB.waitText(t, res.MessageID, delivered)
				onC.waitText(t, res.MessageID, delivered)
			}
			var releases []func()
			for _, h := range []*testHub{b, c} {
				releases = append(releases, h.store.holdInterrupts())
				t.Cleanup(releases[len(releases)-1])
			}
			a.crashed = true
			tc.mem.Crash("A")
			if tt.after != "" {
				run.say(t, tt.after)
				tc.waitStored(t, res.MessageID, "checkpoint after the crash", func(m persistence.Message) bool { return m.Content == tt.stored })
			}
			for _, release := range releases {
				release()
			}
			for _, s := range []*tab{onB, onC} {
				if st := s.waitDone(t, res.MessageID); st != "interrupted" {
					t.Fatalf("tab %s: done %q", s.id, st)
				}
				frames, _ := s.snapshot()
				text, dones, err := answerOf(frames, res.MessageID, 0)
				if err != nil || dones != 1 {
					t.Fatalf("tab %s: %d dones, %v\n%s", s.id, dones, err, dump(frames))
				}
				want := tt.stored
				if len(delivered) > len(want) {
					want = delivered // more than stored: the done below says so
				}
				if text != want {
					t.Fatalf("tab %s: text %q, want %q", s.id, text, want)
				}
				for _, f := range frames {
					if f.Type == protocol.TypeDone && f.MessageID == res.MessageID && f.Seq != int64(len(tt.stored)) {
						t.Fatalf("tab %s: done seq %d, want the stored length %d", s.id, f.Seq, len(tt.stored))
					}
				}
			}
			if m := tc.message(t, res.MessageID); m.Status != persistence.StatusInterrupted || m.Content != tt.stored {
				t.Fatalf("stored %q %q", m.Status, m.Content)
			}
		})
	}
}

// TestClusterDrain: a draining hub refuses new answers but keeps streaming
// its running one to followers on other hubs until it ends; Drain returns
// then. An answer longer than the drain's grace ends interrupted.
func TestClusterDrain(t *testing.T) {
	t.Parallel()
	for _, finishes := range []bool{true, false} {
		name := "answer ends within the grace"
		if !finishes {
			name = "grace runs out"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			tc := newTestCluster(t, "A", "B")
			a, b := tc.hubs[0], tc.hubs[1]
			conv := tc.conversation(t)
			onB := tc.follow(t, b, "b1", conv.ID)
			res := tc.send(t, a, nil, conv.ID, "hi")
			run := a.model.next(t)
			run.say(t, "before ")
			onB.waitText(t, res.MessageID, "before ")

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			drained := make(chan error, 1)
			go func() { drained <- a.Drain(ctx) }()
			waitFor(t, "the drain to begin", a.isClosing)
			other := tc.conversation(t)
			if _, err := a.Send(context.Background(), nil, tc.user.ID, SendRequest{ConversationID: other.ID, Content: "x"}); errCode(err) != protocol.CodeUnavailable {
				t.Fatalf("send while draining: %v, want unavailable", err)
			}
			run.say(t, "during")
			onB.waitText(t, res.MessageID, "before during")
			want := "complete"
			if finishes {
				close(run.tokens)
			} else {
				want = "interrupted"
				cancel()
			}
			if st := onB.waitDone(t, res.MessageID); st != want {
				t.Fatalf("done %q, want %q", st, want)
			}
			select {
			case err := <-drained:
				if err != nil {
					t.Fatalf("Drain: %v", err)
				}
			case <-time.After(waitLimit):
				t.Fatal("Drain did not return")
			}
			tc.waitUnlocked(t, conv.ID)
			if m := tc.message(t, res.MessageID); string(m.Status) != want || m.Content != "before during" {
				t.Fatalf("stored %q %q", m.Status, m.Content)
			}
		})
	}
}

// waitFor polls cond until it holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not happen", what)
		}
		time.Sleep(time.Millisecond) // polling, not synchronising
	}
}

// TestClusterBusDown: with the bus down, the owner's tabs keep their
// answer, followers elsewhere get an error frame and are closed so they
// reconnect, and sends are refused with unavailable. When the bus is back,
// the stream catches up: a tab resuming on another hub gets the rest and
// the done, and new answers start again.
func TestClusterBusDown(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t)
	recs := tc.startMetered(t, "A", "B")
	a, b := tc.hubs[0], tc.hubs[1]
	conv := tc.conversation(t)
	onA := tc.follow(t, a, "a1", conv.ID)
	onB := tc.follow(t, b, "b1", conv.ID)
	res := tc.send(t, a, onA, conv.ID, "hi")
	run := a.model.next(t)
	run.say(t, "one ")
	onB.waitText(t, res.MessageID, "one ")

	if n := recs[0].counts(); len(n.failed) != 0 {
		t.Fatalf("failed bus calls before the outage: %v", n.failed)
	}

	tc.mem.SetDown(true)
	onB.waitUntil(t, "error unavailable and close", func(fs []*protocol.Frame, closed protocol.CloseCode) bool {
		return closed == protocol.CloseGoingAway && countType(fs, "", protocol.TypeError) == 1
	})
	recs[1].waitFor(t, "B counts the mirror it lost", func(n busCounts) bool { return n.lost == 1 && n.mirrors == 0 })
	run.say(t, "two ")
	onA.waitText(t, res.MessageID, "one two ")
	recs[0].waitFor(t, "A counts its failed publishes", func(n busCounts) bool { return n.failed["publish answer frame"] > 0 })
	other := tc.conversation(t)
	for _, h := range tc.hubs {
		_, err := h.Send(context.Background(), nil, tc.user.ID, SendRequest{ConversationID: other.ID, Content: "x"})
		if errCode(err) != protocol.CodeUnavailable {
			t.Fatalf("send on %s with the bus down: %v, want unavailable", h.name, err)
		}
	}
	close(run.tokens)
	if st := onA.waitDone(t, res.MessageID); st != "complete" {
		t.Fatalf("owner's tab: done %q", st)
	}

	tc.mem.SetDown(false)
	tc.waitUnlocked(t, conv.ID) // the owner published the rest and released the lock
	seq := int64(len("one "))
	back := newTab(tc.user.ID, "b2")
	if err := b.Subscribe(context.Background(), back, tc.user.ID,
		SubscribeRequest{ConversationID: conv.ID, MessageID: res.MessageID, LastSeq: &seq}); err != nil {
		t.Fatal(err)
	}
	back.waitDone(t, res.MessageID)
	frames, _ := back.snapshot()
	if text, dones, err := answerOf(frames, res.MessageID, seq); err != nil || text != "two " || dones != 1 {
		t.Fatalf("resumed after the outage: %q %d %v", text, dones, err)
	}
	tc.send(t, b, back, other.ID, "works again")
	close(b.model.next(t).tokens)
}

// streamFrames is what the bus holds for an answer.
func streamFrames(c *MemCluster, messageID string) []*protocol.Frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*protocol.Frame(nil), c.stream(messageID).frames...)
}

// TestClusterRepeatedSendOnAnotherHub: a send retried on another hub (the
// first connection dropped before its ack) starts nothing new and follows
// the answer still running on the first hub, from its start.
func TestClusterRepeatedSendOnAnotherHub(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, "A", "B")
	a, b := tc.hubs[0], tc.hubs[1]
	conv := tc.conversation(t)
	req := SendRequest{ConversationID: conv.ID, Content: "hi", ClientMessageID: "retry-1"}
	first, err := a.Send(context.Background(), nil, tc.user.ID, req)
	if err != nil {
		t.Fatal(err)
	}
	run := a.model.next(t)
	run.say(t, "so far ")
	tc.waitStored(t, first.MessageID, "checkpoint", func(m persistence.Message) bool { return m.Content == "so far " })

	s := newTab(tc.user.ID, "b1")
	t.Cleanup(func() { b.Detach(s) })
	again, err := b.Send(context.Background(), s, tc.user.ID, req)
	if err != nil || again != asRepeat(first) {
		t.Fatalf("repeated send: %+v %v, want %+v", again, err, asRepeat(first))
	}
	run.say(t, "and the rest")
	close(run.tokens)
	s.waitDone(t, first.MessageID)
	frames, _ := s.snapshot()
	if text, dones, err := answerOf(frames, first.MessageID, 0); err != nil || text != "so far and the rest" || dones != 1 {
		t.Fatalf("retried tab: %q %d %v\n%s", text, dones, err, dump(frames))
	}
	select {
	case r := <-b.model.runs:
		t.Fatalf("the repeated send started an answer on B: %+v", r.req)
	default:
	}
}

// TestClusterCancelWhilePreparing: a cancel from B that reaches A while A
// holds the lock but has not started the answer yet stops the answer as
// soon as it runs; B's cancel returns after its done.
func TestClusterCancelWhilePreparing(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, "A", "B")
	a, b := tc.hubs[0], tc.hubs[1]
	conv := tc.conversation(t)
	onB := tc.follow(t, b, "b1", conv.ID)
	waiting, release := a.store.hold()
	sent := make(chan Result, 1)
	go func() {
		res, err := a.Send(context.Background(), nil, tc.user.ID, SendRequest{ConversationID: conv.ID, Content: "hi"})
		if err != nil {
			t.Error(err)
		}
		sent <- res
	}()
	<-waiting // A holds the lock; the answer is not stored yet
	cancelled := make(chan error, 1)
	go func() { cancelled <- b.Cancel(context.Background(), tc.user.ID, conv.ID) }()
	waitFor(t, "the cancel to reach A", func() bool {
		c := a.lookup(conv.ID)
		if c == nil {
			return false
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.halt != nil
	})
	release()
	res := <-sent
	if st := onB.waitDone(t, res.MessageID); st != "cancelled" {
		t.Fatalf("done %q", st)
	}
	if err := <-cancelled; err != nil {
		t.Fatal(err)
	}
	tc.waitUnlocked(t, conv.ID)
}

// TestClusterSubscribeDuringOutage: a subscribe while the bus is down
// cannot learn whether an answer runs elsewhere; the tab gets an
// unavailable error and is closed (1001) so that it reconnects and
// subscribes again, instead of staying open and blind.
func TestClusterSubscribeDuringOutage(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, "A", "B")
	b := tc.hubs[1]
	conv := tc.conversation(t)
	tc.mem.SetDown(true)
	s := newTab(tc.user.ID, "b1")
	b.Register(s)
	t.Cleanup(func() { b.Detach(s) })
	if err := b.Subscribe(context.Background(), s, tc.user.ID, SubscribeRequest{ConversationID: conv.ID}); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	s.waitUntil(t, "error unavailable and close", func(fs []*protocol.Frame, closed protocol.CloseCode) bool {
		return closed == protocol.CloseGoingAway && countType(fs, "", protocol.TypeError) == 1
	})
	tc.mem.SetDown(false)
}

// lostReplyBus is a MemBus whose next Acquire, once armed, takes the lock
// but reports the bus unavailable, as a reply lost after the bus applied
// the request.
//
// With gate set, the end the hub publishes in the background for the lock
// so left (its aborted frame) waits until a later Acquire finds that lock
// holding the conversation: the lock is then certainly still there when
// the next send comes.
type lostReplyBus struct {
	*MemBus
	armed    atomic.Bool
	gate     chan struct{}
	gateOnce sync.Once
	mu       sync.Mutex
	lost     string // the message id of the lock whose reply was lost
}

func (b *lostReplyBus) Acquire(ctx context.Context, a AnswerRef) (AnswerRef, error) {
	holder, err := b.MemBus.Acquire(ctx, a)
	if err == nil && b.armed.CompareAndSwap(true, false) {
		b.mu.Lock()
		b.lost = a.MessageID
		b.mu.Unlock()
		return AnswerRef{}, fmt.Errorf("acquire: %w: the reply was lost", ErrBusUnavailable)
	}
	if errors.Is(err, ErrLockHeld) && holder.MessageID == b.lostID() && b.gate != nil {
		b.openGate()
	}
	return holder, err
}

func (b *lostReplyBus) Publish(ctx context.Context, a AnswerRef, f *protocol.Frame) error {
	if b.gate != nil && a.MessageID == b.lostID() {
		select {
		case <-b.gate:
		case <-ctx.Done():
			return fmt.Errorf("publish: %w", ErrBusUnavailable)
		}
	}
	return b.MemBus.Publish(ctx, a, f)
}

func (b *lostReplyBus) lostID() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lost
}

func (b *lostReplyBus) openGate() { b.gateOnce.Do(func() { close(b.gate) }) }

// TestClusterLockOfARefusedSend: a send whose lock the bus took but
// reported failed is refused as unavailable; the lock it left (naming this
// instance, alive and so never orphaned, for an answer never stored)
// refuses no later send into the conversation, on this instance (which
// finds its own stale lock) or on another (the lock is given up at once),
// and that send runs to its end in the tabs of both instances.
func TestClusterLockOfARefusedSend(t *testing.T) {
	t.Parallel()
	for _, next := range []string{"A", "B"} {
		t.Run("next send on "+next, func(t *testing.T) {
			t.Parallel()
			tc := newTestCluster(t)
			var lost *lostReplyBus
			a := tc.startWith(t, "A", func(m *MemBus) Bus { lost = &lostReplyBus{MemBus: m}; return lost }, nil)
			b := tc.start(t, "B")
			conv := tc.conversation(t)
			onA := tc.follow(t, a, "a1", conv.ID)
			onB := tc.follow(t, b, "b1", conv.ID)
			if next == "A" {
				// The lock is given up in the background: held until the
				// next send finds it, that send on A finds its own stale
				// lock (before, the background end was not held, and won
				// the race on a loaded machine).
				lost.gate = make(chan struct{})
				t.Cleanup(lost.openGate)
			}
			lost.armed.Store(true)
			_, err := a.Send(context.Background(), onA, tc.user.ID, SendRequest{ConversationID: conv.ID, Content: "lost"})
			var perr *protocol.Error
			if !errors.As(err, &perr) || perr.Code != protocol.CodeUnavailable {
				t.Fatalf("the send whose lock reply was lost: %v, want unavailable", err)
			}
			sender, from := a, onA
			if next == "B" {
				sender, from = b, onB
				tc.waitUnlocked(t, conv.ID)
			} else if _, held, _ := lost.Running(context.Background(), conv.ID); !held {
				t.Fatal("the lost reply's lock is not held: the test does not test anything")
			}
			res := tc.send(t, sender, from, conv.ID, "again")
			run := sender.model.next(t)
			run.say(t, "ok")
			close(run.tokens)
			for _, s := range []*tab{onA, onB} {
				if st := s.waitDone(t, res.MessageID); st != "complete" {
					t.Fatalf("tab %s: done %q", s.id, st)
				}
			}
			tc.waitUnlocked(t, conv.ID)
		})
	}
}

// heldBus is a MemBus whose Publish of delta frames waits while held.
type heldBus struct {
	*MemBus
	mu      sync.Mutex
	gate    chan struct{} // non-nil: held
	waiting chan struct{} // a publish waits at the gate (buffered 1)
	deltas  int           // delta frames published
}

func (b *heldBus) Publish(ctx context.Context, a AnswerRef, f *protocol.Frame) error {
	if f.Type == protocol.TypeDelta {
		b.mu.Lock()
		gate := b.gate
		b.deltas++
		b.mu.Unlock()
		if gate != nil {
			select {
			case b.waiting <- struct{}{}:
			default:
			}
			select {
			case <-gate:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	return b.MemBus.Publish(ctx, a, f)
}

func (b *heldBus) hold() (release func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.gate = make(chan struct{})
	gate := b.gate
	return func() {
		b.mu.Lock()
		b.gate = nil
		b.mu.Unlock()
		close(gate)
	}
}

// startHeldAnswer starts hubs A (its bus a heldBus, its options changed
// by opts) and B, a tab on each following one conversation, and an answer
// on A whose first token "0 " reached B's tab.
func startHeldAnswer(t *testing.T, opts func(*Options)) (held *heldBus, res Result, run *scriptRun, onA, onB *tab) {
	t.Helper()
	tc := newTestCluster(t)
	a := tc.startWith(t, "A", func(m *MemBus) Bus {
		held = &heldBus{MemBus: m, waiting: make(chan struct{}, 1)}
		return held
	}, opts)
	b := tc.start(t, "B")
	conv := tc.conversation(t)
	onA = tc.follow(t, a, "a1", conv.ID)
	onB = tc.follow(t, b, "b1", conv.ID)
	res = tc.send(t, a, onA, conv.ID, "hello")
	run = a.model.next(t)
	run.say(t, "0 ")
	onB.waitText(t, res.MessageID, "0 ")
	return held, res, run, onA, onB
}

// TestClusterSlowBusMergesDeltas: while the bus is slow, the deltas waiting
// for it go out as one: a tab on another instance lags by about one
// publish, not by a queue of frames, and still gets the text byte-exact.
func TestClusterSlowBusMergesDeltas(t *testing.T) {
	t.Parallel()
	held, res, run, onA, onB := startHeldAnswer(t, nil)
	release := held.hold()
	want := "0 "
	for i := 1; i <= 10; i++ { // one delta each on A's own tab
		tok := fmt.Sprintf("%d ", i)
		want += tok
		run.say(t, tok)
		onA.waitText(t, res.MessageID, want)
	}
	<-held.waiting // the first of them waits at the gate, the rest in the outbox
	release()
	onB.waitText(t, res.MessageID, want)
	close(run.tokens)
	for _, s := range []*tab{onA, onB} {
		if st := s.waitDone(t, res.MessageID); st != "complete" {
			t.Fatalf("tab %s: done status %q", s.id, st)
		}
	}
	fa, _ := onA.snapshot()
	fb, _ := onB.snapshot()
	da, db := countType(fa, res.MessageID, protocol.TypeDelta), countType(fb, res.MessageID, protocol.TypeDelta)
	// B: the first, the one at the gate (possibly several merged), the rest merged.
	if da != 11 || db < 2 || db > 3 {
		t.Fatalf("deltas: A's tab %d (want 11), B's tab %d (want 2 or 3)\n%s", da, db, dump(fb))
	}
	if text, dones, err := answerOf(fb, res.MessageID, 0); err != nil || text != want || dones != 1 {
		t.Fatalf("B's tab: text %q dones %d err %v", text, dones, err)
	}
}

// TestClusterPublishInFlightCoalesces: a publish to the bus in flight is a
// write in flight: the deltas produced meanwhile are merged for every tab,
// so the owner's tab and a tab on another instance get the same deltas.
func TestClusterPublishInFlightCoalesces(t *testing.T) {
	t.Parallel()
	held, res, run, onA, onB := startHeldAnswer(t, func(o *Options) {
		// Without a write in flight every token goes out at once; with
		// one, they wait for the end of the answer.
		o.CoalesceInterval, o.CoalesceMinGap = time.Hour, time.Nanosecond
	})
	release := held.hold()
	run.say(t, "1 ")
	<-held.waiting // "1 " is being published
	run.say(t, "2 ", "3 ", "4 ")
	close(run.tokens)
	onA.waitDone(t, res.MessageID)
	release()
	onB.waitDone(t, res.MessageID)

	fa, _ := onA.snapshot()
	fb, _ := onB.snapshot()
	da, db := deltaData(fa, res.MessageID), deltaData(fb, res.MessageID)
	if len(da) != 3 || strings.Join(da, "\n") != strings.Join(db, "\n") {
		t.Fatalf("deltas differ or were not merged (want 3 on each tab)\nA:\n%s\nB:\n%s", strings.Join(da, "\n"), strings.Join(db, "\n"))
	}
}

// TestClusterBusDrainedSendsHeldText: text held back because the bus was
// still publishing the delta before it goes out once the bus has
// published, not when the coalescing interval (an hour here) ends, nor
// only with the answer's end.
func TestClusterBusDrainedSendsHeldText(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t)
	var held *heldBus
	a := tc.startWith(t, "A", func(m *MemBus) Bus {
		held = &heldBus{MemBus: m, waiting: make(chan struct{}, 1)}
		return held
	}, func(o *Options) { o.CoalesceInterval, o.CoalesceMinGap = time.Hour, time.Nanosecond })
	b := tc.start(t, "B")
	conv := tc.conversation(t)
	onA := tc.follow(t, a, "a1", conv.ID)
	onB := tc.follow(t, b, "b1", conv.ID)
	res := tc.send(t, a, onA, conv.ID, "hello")
	run := a.model.next(t)
	release := held.hold()
	run.say(t, "0 ")
	<-held.waiting // "0 " is being published
	run.say(t, "1 ")
	waitFor(t, `"1 " held back while the bus publishes`, func() bool {
		c := a.lookup(conv.ID)
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.gen != nil && string(c.gen.text) == "0 1 " && c.gen.queuedLocked()
	})
	release()
	onA.waitText(t, res.MessageID, "0 1 ")
	onB.waitText(t, res.MessageID, "0 1 ")
	close(run.tokens)
	onB.waitDone(t, res.MessageID)
}

// deltaData is the encoded delta frames of answer id, in order.
func deltaData(frames []*protocol.Frame, id string) []string {
	var out []string
	for _, f := range frames {
		if f.Type == protocol.TypeDelta && f.MessageID == id {
			out = append(out, string(f.Data))
		}
	}
	return out
}

// releaseGateBus is a MemBus whose Release waits for a gate and which
// signals every Acquire.
type releaseGateBus struct {
	*MemBus
	gate     chan struct{} // Release waits until it is closed
	releases chan struct{} // a Release waits (buffered 1)
	acquires chan struct{} // an Acquire was made (buffered)
}

func (b *releaseGateBus) Release(ctx context.Context, a AnswerRef) error {
	if b.gate != nil {
		select {
		case b.releases <- struct{}{}:
		default:
		}
		select {
		case <-b.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return b.MemBus.Release(ctx, a)
}

func (b *releaseGateBus) Acquire(ctx context.Context, a AnswerRef) (AnswerRef, error) {
	held, err := b.MemBus.Acquire(ctx, a)
	if b.acquires != nil {
		select {
		case b.acquires <- struct{}{}:
		default:
		}
	}
	return held, err
}

// TestClusterSendRightAfterDone: a send on B right after the done of an
// answer A ran, while A has not yet released the conversation's lock (it
// does right after publishing the done), waits for that release instead
// of being refused with generation_running.
func TestClusterSendRightAfterDone(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t)
	gate := make(chan struct{})
	onA := &releaseGateBus{gate: gate, releases: make(chan struct{}, 1)}
	a := tc.startWith(t, "A", func(m *MemBus) Bus { onA.MemBus = m; return onA }, nil)
	onB := &releaseGateBus{acquires: make(chan struct{}, 8)}
	b := tc.startWith(t, "B", func(m *MemBus) Bus { onB.MemBus = m; return onB }, nil)
	conv := tc.conversation(t)
	tabA := tc.follow(t, a, "a1", conv.ID)
	tabB := tc.follow(t, b, "b1", conv.ID)

	first := tc.send(t, a, tabA, conv.ID, "first")
	run := a.model.next(t)
	run.say(t, "one")
	close(run.tokens)
	tabB.waitDone(t, first.MessageID)
	select { // A published the done and is about to release the lock
	case <-onA.releases:
	case <-time.After(waitLimit):
		t.Fatal("A does not release the lock")
	}
	for len(onB.acquires) > 0 {
		<-onB.acquires
	}

	type result struct {
		res Result
		err error
	}
	got := make(chan result, 1)
	go func() {
		res, err := b.Send(context.Background(), tabB, tc.user.ID, SendRequest{ConversationID: conv.ID, Content: "second"})
		got <- result{res, err}
	}()
	for range 2 { // B found the lock held, saw the answer ended, and tries again
		select {
		case r := <-got:
			t.Fatalf("the send returned before the lock was released: %+v %v", r.res, r.err)
		case <-onB.acquires:
		case <-time.After(waitLimit):
			t.Fatal("B does not try to take the lock")
		}
	}
	close(gate)
	r := <-got
	if r.err != nil {
		t.Fatalf("send after the release: %v", r.err)
	}
	next := b.model.next(t)
	close(next.tokens)
	if st := tabB.waitDone(t, r.res.MessageID); st != "complete" {
		t.Fatalf("second answer ended %q", st)
	}
}

// TestCallContext: every call gets at least busTimeout and at most twice
// that; one context serves the calls until less is left, the one it
// replaces is released, and the parent's end ends it.
func TestCallContext(t *testing.T) {
	t.Parallel()
	parent, cancelParent := context.WithCancel(context.Background())
	defer cancelParent()
	var cc callContext
	t0 := time.Now()
	first := cc.get(parent, t0)
	steps := []struct {
		after time.Duration
		same  bool // the context of the call before serves this one
	}{
		{0, true},
		{busTimeout / 2, true},
		{busTimeout, true},
		{busTimeout + time.Millisecond, false},
		{busTimeout + 2*time.Millisecond, true},
	}
	prev := first
	for i, s := range steps {
		now := t0.Add(s.after)
		ctx := cc.get(parent, now)
		if (ctx == prev) != s.same {
			t.Fatalf("step %d (+%s): same context %v, want %v", i, s.after, ctx == prev, s.same)
		}
		dl, ok := ctx.Deadline()
		if !ok || dl.Sub(now) < busTimeout || dl.Sub(now) > 2*busTimeout {
			t.Fatalf("step %d (+%s): deadline %s after the call, want between %s and %s", i, s.after, dl.Sub(now), busTimeout, 2*busTimeout)
		}
		if !s.same && prev.Err() == nil {
			t.Fatalf("step %d: the context replaced was not released", i)
		}
		prev = ctx
	}
	cancelParent()
	if prev.Err() == nil {
		t.Fatal("the parent's end did not end the call context")
	}
	cc.release()
	if cc.ctx != nil {
		t.Fatal("release kept the context")
	}
}

// TestClusterSubscribeCutDuringLookup: a subscribe whose connection
// closes while it looks up the answer running elsewhere (its context
// cancelled) is not a bus failure: the tab is told nothing more and
// nothing is logged, where it used to get an unavailable error, a 1001
// and a warning that read like an outage.
func TestClusterSubscribeCutDuringLookup(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, "A")
	var logged warnCounter
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b := tc.startWith(t, "B", func(m *MemBus) Bus { return &cutLookupBus{MemBus: m, cut: cancel} },
		func(o *Options) { o.Logger = slog.New(&logged) })
	conv := tc.conversation(t)
	s := newTab(tc.user.ID, "b1")
	b.Register(s)
	t.Cleanup(func() { b.Detach(s) })
	if err := b.Subscribe(ctx, s, tc.user.ID, SubscribeRequest{ConversationID: conv.ID}); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	frames, closed := s.snapshot()
	if len(frames) != 1 || frames[0].Type != protocol.TypeAck || closed != 0 || logged.n.Load() != 0 {
		t.Fatalf("closed %d, %d warnings, frames:\n%s", closed, logged.n.Load(), dump(frames))
	}
}

// cutLookupBus is a MemBus whose lookups of a running answer end the
// caller's context first, as a connection closing during the lookup.
type cutLookupBus struct {
	*MemBus
	cut context.CancelFunc
}

func (b *cutLookupBus) Running(ctx context.Context, _ string) (AnswerRef, bool, error) {
	b.cut()
	<-ctx.Done()
	return AnswerRef{}, false, fmt.Errorf("read lock: %w: %w", ErrBusUnavailable, ctx.Err())
}

// warnCounter is a slog handler counting the records at Warn and above.
type warnCounter struct{ n atomic.Int64 }

func (w *warnCounter) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (w *warnCounter) Handle(context.Context, slog.Record) error    { w.n.Add(1); return nil }
func (w *warnCounter) WithAttrs([]slog.Attr) slog.Handler           { return w }
func (w *warnCounter) WithGroup(string) slog.Handler                { return w }
