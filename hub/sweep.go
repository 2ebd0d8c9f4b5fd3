package hub

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"chatd/persistence"
)

// The sweep of answers left streaming. A single process also ends them
// all at start (persistence.Messages.InterruptStreaming, which in a
// cluster would end the other instances' live answers); its sweep ends
// those that start could not (the store refused writes: a full disk) and
// those whose end was dropped while it runs.
//
// Nothing else ends an answer row that stays streaming with no lock
// naming it: its final write failed and its late end (lateEnds) was
// dropped, or still waited when its instance stopped or crashed, or its
// send's insert was reported failed but applied (unstarted) and its
// instance stopped before the store answered again (its lock was given up
// at once, abortLock, so no lease expiry leads another instance to it).
// Every SweepInterval (jittered) each instance asks the store for the
// rows streaming whose last checkpoint is older than SweepAge, in pages
// of sweepBatch, and for each asks the bus who runs its conversation: a
// lock that names the row is a live answer (one thinking silently for
// minutes writes nothing) or one being taken over (Orphaned), and is left
// alone; otherwise the row is marked interrupted (InterruptMessage, which
// changes only a message still streaming, so that an answer ended
// meanwhile, by its owner's late end or another instance's sweep, keeps
// its end: the store's first final write wins). Several instances may
// sweep the same row at once; only the first write changes it.
//
// It publishes nothing: every lock of an answer is released after the
// last frame of its stream (its done, or FrameAborted for one that never
// started), so a row no lock names has no follower left waiting for a
// done. (When the bus lost its data, NATS restarted without its store,
// the followers were told to reconnect, and read the row as stored.)

// sweepBatch is how many rows one store call of the sweep returns, and
// sweepPassMax how many one pass looks at: the rest wait for the next.
const (
	sweepBatch   = 100
	sweepPassMax = 1000
)

// sweptReason is the error stored with an answer the sweep ends.
const sweptReason = "The answer stopped without its end being saved; the text so far is kept."

// StreamingFinder is the store call that finds the answers left streaming
// (persistence.Messages.StreamingBefore). The hub sweeps for them, in a
// single process too, when Store implements it and MessageInterrupter
// (persistence/sqlite and persistence/mongo do).
type StreamingFinder interface {
	StreamingBefore(ctx context.Context, before time.Time, after persistence.StreamingMessage, limit int) ([]persistence.StreamingMessage, error)
}

// sweepHooks are set by tests before Run: now is the sweep's clock
// (time.Now when nil), after its wait between passes (time.After when
// nil), and passed, when set, is called as each pass ends with how many
// answers it ended and its error.
type sweepHooks struct {
	now    func() time.Time
	after  func(d time.Duration) <-chan time.Time
	passed func(ended int, err error)
}

// defaultSweepAge is Options.SweepAge's default: longer than any answer
// runs (MaxDuration, then its final write), so that a row is never older
// than that while its answer lives, whatever the bus says; and a few
// minutes at least.
func defaultSweepAge(o Options) time.Duration {
	return max(5*time.Minute, o.MaxDuration+o.FinishTimeout+time.Minute)
}

// runSweep starts the sweep of answers left streaming on a goroutine that ends with ctx or the hub's bus work (Shutdown); the
// returned wait waits for it.
func (h *Hub) runSweep(ctx context.Context) (wait func()) {
	find, ok1 := h.opts.Store.(StreamingFinder)
	in, ok2 := h.opts.Store.(MessageInterrupter)
	if !ok1 || !ok2 {
		if !h.solo {
			h.log.Error("the store cannot find or end answers left streaming: in this cluster, an answer whose end could not be stored may stay streaming")
		}
		return func() {}
	}
	var wg sync.WaitGroup
	wg.Go(func() { h.sweepLoop(ctx, find, in) })
	return wg.Wait
}

// sweepLoop runs a pass every SweepInterval, jittered by a quarter either
// way so that instances started together do not sweep together, until
// ctx or the bus work ends.
func (h *Hub) sweepLoop(ctx context.Context, find StreamingFinder, in MessageInterrupter) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(h.busCtx, cancel)()
	after := h.sweep.after
	if after == nil {
		after = time.After
	}
	every := h.opts.SweepInterval
	for {
		select {
		case <-ctx.Done():
			return
		case <-after(every*3/4 + rand.N(every/2+1)):
		}
		ended, err := h.sweepPass(ctx, find, in)
		switch {
		case err != nil && ctx.Err() == nil:
			h.log.Warn("sweep of answers left streaming failed; trying again at the next", "ended", ended, "err", err)
		case ended > 0:
			h.log.Warn("answers left streaming with nothing to end them marked interrupted", "count", ended)
		}
		if h.sweep.passed != nil {
			h.sweep.passed(ended, err)
		}
	}
}

