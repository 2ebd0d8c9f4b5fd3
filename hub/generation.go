package hub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"chatd/hub/protocol"
	"chatd/llm"
	"chatd/persistence"
)

// generation is one model answer being produced. Its text and delivery
// state are guarded by conv.mu.
type generation struct {
	id     string // ties logs of the socket, the upstream request and the message together
	hub    *Hub
	conv   *conv
	msg    persistence.Message // the assistant message as inserted (status streaming)
	prompt string              // the user message answered, for the title
	titled bool                // the conversation had a title when the answer started
	connID string              // the connection that asked
	src    promptSource        // what the prompt was built from, to fit it again (refit.go)
	// shrunk is the budget of a prompt fitted again smaller than the
	// window alone allows (refit.go; 0: not so fitted).
	shrunk int
	// recounted: setOmitted recorded the count of messages left out again
	// (guarded by conv.mu); the done then says it, 0 included.
	recounted bool

	ctx    context.Context
	cancel context.CancelCauseFunc // ends the answer; the cause says why
	stop   context.CancelFunc      // releases the MaxDuration timer
	done   chan struct{}           // closed after the done frame went out

	// Guarded by conv.mu.
	text      []byte
	sent      int // bytes of text already delivered in deltas
	reasoning []byte
	rsent     int // bytes of reasoning already delivered in reasoning frames
	lastFlush time.Time
	pendingAt time.Time // when the oldest text or reasoning not yet sent arrived
	pending   int       // pieces of text and reasoning not yet sent
	// flushAt is the flusher's bucket plus one while the answer waits in
	// the flusher (queuedLocked), 0 otherwise. It changes under conv.mu
	// (flusher.add stores it), and the flusher reads it without that lock
	// to pass over a stale entry (dueBy).
	flushAt atomic.Int64
	tokens  int
	firstAt time.Time
	lastAt  time.Time
	capped  bool // the text or the reasoning reached MaxAnswerBytes: the rest is dropped
	// frames builds the deltas when every tab releases them (deltaLocked).
	frames protocol.Frames

	// upstream is the kind of the model provider's failure that ended the
	// answer ("": none), set by outcome on the generation's goroutine: what
	// the metrics count as an upstream error, apart from the status and
	// code the done reports (a final write that failed reports
	// unavailable, the duration limit timeout, neither the provider's).
	upstream llm.ErrorKind
}

// onDelta is called by the model stream, in order, from the generation's goroutine.
func (g *generation) onDelta(text string) { g.onDeltaAt(text, time.Now()) }

// onDeltaAt is onDelta with text arriving at now.
func (g *generation) onDeltaAt(text string, now time.Time) {
	c := g.conv
	c.mu.Lock()
	defer c.mu.Unlock()
	if text = g.capLocked(len(g.text), text); text == "" {
		return
	}
	g.tokenLocked(now)
	g.text = appendDoubling(g.text, text)
	g.hub.opts.Writer.Append(g.msg.ID, text)
	g.scheduleLocked(now, g.sent == 0)
}

// appendDoubling appends text to b, doubling b's capacity when it is
// full: append grows a large slice by about a quarter, so an answer's
// text was copied about five times its length over its growth, twice
// doubling.
func appendDoubling(b []byte, text string) []byte {
	if len(b)+len(text) > cap(b) {
		b = slices.Grow(b, max(len(text), len(b)))
	}
	return append(b, text...)
}

// tokenLocked counts one piece of text or reasoning; conv.mu is held.
func (g *generation) tokenLocked(now time.Time) {
	if g.tokens == 0 {
		g.firstAt = now
	}
	g.tokens++
	g.lastAt = now
}

// scheduleLocked sends the pending text and reasoning now (first: the first
// piece of either is never held) or queues them in the flusher; conv.mu is held.
func (g *generation) scheduleLocked(now time.Time, first bool) {
	if !g.queuedLocked() {
		g.pendingAt = now // nothing was waiting: this piece is the oldest unsent
		g.pending = 0
	}
	g.pending++
	w := g.hub.coalesceWindow()
	if first || g.flushNowLocked(now, w) {
		g.flushLocked(now)
		return
	}
	if !g.queuedLocked() {
		due := g.lastFlush.Add(w.interval)
		if w.wide {
			due = g.pendingAt.Add(w.interval)
		}
		g.hub.flush.add(g, due, now)
	}
}

