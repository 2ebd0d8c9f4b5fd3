package natsbus

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"chatd/hub"
	"chatd/hub/protocol"
)

// Defaults of the follow's checks for frames it may have missed.
const (
	// followIdle is how long a follow hears nothing before it asks the
	// stream leader for the answer's last frame (a lost last frame would
	// otherwise be waited for forever); then it asks every two followIdle.
	followIdle = time.Second
	// gapTries bounds the reads of frames a live frame's number skipped.
	gapTries = 5
)

// errDown ends a follow's context when the bus is declared down.
var errDown = errors.New("the bus is down")

// Follow implements hub.Bus without a JetStream consumer: it subscribes
// to the answer's live frames (core NATS, this answer's subject only),
// then reads what is already stored (direct gets), and delivers stored
// then live frames in the order of their numbers, each once. A live frame
// whose number skips ahead has the missing ones read from JetStream
// first; after a reconnect or a slow-consumer drop, and after a second of
// silence, the follow checks JetStream for frames it missed. It returns
// an error wrapping hub.ErrBusUnavailable once the bus is down
// (OutageGrace without a connection).
func (b *Bus) Follow(ctx context.Context, a hub.AnswerRef, fn func(*protocol.Frame)) error {
	if err := b.usable(); err != nil {
		return err
	}
	subj := b.answerSubject(a.MessageID)
	ls, err := b.live.add(b.nc, subj, token(a.MessageID))
	if err != nil {
		return unavailable("follow "+a.MessageID, err)
	}
	defer b.live.remove(ls)
	f := &follow{b: b, a: a, fn: fn, stream: b.res.Load().stream, subj: subj, ls: ls, next: 1}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	down := b.conn.down()
	go func() {
		select {
		case <-down:
			cancel(errDown)
		case <-ctx.Done():
		}
	}()
	err = f.run(ctx)
	if errors.Is(context.Cause(ctx), errDown) {
		return unavailable("follow "+a.MessageID, b.downErr())
	}
	return err
}

// follow is one Follow's state, owned by its goroutine.
type follow struct {
	b            *Bus
	a            hub.AnswerRef
	fn           func(*protocol.Frame)
	stream, subj string
	ls           *liveSub
	next         uint64 // the number of the next frame to deliver
	pos          uint64 // every stored frame up to this stream sequence was handled
	ended        bool   // the done (or aborted) frame was delivered
	err          error  // a frame that cannot be decoded
}

func (f *follow) run(ctx context.Context) error {
	f.catchUp(ctx, 0) // what is stored already
	// The silence check fires quiet after the last frame (or check); a
	// frame moves last instead of resetting the timer, which fires
	// early then and is set again for the rest.
	quiet, last := f.b.idleAfter, time.Now()
	idle := time.NewTimer(quiet)
	defer idle.Stop()
	for !f.ended && f.err == nil && ctx.Err() == nil {
		before := f.next
		select {
		case <-ctx.Done():
		case m := <-f.ls.ch:
			if !f.b.live.lost(m) {
				f.live(ctx, m)
			}
		case <-f.ls.wake:
		case <-idle.C:
			if rest := quiet - time.Since(last); rest > 0 {
				idle.Reset(rest)
				break
			}
			f.checkTail(ctx)
			quiet, last = 2*f.b.idleAfter, time.Now()
			idle.Reset(quiet)
		}
		if f.ls.resync.Swap(false) && !f.ended && f.err == nil {
			f.catchUp(ctx, 0)
		}
		if f.next != before {
			last = time.Now()
			if quiet != f.b.idleAfter { // after a check: back to the first wait
				quiet = f.b.idleAfter
				idle.Reset(quiet)
			}
		}
	}
	if f.ended || f.err != nil {
		return f.err
	}
	return ctx.Err()
}