// sweepPass ends the answers left streaming that it finds, at most
// sweepPassMax looked at, and returns how many it ended. It stops at the
// first failure of the store or the bus: the next pass tries again.
func (h *Hub) sweepPass(ctx context.Context, find StreamingFinder, in MessageInterrupter) (ended int, err error) {
	now := time.Now
	if h.sweep.now != nil {
		now = h.sweep.now
	}
	before := now().Add(-h.opts.SweepAge)
	var after persistence.StreamingMessage
	for seen := 0; seen < sweepPassMax; {
		qctx, cancel := context.WithTimeout(ctx, busTimeout)
		page, err := find.StreamingBefore(qctx, before, after, sweepBatch)
		cancel()
		if err != nil {
			return ended, fmt.Errorf("find answers left streaming: %w", err)
		}
		for _, m := range page {
			done, err := h.sweepOne(ctx, in, m)
			if err != nil {
				return ended, err
			}
			if done {
				ended++
			}
		}
		if len(page) < sweepBatch {
			return ended, nil
		}
		seen += len(page)
		after = page[len(page)-1]
	}
	return ended, nil
}

// sweepOne marks m interrupted unless an answer still owns it, and
// reports whether this call ended it.
func (h *Hub) sweepOne(ctx context.Context, in MessageInterrupter, m persistence.StreamingMessage) (bool, error) {
	if h.endsItself(m) {
		return false, nil
	}
	bctx, cancel := context.WithTimeout(ctx, busTimeout)
	lock, held, err := h.bus.Running(bctx, m.ConversationID)
	cancel()
	if err != nil {
		return false, fmt.Errorf("ask the cluster who runs conversation %s: %w", m.ConversationID, err)
	}
	if held && lock.MessageID == m.ID {
		return false, nil // live (perhaps thinking silently), or being taken over
	}
	sctx, cancel := context.WithTimeout(ctx, busTimeout)
	stored, err := in.InterruptMessage(sctx, m.OwnerID, m.ID, sweptReason, time.Now())
	cancel()
	switch {
	case errors.Is(err, persistence.ErrNotFound):
		return false, nil // deleted meanwhile
	case err != nil:
		return false, fmt.Errorf("mark answer %s interrupted: %w", m.ID, err)
	}
	if stored.Status != persistence.StatusInterrupted || stored.Error != sweptReason {
		return false, nil // it ended meanwhile: its end stands
	}
	h.busm.AnswerSwept()
	h.log.Info("answer left streaming marked interrupted", "message", m.ID, "conversation", m.ConversationID,
		"last_saved", m.UpdatedAt, "bytes", len(stored.Content))
	return true, nil
}

// FinalHolder is what a Writer may also say (persistence/batch's Writer
// does): whether it holds the final update of message id, not yet written
// (queued, being written or retried), after the answer's Finish gave up
// waiting for it (errNotStored) as well.
type FinalHolder interface {
	HoldsFinal(id string) bool
}

// endsItself reports whether this instance still ends answer m itself: it
// runs or prepares it, takes it over, waits to mark it interrupted with
// the reason it knows (lateEnds), or its Writer holds its final update
// (FinalHolder): a store failing bulk writes for longer than SweepAge
// while the sweep's small write fits (a nearly full disk) must not store
// the answer interrupted with its last checkpoint's text, the Writer's
// retry of its real end then skipped as no longer streaming.
//
// Only this instance knows what its Writer holds. In a cluster the
// answer's lock was released with its done, so another instance's sweep
// can still end such an answer; keeping the lock until the Writer lets go
// of the end would keep the conversation busy for new sends meanwhile,
// and needs the Writer to say when it does: not done.
func (h *Hub) endsItself(m persistence.StreamingMessage) bool {
	if h.ownAnswerHere(m.ConversationID) == m.ID {
		return true
	}
	if fh, ok := h.opts.Writer.(FinalHolder); ok && fh.HoldsFinal(m.ID) {
		return true
	}
	h.bgMu.Lock()
	taking := h.taking[m.ID]
	h.bgMu.Unlock()
	if taking {
		return true
	}
	h.late.mu.Lock()
	defer h.late.mu.Unlock()
	_, waiting := h.late.waiting[m.ID]
	return waiting
}

// ownAnswerHere is the id of the answer this instance runs or prepares in
// a conversation, or "".
func (h *Hub) ownAnswerHere(convID string) string {
	c := h.lookup(convID)
	if c == nil {
		return ""
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != nil {
		return c.gen.msg.ID
	}
	if c.lock != nil {
		return c.lock.MessageID
	}
	return ""
}
