// Package batch persists streaming answers with a bounded number of database
// writes.
//
// The hub inserts an assistant message (status streaming) through the store,
// then hands the Writer each piece of text as it arrives (Append) and, at the
// end, the final update (Finish). The Writer coalesces every piece of a
// message into one update per checkpoint interval and writes the updates of
// all messages together in bulk (Store.ApplyMessageUpdates), so the number of
// writes an answer costs grows with how long it streams, never with how many
// tokens it has: pieces arriving within one interval cost one write, or none
// when the final update comes first.
package batch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"chatd/persistence"
)

// Errors returned by Finish and Close; compare with errors.Is. ErrOverloaded
// and ErrRefused wrap persistence.ErrDropped: the update will never be
// written.
var (
	// ErrClosed means the Writer was closed before the update was durable.
	ErrClosed = errors.New("batch writer closed")
	// ErrOverloaded means MaxPending was reached: the message's text was
	// dropped, and its final update was not written.
	ErrOverloaded = fmt.Errorf("batch writer overloaded: %w", persistence.ErrDropped)
	// ErrRefused means the store rejected the message's update
	// Options.MaxRefusals times in a row: the Writer gave up on it, its
	// unwritten text was dropped, and its final update was not written.
	ErrRefused = fmt.Errorf("batch writer gave up, the store keeps rejecting the message's update: %w", persistence.ErrDropped)
)

// Writer batches message updates into bulk writes. Its methods are safe for
// concurrent use.
//
// Lifecycle: New starts one flush goroutine, owned by the Writer; Close
// drains what is pending and ends it. Every message given to Append must end
// with Finish, and nothing may be appended to a message after its Finish.
//
// Checkpoints: the pending text of all messages is written together, in
// bulk, on a timer that ticks every Options.Interval while any text is
// pending (and sleeps otherwise), so a message's text is written at most
// once per interval. A checkpoint writes only up to a word boundary: the
// MongoDB store keeps text as an array of appended chunks and searches chunk
// by chunk, so a word must not be split across chunks. It writes up to and
// including the last whitespace character and holds back the trailing
// partial word, unless that is longer than Options.MaxHoldBack bytes; it
// never splits a UTF-8 character. A final update is written at once, with all
// pending text, without waiting for the interval; Close writes all pending
// text, partial words included.
//
// Order: updates of one message are written one at a time, in order, and
// each bulk write carries at most one update per message, so a final update
// is never overtaken by older text. Text of a failed write stays at the front
// of the message's pending text, ahead of anything appended since.
//
// Failures: a failed bulk write is retried, with everything pending, after
// an exponential backoff with jitter (Options.RetryBase, RetryMax), for as
// long as the Writer runs, except a message whose update the store
// rejected (persistence.PartialUpdateError.Refused) Options.MaxRefusals
// times in a row: the Writer gives up on it, with an error log, drops its
// unwritten text, and its Finish returns ErrRefused (an *UnwrittenError that
// says how many bytes were dropped); the message stays
// streaming in the database until the caller ends it (the hub marks it
// interrupted with Messages.InterruptMessage) or InterruptStreaming does
// at the next start (see giveUpLocked). When no Finish waits for that
// answer any more (each returned when its ctx ended), Options.OnDropped is
// told instead, as it is of a final update Close abandons. Finish returns when its ctx ends, but the update
// stays queued and is written when the store recovers. When the store
// reports that only some updates failed (persistence.PartialUpdateError),
// the others applied: their text is not written again and their final
// updates release their Finish; only the failed ones are retried. Any
// other error means the store cannot tell which updates applied, and all
// of them are retried: a checkpoint that applied appends its text again,
// unless the store recognises its own text (the MongoDB store does, see
// persistence/mongo's ApplyMessageUpdates; SQLite's writes are all or
// nothing).
//
// Fence: the store applies an update only while its message is streaming
// (persistence.Messages.ApplyMessageUpdates). When it skips one, another
// instance has ended the message (or it was deleted): the Writer drops the
// message's pending text and everything appended to it later, and its
// Finish returns an error wrapping persistence.ErrNotStreaming, so the
// caller reads the stored message and reports that instead of its own.
//
// Overload: at most Options.MaxPending messages are tracked. The first Append
// of a new message beyond that is dropped, with an error log and the Dropped
// counter, and so is the rest of that message's text (a message is never
// stored with a hole in it); its Finish returns ErrOverloaded without
// writing, so the hub can end the message (it marks it interrupted with
// InterruptMessage; else it stays streaming in the database until
// InterruptStreaming marks it so at the next start). Messages already
// tracked keep every piece.
type Writer struct {
	store Store
	opts  Options
	log   *slog.Logger

	mu       sync.Mutex
	entries  map[string]*entry   // tracked messages, by id
	finals   []*entry            // entries whose final update waits, in Finish order
	rejected map[string]struct{} // messages whose text is being dropped
	closed   bool
	stats    Stats
	lastErr  error // of the last bulk write; nil once one succeeds

	// Append puts text in the inbox (inbox.go), not in the entries, so
	// that hundreds of streams appending at once do not queue on mu.
	inbox    [inboxStripes]stripe
	inboxLen atomic.Int64 // inbox lists holding pieces (changed under their locks)
	armed    atomic.Bool  // the flush loop knows text waits for a checkpoint

	armC  chan struct{} // text waits for a checkpoint (buffered, 1)
	kickC chan struct{} // a final update waits (buffered, 1)
	stopC chan struct{} // closed by Close

	doneC      chan struct{} // closed when the flush goroutine returns
	baseCtx    context.Context
	cancelBase context.CancelFunc
	drainCtx   context.Context // set by Close before stopC is closed
	drainErr   error           // set by the flush goroutine before doneC is closed
	round      uint64          // flush rounds so far; used by the flush goroutine only
	closeOnce  sync.Once
}

