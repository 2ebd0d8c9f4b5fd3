package hub

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"chatd/hub/protocol"
	"chatd/persistence"
)

// TestClusterFollowAfterFramesDropped: the bus discarded the first frames
// of an answer running on A (its limits reached) before tabs on B and C
// began to follow it. B's tab, following the conversation, still gets the
// answer from its start, and a tab resuming on C from a cursor in the
// lost part gets exactly the rest: the text before the first frame kept
// comes from the store's checkpoint. Before, the first frame kept did not
// continue the (empty) mirrored text, and the tabs were failed, to
// reconnect and fail again until the answer ended.
func TestClusterFollowAfterFramesDropped(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name          string
		before, after []string // tokens before the drop and after it ("think:x" is reasoning)
		// stored is what the checkpoint holds when B starts following
		// (the frames after the drop read by then, besides).
		storedText, storedReasoning string
		followAfter                 bool // B follows once every token was said (else before the rest)
		text, reasoning             string
		resumeAt                    int64 // C resumes from this text cursor (-1: no tab on C)
	}{
		{name: "text", before: []string{"one ", "twö ", "three "}, after: []string{"four ", "fïve"},
			storedText: "one twö three ", text: "one twö three four fïve", resumeAt: int64(len("one "))},
		{name: "inside the reasoning", before: []string{"think:ab", "think:cd"}, after: []string{"think:ef", "x ", "y"},
			storedReasoning: "abcd", reasoning: "abcdef", text: "x y", resumeAt: -1},
		{name: "reasoning held already", before: []string{"think:ab", "x "}, after: []string{"y ", "think:c"},
			storedText: "x y ", storedReasoning: "abc", followAfter: true, reasoning: "abc", text: "x y ", resumeAt: -1},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tc := newTestCluster(t, "A")
			recs := tc.startMetered(t, "B", "C")
			a, b, c := tc.hubs[0], tc.hubs[1], tc.hubs[2]
			conv := tc.conversation(t)
			res := tc.send(t, a, nil, conv.ID, "hi")
			run := a.model.next(t)
			run.say(t, tt.before...)
			stored := func(text, reasoning string) {
				tc.waitStored(t, res.MessageID, "checkpoint", func(m persistence.Message) bool {
					return m.Content == text && m.Reasoning == reasoning
				})
			}
			soFar, thoughtSoFar := said(tt.before)
			waitPublished(t, tc.mem, res.MessageID, soFar, thoughtSoFar)
			stored(soFar, thoughtSoFar)
			tc.mem.DropOldest(res.MessageID, len(streamFrames(tc.mem, res.MessageID)))

			var onB, onC *tab
			follow := func() {
				onB = tc.follow(t, b, "b1", conv.ID)
				if tt.resumeAt >= 0 {
					onC = newTab(tc.user.ID, "c1")
					t.Cleanup(func() { c.Detach(onC) })
					if err := c.Subscribe(context.Background(), onC, tc.user.ID, SubscribeRequest{ConversationID: conv.ID,
						MessageID: res.MessageID, LastSeq: &tt.resumeAt}); err != nil {
						t.Fatal(err)
					}
				}
			}
			if !tt.followAfter {
				follow()
			}
			run.say(t, tt.after...)
			if tt.followAfter {
				waitPublished(t, tc.mem, res.MessageID, tt.storedText, tt.storedReasoning)
				stored(tt.storedText, tt.storedReasoning)
				follow()
			}
			close(run.tokens)
			checkWhole(t, onB, res.MessageID, 0, tt.text, tt.reasoning)
			checkWhole(t, onC, res.MessageID, tt.resumeAt, tt.text, tt.reasoning)
			tc.waitUnlocked(t, conv.ID)
			if m := tc.message(t, res.MessageID); m.Content != tt.text || m.Reasoning != tt.reasoning {
				t.Fatalf("stored %q %q", m.Content, m.Reasoning)
			}
			// Each hub that mirrored the answer counted it once.
			wantC := 0
			if onC != nil {
				wantC = 1
			}
			if gb, gc := recs[0].counts().fromStore, recs[1].counts().fromStore; gb != 1 || gc != wantC {
				t.Fatalf("mirrors from the store: B %d, C %d; want 1, %d", gb, gc, wantC)
			}
		})
	}
}

