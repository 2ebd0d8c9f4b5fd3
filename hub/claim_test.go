package hub

import (
	"context"
	"errors"
	"testing"
	"time"

	"chatd/hub/protocol"
	"chatd/persistence"
)

// heldClaims is a member's bus whose Claims wait at a gate: the test acts
// between the orphan report and the claim, as when the claiming instance
// is slow or cut off right after it saw the orphan.
type heldClaims struct {
	*MemBus
	claiming chan AnswerRef // the orphan of each Claim, before it is made
	proceed  chan struct{}  // closed by the test to let Claims go on
	results  chan error     // each Claim's error, after it was made
}

func holdClaims(m *MemBus) *heldClaims {
	return &heldClaims{MemBus: m, claiming: make(chan AnswerRef, 4), proceed: make(chan struct{}),
		results: make(chan error, 4)}
}

func (h *heldClaims) Claim(ctx context.Context, orphan AnswerRef) (AnswerRef, error) {
	h.claiming <- orphan
	select {
	case <-h.proceed:
	case <-ctx.Done():
		return AnswerRef{}, ctx.Err()
	}
	mine, err := h.MemBus.Claim(ctx, orphan)
	h.results <- err
	return mine, err
}

// TestClusterClaimAfterOwnerRenewed: A's lease expires mid-answer and B is
// told, but A renews its lease (a split that healed) before B's Claim is
// made. The claim must fail: A keeps its answer, which ends complete for
// every follower, with no interrupted end in the store or the stream.
// (Claim was a plain compare-and-swap of the lock: B ended A's live answer
// as interrupted.)
func TestClusterClaimAfterOwnerRenewed(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t)
	a := tc.start(t, "A")
	var held *heldClaims
	b := tc.startWith(t, "B", func(m *MemBus) Bus { held = holdClaims(m); return held }, nil)
	conv := tc.conversation(t)
	onB := tc.follow(t, b, "b1", conv.ID)
	res := tc.send(t, a, nil, conv.ID, "hi")
	run := a.model.next(t)
	run.say(t, "before ")
	onB.waitText(t, res.MessageID, "before ")

	tc.mem.Crash("A") // B sees A's lease expired and starts a take-over
	var orphan AnswerRef
	select {
	case orphan = <-held.claiming:
	case <-time.After(waitLimit):
		t.Fatal("B never claimed the orphaned answer")
	}
	if orphan.MessageID != res.MessageID || orphan.Instance != "A" {
		t.Fatalf("B claims %+v, want A's answer %s", orphan, res.MessageID)
	}
	tc.mem.Rejoin("A") // A renews its lease before the claim lands
	close(held.proceed)
	if err := waitResult(t, held.results); !errors.Is(err, ErrLockHeld) {
		t.Fatalf("the claim of a live owner's answer: %v, want ErrLockHeld", err)
	}

	run.say(t, "after")
	close(run.tokens)
	if st := onB.waitDone(t, res.MessageID); st != "complete" {
		t.Fatalf("follower on B: done %q, want complete", st)
	}
	stored := tc.message(t, res.MessageID)
	if stored.Status != persistence.StatusComplete || stored.Content != "before after" {
		t.Fatalf("stored %q %q, want complete %q", stored.Status, stored.Content, "before after")
	}
	tc.waitUnlocked(t, conv.ID)
	frames := streamFrames(tc.mem, res.MessageID)
	if d, s := countType(frames, res.MessageID, protocol.TypeDone), countType(frames, res.MessageID, FrameStored); d != 1 || s != 0 {
		t.Fatalf("the answer's stream has %d done and %d stored frames, want 1 and 0\n%s", d, s, dump(frames))
	}
}

// waitResult returns the next error sent on results.
func waitResult(t *testing.T, results <-chan error) error {
	t.Helper()
	select {
	case err := <-results:
		return err
	case <-time.After(waitLimit):
		t.Fatal("no result came")
		return nil
	}
}

// releaseLog is a member's bus that records the refs it is asked to release.
type releaseLog struct {
	*MemBus
	released chan AnswerRef
}

func (r *releaseLog) Release(ctx context.Context, a AnswerRef) error {
	err := r.MemBus.Release(ctx, a)
	select {
	case r.released <- a:
	default:
	}
	return err
}

// wait returns the first ref released for answer id.
func (r *releaseLog) wait(t *testing.T, id string) AnswerRef {
	t.Helper()
	deadline := time.After(waitLimit)
	for {
		select {
		case got := <-r.released:
			if got.MessageID == id {
				return got
			}
		case <-deadline:
			t.Fatalf("answer %s was never released", id)
			return AnswerRef{}
		}
	}
}

// TestClusterClaimedPublisherReleases: when the publisher of an answer
// that another instance claimed (A cut off, then back) finds the lock no
// longer names it, it stops without publishing and releases the answer:
// the release leaves the claimant's lock alone and lets the bus drop what
// it kept to publish the answer (natsbus kept it for good before:
// TestPublishClaimedAnswerForgotten).
func TestClusterClaimedPublisherReleases(t *testing.T) {
	t.Parallel()
	tc := newTestCluster(t)
	rel := &releaseLog{released: make(chan AnswerRef, 8)}
	a := tc.startWith(t, "A", func(m *MemBus) Bus { rel.MemBus = m; return rel }, nil)
	b := tc.start(t, "B")
	conv := tc.conversation(t)
	onB := tc.follow(t, b, "b1", conv.ID)
	res := tc.send(t, a, nil, conv.ID, "hi")
	run := a.model.next(t)
	run.say(t, "kept ")
	onB.waitText(t, res.MessageID, "kept ")
	tc.waitStored(t, res.MessageID, "checkpoint", func(m persistence.Message) bool { return m.Content == "kept " })

	tc.mem.Crash("A")
	if st := onB.waitDone(t, res.MessageID); st != "interrupted" {
		t.Fatalf("follower on B: done %q, want interrupted", st)
	}
	tc.mem.Rejoin("A")
	run.say(t, "late ") // its checkpoint is refused: A ends the answer and finds it claimed
	if got := rel.wait(t, res.MessageID); got.Instance != "A" {
		t.Fatalf("A released %+v, want its own answer", got)
	}
	frames := streamFrames(tc.mem, res.MessageID)
	if n := countType(frames, res.MessageID, protocol.TypeDone); n != 1 {
		t.Fatalf("the answer's stream has %d done frames, want the claimant's only\n%s", n, dump(frames))
	}
	tc.waitUnlocked(t, conv.ID)
}