// queuedLocked reports whether the answer waits in the flusher; conv.mu
// is held.
func (g *generation) queuedLocked() bool { return g.flushAt.Load() != 0 }

// dueBy reports whether the answer waits in the flusher in bucket cur or
// an earlier one; it needs no lock.
func (g *generation) dueBy(cur int64) bool {
	at := g.flushAt.Load()
	return at != 0 && at-1 <= cur
}

// window is how coalescing treats the text of an answer at one moment.
type window struct {
	wide     bool          // every piece waits (many answers stream)
	interval time.Duration // the longest a piece waits
	pieces   int           // widened: a delta goes out once it carries this many pieces
}

// coalesceWindow returns how text is coalesced now. Up to CoalesceStreams
// answers streaming on this instance it is not widened: text waits at
// most CoalesceInterval after the last delta, and only when merging pays
// (see flushNowLocked). From CoalesceStreams answers on, every piece of
// text waits until the delta carries two pieces per CoalesceStreams
// answers (two from CoalesceStreams, three from one and a half times as
// many, ...) or the oldest piece waited the window, which grows with the
// number of answers (CoalesceInterval x answers / CoalesceStreams, up to
// CoalesceMaxInterval): a busy server then writes a frame per several
// tokens instead of one per token, and no token waits longer than the
// window, nor longer than it takes the model to produce the pieces a
// delta carries.
func (h *Hub) coalesceWindow() window {
	o := &h.opts
	live := h.live.Load()
	if live < int64(o.CoalesceStreams) {
		return window{interval: o.CoalesceInterval}
	}
	return window{wide: true,
		interval: min(time.Duration(int64(o.CoalesceInterval)*live/int64(o.CoalesceStreams)), o.CoalesceMaxInterval),
		pieces:   int(2 * live / int64(o.CoalesceStreams))}
}

// flushNowLocked decides whether text that arrived at now goes out at once
// (adaptive coalescing). It does when nothing was sent yet or when
// CoalesceBytes of text and reasoning wait. Widened (many answers), it
// does when the oldest text waiting is the window old, or when the delta
// carries the window's pieces, or when the next piece, as far apart as
// the answer's pieces have come on average, would come after the oldest
// waited the window (it could not join this delta: waiting for it saves
// no frame; the average, not the last gap, so that pieces a loaded
// machine delivers unevenly still pair up), provided the last delta went
// out at least half the window ago (so a fast model still gets few
// frames) and no subscriber is busy (a machine short of CPU, whose
// writers lag, merges up to the window). Otherwise it does when the last
// delta is the window old, and when merging would not pay: the last delta
// is at least CoalesceMinGap old (not a fast model) and no subscriber is
// still writing or holding queued frames (no write in flight). Text that
// waits goes out with what follows it, when the flusher finds it due, or
// when the busy subscribers have drained (Hub.Drained) and the rules above
// let it. Every subscriber gets the same deltas, so tabs of one
// conversation see one delta sequence. conv.mu is held.
func (g *generation) flushNowLocked(now time.Time, w window) bool {
	since := now.Sub(g.lastFlush)
	switch {
	case g.sent == 0 && g.rsent == 0,
		len(g.text)-g.sent+len(g.reasoning)-g.rsent >= g.hub.opts.CoalesceBytes:
		return true
	case w.wide:
		waited := now.Sub(g.pendingAt)
		// The delta has the window's pieces, or the next would come too late to join it.
		ready := g.pending >= w.pieces || waited+g.meanGapLocked() > w.interval
		return waited >= w.interval || ready && since >= w.interval/2 && !g.conv.busyLocked()
	case since >= w.interval:
		return true
	case since < g.hub.opts.CoalesceMinGap:
		return false
	}
	return !g.conv.busyLocked()
}