// checkWhole waits for the done of answer id on tab (nil: none) and checks
// that the tab got it complete, from text cursor from on, each byte once,
// with one done, no error and no close; one that followed from the start
// (from 0) also got its reasoning and one message frame.
func checkWhole(t *testing.T, tab *tab, id string, from int64, text, reasoning string) {
	t.Helper()
	if tab == nil {
		return
	}
	if st := tab.waitDone(t, id); st != "complete" {
		t.Fatalf("tab %s: done status %q", tab.id, st)
	}
	frames, closed := tab.snapshot()
	got, dones, err := answerOf(frames, id, from)
	r, rerr := reasoningOf(frames, id, 0)
	if err != nil || rerr != nil || got != text[from:] || dones != 1 || closed != 0 || countType(frames, "", protocol.TypeError) != 0 {
		t.Fatalf("tab %s: text %q (%v) dones %d closed %d\n%s", tab.id, got, err, dones, closed, dump(frames))
	}
	if from == 0 && (r != reasoning || countType(frames, id, protocol.TypeMessage) != 1) {
		t.Fatalf("tab %s: reasoning %q (%v), %d message frames\n%s", tab.id, r, rerr, countType(frames, id, protocol.TypeMessage), dump(frames))
	}
}

// waitPublished waits until the bus holds answer id's frames up to text
// and reasoning of those lengths.
func waitPublished(t *testing.T, c *MemCluster, id, text, reasoning string) {
	t.Helper()
	waitFor(t, "frames published", func() bool {
		fs := streamFrames(c, id)
		return len(fs) > 0 && lastSeqs(t, fs) == [2]int64{int64(len(text)), int64(len(reasoning))}
	})
}

// lastSeqs returns the text and reasoning lengths after the last of
// frames, an answer's stream.
func lastSeqs(t *testing.T, frames []*protocol.Frame) (seqs [2]int64) {
	t.Helper()
	for _, f := range frames {
		switch f.Type {
		case protocol.TypeDelta:
			seqs[0] = f.Seq
		case protocol.TypeReasoning:
			rseq, _, err := reasoningOfFrame(f)
			if err != nil {
				t.Fatal(err)
			}
			seqs[0], seqs[1] = f.Seq, rseq
		}
	}
	return seqs
}

// TestClusterFollowAfterFramesDroppedNoCheckpoint: when the store has no
// checkpoint reaching the first frame the bus kept within HoleWait, a tab
// following on B
// is told the answer cannot be shown from there and its connection is
// closed to reconnect (it reloads the stored answer), as for any stream
// that does not continue; the answer itself ends complete on A.
func TestClusterFollowAfterFramesDroppedNoCheckpoint(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t, "A")
	rec := newBusMetricsRecorder()
	a := tc.hubs[0]
	b := tc.startWith(t, "B", nil, func(o *Options) {
		o.Metrics = rec
		o.HoleWait = 50 * time.Millisecond // the checkpoint waited for never comes
	})
	conv := tc.conversation(t)
	release := a.store.holdUpdates()
	defer release()
	res := tc.send(t, a, nil, conv.ID, "hi")
	run := a.model.next(t)
	run.say(t, "one ", "two ")
	waitPublished(t, tc.mem, res.MessageID, "one two ", "")
	tc.mem.DropOldest(res.MessageID, len(streamFrames(tc.mem, res.MessageID)))
	onB := tc.follow(t, b, "b1", conv.ID)
	run.say(t, "three")
	onB.waitUntil(t, "error and close", func(fs []*protocol.Frame, closed protocol.CloseCode) bool {
		return countType(fs, "", protocol.TypeError) == 1 && closed == protocol.CloseGoingAway
	})
	release()
	close(run.tokens)
	tc.waitUnlocked(t, conv.ID)
	if m := tc.message(t, res.MessageID); m.Status != persistence.StatusComplete || m.Content != "one two three" {
		t.Fatalf("stored %q %q", m.Status, m.Content)
	}
	if n := rec.counts().fromStore; n != 0 {
		t.Fatalf("%d mirrors counted as begun from the store", n)
	}
}