// live handles a frame published just now: a number already delivered is
// dropped (but a done, see deliverFrame), a number past the next one has
// the skipped ones read first. Once every frame stored up to the frame's
// hdrPrev was read, numbers still skipped belong to no stored frame (the
// claimant of a dead instance's answer skips claimSkip of them; a frame
// the stream refused took one): they are passed over at once, not looked
// for again. A frame without hdrPrev (a version before it) has the stream
// read to its end, gapTries times at most.
func (f *follow) live(ctx context.Context, m *nats.Msg) {
	fr, n, err := decodeFrame(f.a.MessageID, m.Header, m.Data)
	if err != nil {
		f.err = err // not a frame of this bus
		return
	}
	if n < f.next && !endsStream(fr) {
		return
	}
	prev, _ := strconv.ParseUint(m.Header.Get(hdrPrev), 10, 64)
	read := false // every frame stored up to prev was read
	for try := 0; n > f.next && !read && try < gapTries && ctx.Err() == nil && !f.ended; try++ {
		if try > 0 {
			wait(ctx, backoff(try-1))
		}
		read = f.catchUp(ctx, prev) && prev > 0
	}
	if f.ended || ctx.Err() != nil || n < f.next && !endsStream(fr) {
		return
	}
	if n > f.next && !read {
		f.b.log.Warn("frames of a followed answer are missing from JetStream", slog.String("message", f.a.MessageID),
			slog.Uint64("from", f.next), slog.Uint64("to", n-1))
	}
	f.deliverFrame(fr, n)
	f.pos = max(f.pos, prev)
}

// catchUp delivers the stored frames after f.pos (up to the stream
// sequence upTo, 0: all), retrying failed reads until ctx ends. It
// reports whether the stream was read up to upTo (the stream leader
// holds no frame of the answer up to it that was not delivered), false
// when ctx ended or the follow did first.
func (f *follow) catchUp(ctx context.Context, upTo uint64) bool {
	for attempt := 0; ctx.Err() == nil; attempt++ {
		pos, err := f.b.readStored(ctx, f.stream, f.subj, f.pos, upTo, func(m storedMsg) bool {
			f.deliver(m.hdr, m.data)
			return !f.ended && f.err == nil
		})
		f.pos = max(f.pos, pos)
		if f.ended || f.err != nil {
			return false
		}
		if err == nil {
			return true
		}
		if ctx.Err() == nil && attempt%20 == 0 {
			f.b.log.Warn("read a followed answer from JetStream; retrying", slog.String("message", f.a.MessageID),
				slog.Any("err", err))
		}
		wait(ctx, backoff(attempt))
	}
	return false
}

// checkTail asks the leader for the answer's last stored frame and reads
// what this follow has not delivered. A last frame stored before the
// position this follow read up to means the stream was made again (lost
// and set up again: checkAnswers, relostLeases), its positions starting
// again from 1: it is read from its start, else the frames stored there
// since, the done above all, were never found and the follow never ended.
func (f *follow) checkTail(ctx context.Context) {
	n, seq, err := f.b.lastNumber(ctx, f.stream, f.subj)
	if err != nil || n < f.next {
		return
	}
	if seq < f.pos {
		f.b.log.Warn("the answer stream was made again; reading a followed answer from its start",
			slog.String("message", f.a.MessageID))
		f.pos = 0
	}
	f.catchUp(ctx, 0)
}

// deliver hands the frame to fn unless its number was delivered already.
func (f *follow) deliver(h nats.Header, data []byte) {
	fr, n, err := decodeFrame(f.a.MessageID, h, data)
	if err != nil {
		f.err = err
		return
	}
	f.deliverFrame(fr, n)
}

// deliverFrame hands fr, numbered n, to fn unless n was delivered
// already. A done (or aborted) frame is handed over whatever its number:
// the follow ends at the first, so it is never a repeat, and the claimant
// of a dead instance's answer that numbers its frames on from the last
// stored one (a version before claimSkip) may number it like a frame the
// dead instance sent followers and the stream never stored.
func (f *follow) deliverFrame(fr *protocol.Frame, n uint64) {
	if n < f.next && !endsStream(fr) {
		return
	}
	f.next = max(f.next, n+1)
	f.fn(fr)
	f.ended = endsStream(fr)
}

// endsStream reports whether fr ends its answer's stream.
func endsStream(fr *protocol.Frame) bool {
	return fr.Type == protocol.TypeDone || fr.Type == hub.FrameAborted
}

// wait waits d or until ctx ends.
func wait(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