// meanGapLocked is the average time between the answer's pieces so far
// (0 before the second); conv.mu is held.
func (g *generation) meanGapLocked() time.Duration {
	if g.tokens < 2 {
		return 0
	}
	return g.lastAt.Sub(g.firstAt) / time.Duration(g.tokens-1)
}

// Drained is called by a subscriber that was asked to (DrainWatcher) once
// it has written every frame queued: the text of its conversations held
// back because it was busy goes out now if nothing else holds it (another
// busy subscriber, a fast model), instead of when the interval ends. It
// must not be called with any lock of the subscriber held.
func (h *Hub) Drained(sub Subscriber) { h.drainedAt(sub, time.Now()) }

// drainedAt is Drained at now.
func (h *Hub) drainedAt(sub Subscriber, now time.Time) {
	var buf [4]*conv
	convs := buf[:0]
	h.followMu.Lock()
	for _, c := range h.follows[sub] {
		convs = append(convs, c)
	}
	h.followMu.Unlock()
	for _, c := range convs {
		c.mu.Lock()
		h.flushHeldLocked(c, now)
		c.mu.Unlock()
	}
}

// flushHeldLocked sends the text of c's answer held back while something
// was busy (a subscriber, the bus), if nothing holds it any more; c.mu is
// held.
func (h *Hub) flushHeldLocked(c *conv, now time.Time) {
	if g := c.gen; g != nil && g.queuedLocked() && g.flushNowLocked(now, h.coalesceWindow()) {
		g.flushLocked(now)
	}
}

// flushLocked delivers the reasoning and the text not yet sent, as one
// reasoning frame and one delta; conv.mu is held.
func (g *generation) flushLocked(now time.Time) {
	if g.queuedLocked() {
		g.flushAt.Store(0)
	}
	g.flushReasoningLocked(now)
	if len(g.text) == g.sent {
		return
	}
	f := g.deltaLocked()
	g.sent = len(g.text)
	g.lastFlush = now
	g.conv.deliverLocked(f)
	f.Release() // the hub's own hold (deltaLocked)
	g.hub.opts.Metrics.DeltaSent(len(g.conv.subs))
}

// deltaLocked encodes the text not yet sent as a delta. When every tab
// releases the frames it is handed (FrameReleaser) and the bus's outbox
// does not keep them (a single instance), the delta is built in a frame
// of the answer's that every tab has released (g.frames), held once more
// by the hub until it has handed it to every tab; otherwise in a new one.
// conv.mu is held.
func (g *generation) deltaLocked() *protocol.Frame {
	c, seq, rseq, text := g.conv, int64(len(g.text)), int64(g.rsent), g.text[g.sent:]
	if c.out == nil && c.subs.release() {
		return g.frames.DeltaAt(g.msg.ConversationID, g.msg.ID, seq, rseq, text, len(c.subs)+1)
	}
	return protocol.DeltaAt(g.msg.ConversationID, g.msg.ID, seq, rseq, text)
}

// run streams the answer and finishes it; it owns the generation's goroutine.
func (g *generation) run(req llm.Request) {
	h := g.hub
	defer h.work.Done()
	h.live.Add(1)
	defer h.live.Add(-1)
	defer g.stop()
	defer g.cancel(nil)
	start := time.Now()
	h.log.Info("generation started", "generation", g.id, "user", g.msg.OwnerID, "connection", g.connID,
		"conversation", g.msg.ConversationID, "message", g.msg.ID, "model", req.Model)
	h.opts.Metrics.GenerationStarted(req.Model)
	res, err := g.ask(req)
	final, errBody := g.outcome(res, err)
	final, errBody = g.finish(final, errBody)
	h.record(g, final, errBody, time.Since(start))
	h.maybeTitle(g, final)
}

// ask streams the answer from the model, fitting the prompt again when
// the model finds it too long (refit.go). An answer that lost its
// cluster lock before it ran (errLockLost) asks nothing.
func (g *generation) ask(req llm.Request) (llm.Result, error) {
	if cause := context.Cause(g.ctx); errors.Is(cause, errLockLost) {
		return llm.Result{}, cause
	}
	req.OnReasoning = g.onReasoning
	res, err := g.hub.opts.Model.Stream(g.ctx, req, g.onDelta)
	if retry, ok := g.refit(req, err); ok {
		res, err = g.hub.opts.Model.Stream(g.ctx, retry, g.onDelta)
		g.refitted(retry, err)
	}
	return res, err
}