// TestClusterFollowAcrossDroppedFrames: a tab on B follows an answer
// running on A; B's follow falls behind while the bus discards the frames
// it has not read (its limits reached). When B reads again, the frame it
// finds begins past what its tabs have: the hole is filled from the
// store's checkpoint, and the tab that followed from the start as well as
// one that resumed on B at a cursor inside the hole get the answer byte
// for byte, with one done and no close. Before, both were sent an error
// and closed to reconnect.
func TestClusterFollowAcrossDroppedFrames(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name                  string
		before, during, after []string // "think:x" is reasoning; during is discarded unread
		end                   bool     // the answer ends while B is behind (only its done is kept)
		resumeAt              int64    // a second tab on B resumes here while B is behind (-1: none)
		text, reasoning       string
	}{
		{name: "text", before: []string{"one "}, during: []string{"twö ", "three "}, after: []string{"four"},
			resumeAt: int64(len("one tw")), text: "one twö three four"},
		{name: "reasoning and text", before: []string{"think:ab"}, during: []string{"think:cd", "x "}, after: []string{"think:e", "y"},
			resumeAt: -1, reasoning: "abcde", text: "x y"},
		{name: "only the done kept", before: []string{"one "}, during: []string{"two ", "three"}, end: true,
			resumeAt: int64(len("one ")), text: "one two three"},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tc := newTestCluster(t, "A")
			rec := tc.startMetered(t, "B")[0]
			a, b := tc.hubs[0], tc.hubs[1]
			conv := tc.conversation(t)
			res := tc.send(t, a, nil, conv.ID, "hi")
			run := a.model.next(t)
			onB := tc.follow(t, b, "b1", conv.ID)
			run.say(t, tt.before...)
			text, reasoning := said(tt.before)
			onB.waitUntil(t, "the first tokens", func(fs []*protocol.Frame, _ protocol.CloseCode) bool {
				got, _, _ := answerOf(fs, res.MessageID, 0)
				r, _ := reasoningOf(fs, res.MessageID, 0)
				return got == text && r == reasoning
			})

			resume := tc.mem.PauseFollows("B")
			var resumed *tab
			if tt.resumeAt >= 0 {
				resumed = newTab(tc.user.ID, "b2")
				t.Cleanup(func() { b.Detach(resumed) })
				if err := b.Subscribe(context.Background(), resumed, tc.user.ID, SubscribeRequest{ConversationID: conv.ID,
					MessageID: res.MessageID, LastSeq: &tt.resumeAt}); err != nil {
					t.Fatal(err)
				}
			}
			run.say(t, tt.during...)
			dt, dr := said(tt.during)
			text, reasoning = text+dt, reasoning+dr
			keep := 0
			if tt.end {
				close(run.tokens)
				tc.waitUnlocked(t, conv.ID)
				keep = 1
			}
			waitPublished(t, tc.mem, res.MessageID, text, reasoning)
			tc.waitStored(t, res.MessageID, "checkpoint", func(m persistence.Message) bool {
				return m.Content == text && m.Reasoning == reasoning
			})
			tc.mem.DropOldest(res.MessageID, len(streamFrames(tc.mem, res.MessageID))-keep)
			resume()
			if !tt.end {
				run.say(t, tt.after...)
				close(run.tokens)
			}

			checkWhole(t, onB, res.MessageID, 0, tt.text, tt.reasoning)
			checkWhole(t, resumed, res.MessageID, tt.resumeAt, tt.text, tt.reasoning)
			if n := rec.counts().fromStore; n != 1 {
				t.Fatalf("B took an answer's text from the store %d times, want 1", n)
			}
		})
	}
}

// said splits the tokens a test model says into text and reasoning
// ("think:" tokens).
func said(tokens []string) (text, reasoning string) {
	for _, tok := range tokens {
		if r, ok := strings.CutPrefix(tok, "think:"); ok {
			reasoning += r
		} else {
			text += tok
		}
	}
	return text, reasoning
}