// entry is the pending state of one message.
type entry struct {
	id      string
	text    []byte                     // appended text not yet durable, in order
	final   *persistence.MessageUpdate // the final update (without Append), once Finish ran
	queued  bool                       // in Writer.finals
	waiters []chan error               // Finish calls waiting for the final update
	round   uint64                     // last flush round that checkpointed it
	lastErr error                      // the last store error for a write carrying it
	// reasoning is appended reasoning not yet durable, in order.
	reasoning []byte
	// fenced: the store skipped a checkpoint, the message is no longer
	// streaming; its text is dropped and its Finish fails (see fenceLocked).
	fenced *UnwrittenError
	// refusals counts the store's rejections of the entry's update in a
	// row; refused, once the Writer gave up on it (see giveUpLocked), is
	// the error its Finish returns, and its text is dropped.
	refusals int
	refused  *UnwrittenError
	// gone counts the waiters whose Finish returned when its ctx ended,
	// before the outcome: when all have, a dropped final update is
	// reported to Options.OnDropped (see orphanedLocked).
	gone int
}

// lostLocked returns the error of e's Finish when its text is being
// dropped (fenced or refused), nil otherwise (and for no entry).
func (e *entry) lostLocked() *UnwrittenError {
	switch {
	case e == nil:
		return nil
	case e.fenced != nil:
		return e.fenced
	}
	return e.refused
}

// orphanedLocked reports whether e's final update waits for no Finish any
// more: one came, and every one returned when its ctx ended. w.mu is held.
func (e *entry) orphanedLocked() bool {
	return e.queued && e.gone >= len(e.waiters)
}

// dropped is a message whose final update was dropped with no Finish
// waiting, for Options.OnDropped.
type dropped struct {
	id, owner string
	err       error
}

// droppedFinal returns the drop of e's final update (queued), for
// Options.OnDropped.
func droppedFinal(e *entry, err error) dropped {
	return dropped{id: e.id, owner: e.final.OwnerID, err: err}
}

// reportDropped tells Options.OnDropped of ds; no lock is held.
func (w *Writer) reportDropped(ds []dropped) {
	if w.opts.OnDropped == nil {
		return
	}
	for _, d := range ds {
		w.opts.OnDropped(d.id, d.owner, d.err)
	}
}

// Stats are the Writer's counters, for metrics and tests.
type Stats struct {
	Messages         int           // messages tracked: from first Append until the final update is durable
	PendingBytes     int           // appended text not yet durable
	Flushes          uint64        // successful bulk writes
	Failures         uint64        // failed bulk writes, partly failed ones included
	Updates          uint64        // updates the store took: applied, or skipped by the fence
	Dropped          uint64        // Append calls whose text was dropped
	Skipped          uint64        // updates the store did not apply: their message was no longer streaming
	LastFlushLatency time.Duration // duration of the last bulk write
}

// New returns a Writer over store and starts its flush goroutine; call Close
// to drain and stop it.
func New(store Store, opts Options) *Writer {
	opts = opts.withDefaults()
	base, cancel := context.WithCancel(context.Background())
	w := &Writer{
		store:      store,
		opts:       opts,
		log:        opts.Logger,
		entries:    make(map[string]*entry),
		rejected:   make(map[string]struct{}),
		armC:       make(chan struct{}, 1),
		kickC:      make(chan struct{}, 1),
		stopC:      make(chan struct{}),
		doneC:      make(chan struct{}),
		baseCtx:    base,
		cancelBase: cancel,
	}
	go w.run()
	return w
}

// Stats returns a snapshot of the Writer's counters.
func (w *Writer) Stats() Stats {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.drainLocked()
	s := w.stats
	s.Messages = len(w.entries)
	return s
}

// Err returns the error of the last bulk write, or nil when it succeeded
// (or none ran yet): while it is not nil the store is failing writes and
// the Writer is retrying them. Readiness checks report it.
func (w *Writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lastErr
}

// HoldsFinal reports whether the Writer holds the final update of message
// id, not yet written: Finish was called and the update is queued, being
// written or retried, also after every Finish returned when its ctx ended
// (the store failing writes). It is false once the update was written,
// dropped (Options.OnDropped is told, or Finish returns the error) or
// refused as the message no longer streams. The message's end is then
// still the Writer's to store: the hub's sweep of answers left streaming
// leaves it alone.
func (w *Writer) HoldsFinal(id string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	e := w.entries[id]
	return e != nil && e.queued
}

// signal wakes the flush goroutine through c without blocking.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