// outcome turns the stream's result into the message's final state.
func (g *generation) outcome(res llm.Result, err error) (persistence.MessageUpdate, *protocol.ErrorBody) {
	u := persistence.MessageUpdate{ID: g.msg.ID, OwnerID: g.msg.OwnerID, Status: persistence.StatusComplete,
		FinishReason: res.FinishReason}
	if res.Usage != nil {
		u.Usage = &persistence.Usage{PromptTokens: res.Usage.PromptTokens,
			CompletionTokens: res.Usage.CompletionTokens, TotalTokens: res.Usage.TotalTokens}
	}
	// The cap labels the answer only when it is what ended it: a piece
	// read before a Stop, a shutdown or the duration limit may still
	// arrive and reach the cap after, and the answer ended for that cause.
	if g.isCapped() && (err == nil || errors.Is(context.Cause(g.ctx), errTooLong)) {
		u.Status, u.FinishReason = persistence.StatusComplete, "length"
		return u, nil
	}
	if err == nil {
		return u, nil
	}
	var body *protocol.ErrorBody
	switch cause := context.Cause(g.ctx); {
	case errors.Is(cause, errCancelled), errors.Is(cause, errSuperseded):
		u.Status = persistence.StatusCancelled
	case errors.Is(cause, errEndedElsewhere):
		u.Status = persistence.StatusInterrupted // not stored: finish reports the stored state
	case errors.Is(cause, errLockLost):
		u.Status = persistence.StatusInterrupted
		body = &protocol.ErrorBody{Code: protocol.CodeShutdown, Message: lockLostReason}
	case errors.Is(cause, errShutdown):
		u.Status = persistence.StatusInterrupted
		body = &protocol.ErrorBody{Code: protocol.CodeShutdown, Message: persistence.RestartError}
	case errors.Is(cause, context.DeadlineExceeded):
		u.Status = persistence.StatusError
		body = &protocol.ErrorBody{Code: string(llm.KindTimeout), Message: "The answer took longer than the server allows."}
	default:
		u.Status = persistence.StatusError
		body, g.upstream = upstreamError(err)
	}
	if body != nil {
		u.Error, u.ErrorCode = body.Message, body.Code
	}
	return u, body
}

// errNotStored is the error of a done whose final state is not stored
// yet: Finish stopped waiting for it, and the writer keeps retrying it
// (keptQueued).
var errNotStored = &protocol.ErrorBody{Code: protocol.CodeUnavailable,
	Message: "The answer could not be saved: the database is not accepting writes. The server keeps trying; reload the conversation later."}

// errNotEnded is the error of a done whose final state will not be stored
// as the answer ended here: the writer dropped the final update (the hub
// then marks the answer interrupted, at once, see endDropped, or in the
// background, endLater, the store then holding what was last saved), or
// refused it for another reason (the message was ended elsewhere and could
// not be read, the writer was closed). Nothing retries that update.
var errNotEnded = &protocol.ErrorBody{Code: protocol.CodeUnavailable,
	Message: "The answer could not be saved: the database did not take its end. Reload the conversation to see what was kept."}

// droppedReason is the error stored with an answer whose final update
// the store could not take (endDropped).
const droppedReason = "The end of the answer could not be saved; it was kept as it was last saved."

// upstreamError is the error body of an answer whose stream failed with
// err, and the kind of the model provider's failure when err is one
// (an llm.Error; "" otherwise).
func upstreamError(err error) (*protocol.ErrorBody, llm.ErrorKind) {
	var e *llm.Error
	if errors.As(err, &e) {
		return &protocol.ErrorBody{Code: string(e.Kind), Message: e.Message}, e.Kind
	}
	return &protocol.ErrorBody{Code: protocol.CodeInternal, Message: "The answer failed unexpectedly."}, ""
}