// TestFillFromStore: what a mirror takes from the store for the hole
// before the next frame, and when it takes nothing (the frame then fails
// the followers, except a done, which is delivered as it is).
func TestFillFromStore(t *testing.T) {
	t.Parallel()
	delta := func(seq int64, text string) *protocol.Frame { return protocol.Delta("c1", "m1", seq, text) }
	done := func(text string) *protocol.Frame {
		return protocol.Done(persistence.Message{ID: "m1", ConversationID: "c1", Content: text, Status: persistence.StatusComplete}, nil)
	}
	cases := []struct {
		name            string
		have            string          // the mirror's text so far
		noMessage       bool            // the mirror has no message frame (else it has)
		stored          string          // the store's checkpoint
		next            *protocol.Frame // the frame after the hole
		filled          string          // the text the hole was filled with ("": none)
		failed          bool            // the followers were told to reconnect
		text            string          // the mirror's text after next
		wantDone, count bool            // a done was delivered; the hole counted as filled
	}{
		{name: "filled", have: "one ", stored: "one two three ", next: delta(18, "four"),
			filled: "two three ", text: "one two three four", count: true},
		{name: "checkpoint behind", have: "one ", stored: "one two ", next: delta(18, "four"),
			failed: true, text: "one "},
		{name: "stored text differs", have: "one ", stored: "uno two three ", next: delta(18, "four"),
			failed: true, text: "one "},
		{name: "done past the text", have: "one ", stored: "one two", next: done("one two"),
			filled: "two", text: "one two", wantDone: true, count: true},
		{name: "message frame lost", noMessage: true, stored: "one ", next: delta(4, "one "),
			text: "one ", count: true},
		{name: "done, store behind", have: "one ", stored: "one ", next: done("one two"),
			text: "one ", wantDone: true},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := newMemStore()
			cv := persistence.Conversation{OwnerID: "u1"}
			if err := st.CreateConversation(context.Background(), &cv); err != nil {
				t.Fatal(err)
			}
			if err := st.InsertMessage(context.Background(), &persistence.Message{ID: "m1", OwnerID: "u1", ConversationID: cv.ID,
				Role: persistence.RoleAssistant, Content: tt.stored, Status: persistence.StatusStreaming}); err != nil {
				t.Fatal(err)
			}
			rec := &busMetricsRecorder{}
			h := &Hub{opts: Options{Store: st, Metrics: nopMetrics{}}, log: slog.New(slog.DiscardHandler),
				cluster: newCluster(NewLocalBus(), nopMetrics{})}
			h.busm = rec
			c := &conv{id: "c1", owner: "u1"}
			sub := newTab("u1", "t1")
			c.subs.add(sub)
			m := &mirror{h: h, conv: c, ref: AnswerRef{ConversationID: "c1", MessageID: "m1", UserID: "u1"}, cancel: func() {},
				text: []byte(tt.have)}
			if !tt.noMessage {
				m.message = protocol.Message(persistence.Message{ID: "m1", ConversationID: "c1"})
			}
			c.remote = m
			if !m.onFrame(tt.next, false) {
				t.Fatal("the frame after the hole was applied without the store")
			}
			m.fillFromStore(context.Background(), tt.next)
			if m.onFrame(tt.next, true) {
				t.Fatal("a hole reported once the store was asked")
			}
			frames, closed := sub.snapshot()
			var filled string
			if len(frames) > 0 && frames[0].Type == protocol.TypeDelta {
				filled = field(t, frames[0], "text")
			}
			if filled != tt.filled || (closed != 0) != tt.failed || string(m.text) != tt.text ||
				(countType(frames, "m1", protocol.TypeDone) == 1) != tt.wantDone || (rec.counts().fromStore == 1) != tt.count {
				t.Fatalf("filled %q, closed %d, text %q, counted %d\n%s", filled, closed, m.text, rec.counts().fromStore, dump(frames))
			}
			if tt.noMessage && (len(frames) == 0 || frames[0].Type != protocol.TypeMessage || countType(frames, "m1", protocol.TypeMessage) != 1) {
				t.Fatalf("no message frame first\n%s", dump(frames))
			}
		})
	}
}

// gapBus is a member's bus that refuses for good (ErrRefused) the delta
// frames whose text has marker, as natsbus refuses a frame larger than
// the stream keeps, and closes refused at the first.
type gapBus struct {
	*MemBus
	marker  string
	refused chan struct{}
	once    sync.Once
}

func (g *gapBus) Publish(ctx context.Context, a AnswerRef, f *protocol.Frame) error {
	if f.Type == protocol.TypeDelta && strings.Contains(string(f.Data), g.marker) {
		g.once.Do(func() { close(g.refused) })
		return fmt.Errorf("test bus: frame of %s: %w", f.MessageID, ErrRefused)
	}
	return g.MemBus.Publish(ctx, a, f)
}

// messageReads is an instance's store that tells each read of a message
// to reads, once armed.
type messageReads struct {
	*gateStore
	reads atomic.Pointer[chan struct{}]
}

func (s *messageReads) Message(ctx context.Context, ownerID, id string) (persistence.Message, error) {
	m, err := s.gateStore.Message(ctx, ownerID, id)
	if ch := s.reads.Load(); ch != nil {
		select {
		case *ch <- struct{}{}:
		default:
		}
	}
	return m, err
}