// finish stores the final state, then sends the done frame to every
// subscriber and frees the conversation for the next answer. It returns
// the state the done frame reported.
func (g *generation) finish(u persistence.MessageUpdate, errBody *protocol.ErrorBody) (persistence.MessageUpdate, *protocol.ErrorBody) {
	h, c := g.hub, g.conv
	c.mu.Lock()
	g.flushLocked(time.Now())
	final := g.msg
	final.Content, final.Reasoning = string(g.text), string(g.reasoning)
	c.mu.Unlock()

	final, u, errBody, fenced := g.store(final, u, errBody)
	c.mu.Lock()
	doneOf := protocol.Done
	if g.recounted {
		doneOf = protocol.DoneRecounted
	}
	if fenced && c.out != nil {
		// For the other instances, like an instance ending a dead one's
		// answer: the stored text, then the done (publish.go publishes
		// neither if the answer was claimed: the claimant ended it).
		c.out.push(storedFrame(final))
	}
	h.giveSlotLocked(c) // before the done: a tab may send again on it at once
	c.deliverLocked(doneOf(final, errBody))
	c.gen = nil
	h.mirrorNextLocked(c, fenced)
	c.mu.Unlock()
	close(g.done)
	h.release(c)
	return u, errBody
}

// store writes the final update u of the answer final (its text so far)
// and returns what the done frame reports: final and u as stored, and
// fenced when the store refused u because the message had been ended
// elsewhere, so that the stored message replaces the answer's own end.
func (g *generation) store(final persistence.Message, u persistence.MessageUpdate, errBody *protocol.ErrorBody) (
	persistence.Message, persistence.MessageUpdate, *protocol.ErrorBody, bool) {
	h := g.hub
	u.At = time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), h.opts.FinishTimeout)
	defer cancel()
	h.unsaved.begin(g.msg.ID) // a drop reported once Finish gave up finds it (FinalDropped)
	ferr := h.opts.Writer.Finish(ctx, u)
	err := ferr
	var stored *persistence.Message
	switch {
	case errors.Is(err, persistence.ErrNotStreaming):
		stored, err = g.fenced(ctx, err)
	case errors.Is(err, persistence.ErrDropped):
		stored, err = g.endDropped(ctx, err)
	}
	if err != nil {
		// The done must not claim what is not stored: the answer is
		// reported failed (unavailable), with the text known written
		// (what the writer says it had not written is left out,
		// unwritten), or the text the store kept of an update dropped,
		// when it can be read. Only errNotStored says the server keeps
		// trying: the writer then retries the update (keptQueued).
		h.log.Error("store final answer", "generation", g.id, "user", g.msg.OwnerID, "message", g.msg.ID, "err", err)
		errBody = errNotEnded
		if keptQueued(ferr) {
			errBody = errNotStored
		}
		final.Content, final.Reasoning = written(final, err)
		dropped := errors.Is(err, persistence.ErrDropped)
		if dropped && stored != nil { // nothing will store more than the store kept
			final.Content, final.Reasoning = stored.Content, stored.Reasoning
		}
		// Before the done: a resume after it ends it too. The writer may
		// have dropped the update since Finish gave up (FinalDropped).
		if h.unsaved.settle(g.msg.ID, errBody, time.Now()) && !dropped {
			dropped, errBody = true, errNotEnded
		}
		if dropped {
			g.endLater()
		}
		u.Status, u.Error = persistence.StatusError, errBody.Message
	} else {
		h.unsaved.settle(g.msg.ID, nil, time.Now())
	}
	if stored != nil && err == nil {
		return *stored, storedUpdate(*stored), storedError(*stored), true
	}
	final.Status, final.FinishReason, final.Usage, final.Error, final.UpdatedAt = u.Status, u.FinishReason, u.Usage, u.Error, u.At
	return final, u, errBody, false
}

// unwritten is an error of Writer.Finish that says how many bytes of the
// message's text and reasoning were not written when it returned
// (persistence/batch's NotDurableError and UnwrittenError): all before
// them is stored.
type unwritten interface {
	Unwritten() (text, reasoning int)
}