// TestClusterRefusedFrameMidAnswer: the bus refused a delta in the middle
// of an answer running on A (larger than it carries), so B's mirror finds
// the next delta beginning past its text while A's last checkpoint is
// still behind that delta (checkpoints come a few hundred milliseconds
// apart). B waits for the checkpoint that fills the hole, and its tab
// gets the answer byte for byte with one done and no close. Before, the
// first read of the store was behind, and B's tab was sent an error and
// closed to reconnect, at each refused frame.
func TestClusterRefusedFrameMidAnswer(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t)
	bus := &gapBus{marker: "REFUSED", refused: make(chan struct{})}
	a := tc.startWith(t, "A", func(m *MemBus) Bus { bus.MemBus = m; return bus }, nil)
	var reads *messageReads
	b := tc.startWith(t, "B", nil, func(o *Options) {
		reads = &messageReads{gateStore: o.Store.(*gateStore)}
		o.Store = reads
	})
	conv := tc.conversation(t)
	onB := tc.follow(t, b, "b1", conv.ID)
	res := tc.send(t, a, nil, conv.ID, "hi")
	run := a.model.next(t)
	run.say(t, "first ")
	onB.waitText(t, res.MessageID, "first ")
	tc.waitStored(t, res.MessageID, "first checkpoint", func(m persistence.Message) bool { return m.Content == "first " })

	release := a.store.holdUpdates() // A's next checkpoints wait
	defer release()
	run.say(t, "REFUSED ")
	<-bus.refused
	read := make(chan struct{}, 1)
	reads.reads.Store(&read)
	run.say(t, "last")
	select {
	case <-read: // B read the store for the hole: the checkpoint is behind
	case <-time.After(waitLimit):
		t.Fatal("B did not read the store for the hole")
	}
	release()
	close(run.tokens)
	checkWhole(t, onB, res.MessageID, 0, "first REFUSED last", "")
}

// TestFillFromStoreInPieces: a hole that is most of a long answer is
// filled as a catch-up is, in frames of at most catchUpPiece bytes of
// whole characters with contiguous seqs, so that each reaches a slow
// follower within its write deadline; before, the hole went as one frame.
func TestFillFromStoreInPieces(t *testing.T) {
	t.Parallel()
	stored := strings.Repeat("ab中é🙂", 5000) // 60,000 bytes of 1- to 4-byte characters
	st := newMemStore()
	cv := persistence.Conversation{OwnerID: "u1"}
	if err := st.CreateConversation(context.Background(), &cv); err != nil {
		t.Fatal(err)
	}
	if err := st.InsertMessage(context.Background(), &persistence.Message{ID: "m1", OwnerID: "u1", ConversationID: cv.ID,
		Role: persistence.RoleAssistant, Content: stored, Status: persistence.StatusStreaming}); err != nil {
		t.Fatal(err)
	}
	h := &Hub{opts: Options{Store: st, Metrics: nopMetrics{}}, log: slog.New(slog.DiscardHandler),
		cluster: newCluster(NewLocalBus(), nopMetrics{})}
	h.busm = &busMetricsRecorder{}
	c := &conv{id: "c1", owner: "u1"}
	sub := newTab("u1", "t1")
	c.subs.add(sub)
	m := &mirror{h: h, conv: c, ref: AnswerRef{ConversationID: "c1", MessageID: "m1", UserID: "u1"}, cancel: func() {},
		text: []byte(stored[:2])}
	m.message = protocol.Message(persistence.Message{ID: "m1", ConversationID: "c1"})
	c.remote = m
	next := protocol.Delta("c1", "m1", int64(len(stored))+4, "four")
	if !m.onFrame(next, false) {
		t.Fatal("the frame after the hole was applied without the store")
	}
	m.fillFromStore(context.Background(), next)
	frames, _ := sub.snapshot()
	filled, at, pieces := "", int64(2), 0
	for _, f := range frames {
		if f.Type != protocol.TypeDelta {
			continue
		}
		text := field(t, f, "text")
		if f.Seq != at+int64(len(text)) || len(text) > catchUpPiece || !utf8.ValidString(text) {
			t.Fatalf("piece %d: seq %d after %d with %d bytes (valid UTF-8: %v)", pieces, f.Seq, at, len(text), utf8.ValidString(text))
		}
		filled, at = filled+text, f.Seq
		pieces++
	}
	if pieces < 2 || filled != stored[2:] || string(m.text) != stored {
		t.Fatalf("%d pieces filled %d bytes (the hole: %d), the mirror holds %d", pieces, len(filled), len(stored)-2, len(m.text))
	}
}