// keptQueued reports whether err, Finish's error, says the writer keeps
// the final update and retries it: Finish's ctx ended first (Writer).
func keptQueued(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

// written returns the text and reasoning of final known stored when err,
// Finish's error or one wrapping it, says what was not written; else
// none of them, as nothing says what was (the writer was closed, or
// dropped all of it when its queue overflowed).
func written(final persistence.Message, err error) (content, reasoning string) {
	var uw unwritten
	if !errors.As(err, &uw) {
		return "", ""
	}
	t, r := uw.Unwritten()
	return final.Content[:max(len(final.Content)-t, 0)], final.Reasoning[:max(len(final.Reasoning)-r, 0)]
}

// storedUpdate is the final update that m, as stored, reflects.
func storedUpdate(m persistence.Message) persistence.MessageUpdate {
	return persistence.MessageUpdate{ID: m.ID, Status: m.Status, FinishReason: m.FinishReason,
		Usage: m.Usage, Error: m.Error, ErrorCode: m.ErrorCode, At: m.UpdatedAt}
}

// endDropped ends an answer whose final update the writer gave up on
// (dropped, persistence.ErrDropped: it will never be written, and nothing
// else would end the message, left streaming): it marks the message
// interrupted, its text the last checkpoint's, and returns it as stored,
// for the done to report. It returns (nil, dropped) when the store cannot
// end messages, and (nil, nil) when the message is gone. When the call
// fails, it reads the message: one found ended (the call's reply was
// lost) is returned as stored; otherwise it returns the error, with the
// message as the store keeps it, streaming (nil if the read failed too:
// the done then claims what dropped, the writer's error, says it wrote),
// whose text is all the done may claim (nothing will store more).
func (g *generation) endDropped(ctx context.Context, dropped error) (*persistence.Message, error) {
	in, ok := g.hub.opts.Store.(MessageInterrupter)
	if !ok {
		return nil, dropped
	}
	m, err := in.InterruptMessage(ctx, g.msg.OwnerID, g.msg.ID, droppedReason, time.Now())
	switch {
	case errors.Is(err, persistence.ErrNotFound):
		return nil, nil
	case err != nil:
		return g.kept(ctx, fmt.Errorf("%w; marking the answer interrupted: %w", dropped, err))
	}
	g.conv.mu.Lock()
	sent := len(g.text)
	g.conv.mu.Unlock()
	g.hub.log.Error("answer's final update dropped: stored as interrupted with its last checkpoint", "generation", g.id, "user", g.msg.OwnerID,
		"message", g.msg.ID, "status", m.Status, "stored_bytes", len(m.Content), "streamed_bytes", sent, "err", dropped)
	return &m, nil
}

// endLater marks interrupted, in the background (lateend.go), the answer
// whose final update was dropped and that endDropped could not end, so
// that it does not stay streaming until the next start (in a cluster,
// which has no start-up sweep, until the periodic sweep of answers left
// streaming: sweep.go).
func (g *generation) endLater() {
	g.hub.endLater(g.msg.OwnerID, g.msg.ID)
}

// FinalDropped ends answer messageID of ownerID, whose final update the
// writer dropped (err says why) after the answer's Finish gave up waiting
// for it: its done reported it not stored (errNotStored) while the writer
// kept retrying, and nothing else would end the message, left streaming
// (until the next start's sweep; in a cluster until the periodic sweep's).
// It is marked interrupted in the background as a dropped end is
// (endLater), whether or not this hub still remembers the answer, and a
// resume meanwhile is answered with errNotEnded while it does
// (unsaved.go). Wire it to persistence/batch Options.OnDropped; it does
// not block.
func (h *Hub) FinalDropped(messageID, ownerID string, err error) {
	switch {
	case h.unsaved.dropped(messageID, time.Now()): // its Finish is returning: generation.store ends it
		h.log.Error("answer's final update dropped as its end was reported unsaved; marking it interrupted",
			"user", ownerID, "message", messageID, "err", err)
	case ownerID != "" && h.endLater(ownerID, messageID):
		h.log.Error("answer's final update dropped after its end was reported unsaved; marking it interrupted",
			"user", ownerID, "message", messageID, "err", err)
	default:
		h.log.Error("answer's final update dropped after its end was reported unsaved, and it cannot be marked interrupted now: it stays streaming until the next start (in a cluster, until a sweep of answers left streaming)",
			"user", ownerID, "message", messageID, "err", err)
	}
}

// kept reads, for endDropped, the message whose end could not be stored
// (err): ended after all (nil error), or as kept, with err.
func (g *generation) kept(ctx context.Context, err error) (*persistence.Message, error) {
	m, rerr := g.latest(ctx)
	switch {
	case rerr != nil:
		g.hub.log.Error("read what was kept of an answer whose end was dropped; its done reports the text the writer says it wrote",
			"generation", g.id, "user", g.msg.OwnerID, "message", g.msg.ID, "err", rerr)
		return nil, err
	case m.Status.Final():
		return &m, nil
	}
	return &m, err
}

// fenced reads the stored state of an answer whose final update the store
// did not apply: the message is no longer streaming because another
// instance ended it (it took the answer over while this one was cut off
// from the cluster long enough for its lease to expire), or this final
// update was already applied by an attempt whose reply was lost. The done
// then reports what is stored, never more. It returns (nil, nil) when the
// message is gone (its conversation was deleted): the done reports the
// answer's own end, as nothing stored contradicts it. The read asks for
// the latest state (persistence.WithLatest), the one the fence saw. When
// it fails, the error wraps notApplied, Finish's, which says what of the
// text the writer did not write (unwritten): the done claims the rest.
func (g *generation) fenced(ctx context.Context, notApplied error) (*persistence.Message, error) {
	m, err := g.latest(ctx)
	switch {
	case errors.Is(err, persistence.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("%w; reading the answer ended elsewhere: %w", notApplied, err)
	case !m.Status.Final():
		return nil, fmt.Errorf("%w, yet the message is still %s", notApplied, m.Status)
	}
	g.conv.mu.Lock()
	sent := len(g.text)
	g.conv.mu.Unlock()
	g.hub.log.Warn("answer ended elsewhere: reporting its stored state", "generation", g.id, "user", g.msg.OwnerID,
		"message", g.msg.ID, "status", m.Status, "stored_bytes", len(m.Content), "streamed_bytes", sent)
	return &m, nil
}

// latest reads the answer as stored, in its latest state
// (persistence.WithLatest): what the store's refusal of its end saw, not
// a replica lagging behind it (kept, fenced).
func (g *generation) latest(ctx context.Context) (persistence.Message, error) {
	return g.hub.opts.Store.Message(persistence.WithLatest(ctx), g.msg.OwnerID, g.msg.ID)
}

func (h *Hub) record(g *generation, u persistence.MessageUpdate, errBody *protocol.ErrorBody, total time.Duration) {
	g.conv.mu.Lock()
	tokens, firstAt, lastAt, size := g.tokens, g.firstAt, g.lastAt, len(g.text)
	g.conv.mu.Unlock()
	var ttft time.Duration
	if tokens > 0 {
		ttft = firstAt.Sub(g.startedAt())
	}
	kind := ""
	if errBody != nil {
		kind = errBody.Code
	}
	h.opts.Metrics.GenerationFinished(g.msg.Model, string(u.Status), string(g.upstream), ttft, tokens, lastAt.Sub(firstAt))
	level := slog.LevelInfo
	if u.Status == persistence.StatusError {
		level = slog.LevelWarn
	}
	h.log.Log(context.Background(), level, "generation finished", "generation", g.id, "user", g.msg.OwnerID,
		"connection", g.connID, "conversation", g.msg.ConversationID, "message", g.msg.ID, "model", g.msg.Model, "status", u.Status,
		"error_code", kind, "tokens", tokens, "bytes", size, "ttft_ms", float64(ttft.Microseconds())/1000, "duration_ms", float64(total.Microseconds())/1000)
}

// startedAt is when the message was created, which is when the request started.
func (g *generation) startedAt() time.Time { return g.msg.CreatedAt }
