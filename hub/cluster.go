package hub

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"chatd/hub/protocol"
	"chatd/internal/waitctx"
	"chatd/persistence"
)

// busTimeout bounds one bus call made on behalf of a request.
const busTimeout = 5 * time.Second

// cluster is the hub's side of the Bus: what it owns for the other
// instances. With a bus of one instance (solo) every method returns at once.
type cluster struct {
	bus  Bus
	self string
	solo bool
	busm BusMetrics

	// busCtx outlives the generations (their done frames must still be
	// published after Shutdown cancelled them); stopBusWork ends it.
	busCtx  context.Context
	stopBus context.CancelFunc

	bgMu    sync.Mutex
	stopped bool
	taking  map[string]bool     // answers being taken over here, by message id
	ends    map[string]*lockEnd // locks abortLock gives up, by message id
	sending map[string]int      // answers whose publisher runs (spawnPublisher), by message id
	pubs    sync.WaitGroup      // publishers of local answers (publish.go)
	bg      sync.WaitGroup      // mirrors and orphan take-overs
}

func newCluster(bus Bus, m Metrics) cluster {
	ctx, cancel := context.WithCancel(context.Background())
	mb, isMem := bus.(*MemBus)
	return cluster{bus: bus, self: bus.InstanceID(), solo: isMem && mb.solo(), busm: busMetricsOf(m),
		busCtx: ctx, stopBus: cancel, taking: make(map[string]bool), ends: make(map[string]*lockEnd),
		sending: make(map[string]int)}
}

// lockEnd is the end of a lock of this instance whose answer never ran,
// which two may publish: abortLock's goroutine, and a later send into the
// conversation that finds the lock first (dropLock). Each answer's frames
// are published from one goroutine (Bus.Publish), and its end once: each
// of them takes the turn before publishing, and publishes only while done
// is false.
type lockEnd struct {
	turn  chan struct{} // holds a token while one of them publishes (capacity 1)
	done  bool          // the end was published and the lock released; guarded by turn
	users int           // abortLock goroutines on it; guarded by cluster.bgMu
	ended time.Time     // when its last abortLock goroutine returned having ended it; guarded by cluster.bgMu
}

// endKept is how long a lock's end that abortLock published stays on
// record: a send that read the lock's holder before abortLock released it
// may come to dropLock after its goroutine returned, and must find the
// end published rather than publish it again.
const endKept = time.Minute

// take waits for the turn to publish, or until ctx ends (false).
func (e *lockEnd) take(ctx context.Context) bool {
	select {
	case e.turn <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

// give ends the turn.
func (e *lockEnd) give() { <-e.turn }

// startEnd records that abortLock gives up the lock of answer id. It
// forgets the ends kept longer than endKept.
func (cl *cluster) startEnd(id string) *lockEnd {
	cl.bgMu.Lock()
	defer cl.bgMu.Unlock()
	for k, e := range cl.ends {
		if e.users == 0 && time.Since(e.ended) > endKept {
			delete(cl.ends, k)
		}
	}
	e := cl.ends[id]
	if e == nil {
		e = &lockEnd{turn: make(chan struct{}, 1)}
		cl.ends[id] = e
	}
	e.users++
	return e
}

// finishEnd records that abortLock's goroutine for answer id returned,
// having published its end (ended) or not. An end published is kept on
// record for endKept (see startEnd), for a dropLock that comes later.
func (cl *cluster) finishEnd(id string, ended bool) {
	cl.bgMu.Lock()
	defer cl.bgMu.Unlock()
	e := cl.ends[id]
	if e == nil {
		return
	}
	if e.users--; e.users > 0 {
		return
	}
	if ended {
		e.ended = time.Now()
		return
	}
	delete(cl.ends, id)
}

// endOf returns the lock of answer id that abortLock gives up, or nil.
func (cl *cluster) endOf(id string) *lockEnd {
	cl.bgMu.Lock()
	defer cl.bgMu.Unlock()
	return cl.ends[id]
}

// spawn runs fn on a goroutine counted in wg, unless bus work was stopped.
func (cl *cluster) spawn(wg *sync.WaitGroup, fn func()) bool {
	cl.bgMu.Lock()
	defer cl.bgMu.Unlock()
	if cl.stopped {
		return false
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		fn()
	}()
	return true
}

// stopBusWork ends publishers, mirrors and take-overs and waits for them.
func (cl *cluster) stopBusWork() {
	cl.bgMu.Lock()
	cl.stopped = true
	cl.bgMu.Unlock()
	cl.stopBus()
	cl.pubs.Wait()
	cl.bg.Wait()
}

// spawnPublisher runs fn, the publisher of answer a (publish.go), on a
// goroutine counted in pubs, unless bus work was stopped; while it runs,
// a is among those waitPublished names as unpublished.
func (cl *cluster) spawnPublisher(a AnswerRef, fn func()) bool {
	id := a.MessageID
	cl.bgMu.Lock()
	cl.sending[id]++
	cl.bgMu.Unlock()
	done := func() {
		cl.bgMu.Lock()
		defer cl.bgMu.Unlock()
		if cl.sending[id]--; cl.sending[id] <= 0 {
			delete(cl.sending, id)
		}
	}
	if !cl.spawn(&cl.pubs, func() { defer done(); fn() }) {
		done()
		return false
	}
	return true
}

// unpublished names the local answers (message ids) whose frames or
// lock release the bus has not taken yet: their publishers, and the
// locks abortLock gives up.
func (cl *cluster) unpublished() []string {
	cl.bgMu.Lock()
	defer cl.bgMu.Unlock()
	ids := make([]string, 0, len(cl.sending))
	for id := range cl.sending {
		ids = append(ids, id)
	}
	for id, e := range cl.ends {
		if e.users > 0 && cl.sending[id] == 0 {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// busDownPoll is how often waitPublished asks the bus whether it is
// usable (Bus.Health, which hub/natsbus and MemBus answer without I/O).
const busDownPoll = 50 * time.Millisecond

// waitPublished waits until every local answer's frames were published
// and its lock released, or ctx ends (an error), or the bus is unusable
// (Bus.Health fails: no connection for its outage grace, or this
// instance's lease not renewed). What is not published then waits on a
// connection that is down, for nothing: it is given up with a warning
// naming the answers, and nothing is lost. Each answer's final state was
// handed to the batching writer (Shutdown waited for its end), so its tabs elsewhere
// find it at their next load, and its lock, which names this instance,
// is ended by another instance's take-over once this one's lease expires
// (or by the sweep of answers left streaming): no answer stays running
// for the cluster.
func (h *Hub) waitPublished(ctx context.Context) error {
	if h.solo {
		return nil
	}
	done := make(chan struct{})
	go func() { h.pubs.Wait(); close(done) }() // ends once stopBusWork has stopped the publishers
	tick := time.NewTicker(busDownPoll)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("publish the last frames to the cluster: %w", ctx.Err())
		default:
		}
		if err := h.bus.Health(ctx); err != nil && ctx.Err() == nil {
			// None named: the last publishers are returning (done is about to close).
			if ids := h.unpublished(); len(ids) > 0 {
				h.log.Warn("cluster bus unusable at shutdown: the last frames of these answers are not published (each is stored; "+
					"another instance ends its lock once this one's lease expires)", "answers", ids, "err", err)
			}
			return nil
		}
		select {
		case <-done:
			return nil
		case <-ctx.Done():
		case <-tick.C:
		}
	}
}

// retry calls fn until it succeeds or bus work stops (false), with a
// backoff from 20ms to 2s; each call gets busTimeout. An error wrapping
// ErrRefused (a frame the bus can never carry) is not retried: it is
// logged and retry returns true, so that the caller goes on without the
// call (a publisher skips the frame, whose text followers take from the
// store, and still publishes the answer's done).
func (h *Hub) retry(what string, fn func(ctx context.Context) error) bool {
	return h.retryIn(what, nil, fn)
}

// retryIn is retry with each call's context from calls (nil: one of its
// own).
func (h *Hub) retryIn(what string, calls *callContext, fn func(ctx context.Context) error) bool {
	err := h.retryUntil(h.busCtx, what, calls, fn)
	switch {
	case err == nil:
		return true
	case errors.Is(err, ErrRefused):
		h.log.Error("cluster bus refused a call for good; going on without it", "call", what, "err", err)
		return true
	}
	h.log.Error("cluster bus call abandoned at shutdown", "call", what, "err", err)
	return false
}

// retryUntil calls fn until it succeeds (nil), fails with an error
// wrapping ErrRefused (a call the bus can never take: that error, not
// retried), or ctx ends (fn's last error; a call cut by that end is not
// counted as a bus failure), with a backoff from 20ms to 2s; each call's
// context comes from calls (nil: one of its own, within busTimeout),
// within ctx.
func (h *Hub) retryUntil(ctx context.Context, what string, calls *callContext, fn func(ctx context.Context) error) error {
	wait := 20 * time.Millisecond
	for attempt := 1; ; attempt++ {
		var err error
		if calls != nil {
			err = fn(calls.get(ctx, time.Now()))
		} else {
			cctx, cancel := context.WithTimeout(ctx, busTimeout)
			err = fn(cctx)
			cancel()
		}
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return err // given up, not failed
		}
		h.busm.BusCallFailed(what)
		if errors.Is(err, ErrRefused) {
			return err
		}
		if attempt == 1 || attempt%20 == 0 {
			h.log.Warn("cluster bus call failed; retrying", "call", what, "attempt", attempt, "err", err)
		}
		if !sleep(ctx, wait) {
			return err
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// retryStore calls fn, a store call made for the cluster (ending an
// answer claimed from a dead instance), as retry does a bus call: until
// it succeeds or bus work stops (false), with the same backoff, each call
// within busTimeout. Its failures are the store's: logged as such, and
// not counted as bus call failures.
func (h *Hub) retryStore(what string, fn func(ctx context.Context) error) bool {
	wait := 20 * time.Millisecond
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(h.busCtx, busTimeout)
		err := fn(ctx)
		cancel()
		if err == nil {
			return true
		}
		if attempt == 1 || attempt%20 == 0 {
			h.log.Warn("store call failed; retrying", "call", what, "attempt", attempt, "err", err)
		}
		if !sleep(h.busCtx, wait) {
			h.log.Error("store call abandoned at shutdown", "call", what, "err", err)
			return false
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// sleep waits d, or until ctx ends; it reports whether d passed first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// callContext gives the bus calls of one goroutine, one after the other,
// contexts that leave each call at least busTimeout (and at most twice
// that): one context serves calls until less is left, instead of a timer
// and a registration with the bus's context for every call (the publisher
// makes a call per frame; that was a twentieth of a publishing instance's
// CPU).
type callContext struct {
	ctx    context.Context
	cancel context.CancelFunc
	until  time.Time
}

// get returns the context for a call starting at now.
func (c *callContext) get(parent context.Context, now time.Time) context.Context {
	if c.ctx == nil || c.until.Sub(now) < busTimeout {
		c.release()
		c.until = now.Add(2 * busTimeout)
		c.ctx, c.cancel = context.WithDeadline(parent, c.until)
	}
	return c.ctx
}

// release frees the current context, if any.
func (c *callContext) release() {
	if c.cancel != nil {
		c.cancel()
		c.ctx, c.cancel = nil, nil
	}
}

// clusterError turns a bus error into the protocol error a client gets.
func clusterError(err error) error {
	if errors.Is(err, ErrLockHeld) {
		return protocol.Errorf(protocol.CodeGenerationRunning,
			"an answer is already running in this conversation; cancel it or regenerate")
	}
	var perr *protocol.Error
	if errors.As(err, &perr) {
		return err
	}
	return protocol.Errorf(protocol.CodeUnavailable, "the cluster cannot be reached; try again in a moment")
}

// lockCluster takes the cluster-wide lock of c for a new answer, whose
// message id it picks, and keeps it in c.lock for startAnswer. patient
// waits (up to FinishTimeout) while another answer still holds it: a
// regenerate has just seen the done of the answer it replaces, whose
// instance releases the lock right after publishing that done. Any send
// waits the same way when the answer holding the lock is already stored
// as ended (a send right after a done).
func (h *Hub) lockCluster(ctx context.Context, c *conv, userID string, patient bool) error {
	if h.solo {
		return nil
	}
	ref := AnswerRef{ConversationID: c.id, MessageID: persistence.NewID(), UserID: userID, Instance: h.self}
	deadline := time.Now().Add(h.opts.FinishTimeout)
	dropped := false
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, 200*time.Millisecond) {
		actx, cancel := context.WithTimeout(ctx, busTimeout)
		holder, err := h.bus.Acquire(actx, ref)
		cancel()
		if err == nil {
			c.mu.Lock()
			c.lock = &ref
			c.mu.Unlock()
			return nil
		}
		if !errors.Is(err, ErrLockHeld) && !errors.Is(err, ErrNotSent) {
			// The bus may have taken the lock and lost its reply: left
			// alone, a lock naming this live instance would refuse every
			// send into the conversation on every other instance for as
			// long as this one lives. Release only removes the lock if it
			// names exactly ref. A call refused before anything was sent
			// (ErrNotSent: the bus is down) took no lock, and leaves
			// nothing to give up: no goroutine waits for the bus per
			// refused send.
			h.abortLock(&ref)
		}
		if errors.Is(err, ErrLockHeld) && !dropped && h.staleOwnLock(ctx, holder) {
			if err := h.dropLock(ctx, holder); err != nil {
				return clusterError(err)
			}
			dropped = true // once: a lock that stays is left to the checks below
			continue
		}
		if !patient && errors.Is(err, ErrLockHeld) && h.ended(ctx, holder) {
			// Its done was sent; its instance releases the lock right
			// after publishing that done: a send that follows a done at
			// once waits for that instead of being refused.
			patient = true
		}
		if errors.Is(err, ErrNotSent) {
			return lockNotTaken{clusterError(err)}
		}
		if !patient || !errors.Is(err, ErrLockHeld) || time.Now().After(deadline) {
			if errors.Is(err, ErrLockHeld) && !patient && h.mirrorable(holder) {
				// Tabs that began to follow the conversation while it
				// was reserved here looked up nothing (followRemote):
				// they follow the answer that holds it (not one that
				// ended, waited for: it would be replayed to them).
				h.mirrorFound(holder)
			}
			return clusterError(err)
		}
		if !sleep(ctx, wait) {
			return ctx.Err()
		}
	}
}

// lockNotTaken is lockCluster's refusal when the bus refused its Acquire
// before sending anything (ErrNotSent: the bus is down), so the lock was
// certainly not taken: the client gets err (Error, errors.As), and
// errors.Is(lockNotTaken, ErrNotSent) holds (dropCreated relies on it).
type lockNotTaken struct{ err error }

func (e lockNotTaken) Error() string   { return e.err.Error() }
func (e lockNotTaken) Unwrap() []error { return []error{e.err, ErrNotSent} }

// staleOwnLock reports whether holder, found holding the lock of a
// conversation this hub has reserved for a new answer (so it runs none
// there), is a lock this instance took for an answer that never started:
// one whose Acquire was applied by the bus but reported failed (its reply
// lost), so its send was refused before the answer's row was stored. Left
// alone it would refuse every send into the conversation for as long as
// this instance lives: it names a live instance, so no other claims it.
// An answer of this instance that ended and whose lock is being released
// has its row stored, and is waited for as any other (ended). The read
// asks for the latest state (persistence.WithLatest): a replica lagging
// behind the row would have a live answer's lock dropped.
func (h *Hub) staleOwnLock(ctx context.Context, holder AnswerRef) bool {
	if holder.Instance != h.self || holder.MessageID == "" {
		return false
	}
	_, err := h.opts.Store.Message(persistence.WithLatest(ctx), holder.UserID, holder.MessageID)
	return errors.Is(err, persistence.ErrNotFound)
}

// dropLock gives up a stale lock of this instance at once, as abortLock
// does in the background: followers that found it are told
// (FrameAborted), then it is released. While abortLock's goroutine gives
// the same lock up, they take turns (lockEnd): the first publishes the
// end and releases the lock, the other does nothing, so the answer's
// frames never come from two goroutines at once, nor its end twice.
func (h *Hub) dropLock(ctx context.Context, lock AnswerRef) (err error) {
	actx, cancel := context.WithTimeout(ctx, busTimeout)
	defer cancel()
	if e := h.endOf(lock.MessageID); e != nil {
		if !e.take(actx) {
			return fmt.Errorf("wait for the lock of %s to be given up: %w", lock.MessageID, actx.Err())
		}
		defer e.give()
		if e.done {
			return nil
		}
		defer func() { e.done = err == nil }()
	}
	h.log.Warn("releasing a lock of this instance for an answer that never started", "conversation", lock.ConversationID,
		"message", lock.MessageID)
	if err := h.bus.Publish(actx, lock, abortedFrame(lock)); err != nil {
		return err
	}
	return h.bus.Release(actx, lock)
}

// ended reports whether the answer holding a conversation's lock is
// stored as ended (its final state is stored before its done is sent),
// read as the latest state (persistence.WithLatest): a send right after a
// done is not refused for a replica lagging behind that state.
func (h *Hub) ended(ctx context.Context, holder AnswerRef) bool {
	if holder.MessageID == "" {
		return false
	}
	m, err := h.opts.Store.Message(persistence.WithLatest(ctx), holder.UserID, holder.MessageID)
	return err == nil && m.Status != persistence.StatusStreaming
}

// lockedAnswerID is the message id the cluster lock of c was taken for, or "".
func (c *conv) lockedAnswerID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lock == nil {
		return ""
	}
	return c.lock.MessageID
}

// abortedFrame tells the followers of answer a that it never started, or
// that its message is gone (FrameAborted).
func abortedFrame(a AnswerRef) *protocol.Frame {
	return &protocol.Frame{Type: FrameAborted, ConversationID: a.ConversationID, MessageID: a.MessageID}
}

// abortLock gives up a lock whose answer never ran: its Acquire was
// reported failed (the bus may have applied it and lost the reply), the
// send was refused before its answer's row was inserted, or that insert
// was reported failed (unstarted, which leaves a row the store may have
// written all the same to the sweep of late ends). Nothing of the answer
// was published, so followers that found the lock only have to stop
// following it: in the background they are told (FrameAborted), then the
// lock is released, with no store call, so that a store outage neither
// holds the conversation nor keeps a goroutine per failed send (nor a
// shutdown waiting for them). A send that finds the lock meanwhile gives
// it up at once (dropLock); the two take turns, and the end is published
// by whichever comes first.
func (h *Hub) abortLock(lock *AnswerRef) {
	if lock == nil {
		return
	}
	a := *lock
	e := h.startEnd(a.MessageID)
	if !h.spawn(&h.pubs, func() {
		ended := false
		defer func() { h.finishEnd(a.MessageID, ended) }()
		if !e.take(h.busCtx) {
			return
		}
		defer e.give()
		if !e.done {
			e.done = h.publishEnd(a, []*protocol.Frame{abortedFrame(a)})
		}
		ended = e.done
	}) {
		h.finishEnd(a.MessageID, false)
	}
}

// stopRemote stops the answer running in a conversation on another
// instance (kind says why) and waits for its done frame, or ctx. When
// messageID is not "", it stops only that answer: another one running
// there (or none) is left alone. The control names the answer the lock
// names (AnswerRef.MessageID) and its instance stops only that one, so an
// answer started there since is not stopped either.
//
// The lookup of the running answer (lookupToStop) is tried again until it
// succeeds or ctx ends, a few times only for a deletion or a regenerate;
// a bus that is down (ErrNotSent) is not asked again. The control is
// tried again on any error but ErrRefused until it succeeds or ctx ends (a
// NATS leader election, an instance reconnecting: sendStop), and is sent
// again every controlAgain until the answer's done comes (one that came
// while the answer was being prepared there may have found nothing to
// stop). When neither got through before ctx ended, the answer may
// run on: the error is a stopUnsent, which wraps unavailable. An error
// that is not one means the stop reached the answer's instance, or found
// it gone from the bus (ErrInstanceGone: the take-over ends the answer
// once that instance's lease expires, which may be after ctx ends), but
// its done did not come.
func (h *Hub) stopRemote(ctx context.Context, convID string, kind ControlKind, messageID string) error {
	if h.solo {
		return nil
	}
	a, ok, err := h.lookupToStop(ctx, convID, kind)
	if err != nil {
		h.log.Warn("look up the answer to stop", "conversation", convID, "err", err)
		return stopUnsent{clusterError(err)}
	}
	if !ok || a.Instance == h.self || messageID != "" && a.MessageID != messageID {
		return nil
	}
	sctx, stopSending := context.WithCancel(ctx)
	defer stopSending()
	followed := make(chan error, 1)
	go func() {
		defer stopSending() // its done came (or the follow failed): nothing more to send
		followed <- h.bus.Follow(ctx, a, func(*protocol.Frame) {})
	}()
	reach := h.sendStop(sctx, a, kind)
	err = <-followed // ends with ctx at the latest
	switch {
	case err == nil:
		return nil
	case reach == stopLost:
		h.log.Warn("stop a remote answer", "message", a.MessageID, "instance", a.Instance, "err", err)
		return stopUnsent{protocol.Errorf(protocol.CodeUnavailable,
			"the server running this answer did not get the stop; try again in a moment")}
	case ctx.Err() != nil:
		return fmt.Errorf("wait for the running answer to stop: %w", ctx.Err())
	}
	return clusterError(err)
}

// lookupToStop is stopRemote's lookup of the answer running in convID.
// A user's cancel (ControlCancel) asks again until ctx ends: the stop is
// all it is for. A deletion or a regenerate (ControlDelete,
// ControlSupersede) asks as a following tab does (tryFew: lookupAttempts
// times within busTimeout), as the request, or the WebSocket worker
// handling it, waits on it: a deletion goes on without it (its
// UserEvent.Deleted ends the answer where it runs, once the store deleted
// the conversation: busHandler.UserEvent), a regenerate is refused. A bus
// that is down (ErrNotSent) is not asked again.
func (h *Hub) lookupToStop(ctx context.Context, convID string, kind ControlKind) (a AnswerRef, ok bool, err error) {
	var down error
	lookup := func(ctx context.Context) (err error) {
		a, ok, err = h.bus.Running(ctx, convID)
		if errors.Is(err, ErrNotSent) {
			down = err // the bus is down, not failing for a moment: refused at once, as a send is
			return nil
		}
		return err
	}
	const what = "look up the running answer"
	if kind == ControlCancel {
		err = h.retryUntil(ctx, what, nil, lookup)
	} else {
		err = h.tryFew(ctx, what, lookup)
	}
	return a, ok, cmp.Or(err, down)
}

// controlAgain is how long stopRemote waits for the done of an answer it
// sent a stop to before it sends that stop again.
const controlAgain = 500 * time.Millisecond

// stopReach is how far the stops sendStop sent got.
type stopReach int

const (
	// stopLost: none got through, the answer may run on.
	stopLost stopReach = iota
	// stopOrphaned: its instance was not on the bus (ErrInstanceGone): it
	// died, and the take-over ends the answer once its lease expires, or
	// it reconnects and gets a later one.
	stopOrphaned
	// stopSent: its instance got one.
	stopSent
)

// sendStop sends the control of kind for answer a to its instance until
// ctx ends, again every controlAgain once it got through (each is tried
// again until it does); it reports how far they got.
func (h *Hub) sendStop(ctx context.Context, a AnswerRef, kind ControlKind) (reach stopReach) {
	for {
		if err := h.retryUntil(ctx, "stop a remote answer", nil, func(ctx context.Context) error {
			err := h.bus.Control(ctx, a, kind)
			if errors.Is(err, ErrInstanceGone) {
				reach = max(reach, stopOrphaned)
			}
			return err
		}); err != nil {
			return reach
		}
		reach = stopSent
		if !sleep(ctx, controlAgain) {
			return reach
		}
	}
}

// stopUnsent is stopRemote's error when its stop may not have reached the
// instance running the answer, which may then run on: the client gets err
// (a protocol error, unavailable) and asks again.
type stopUnsent struct{ err error }

func (e stopUnsent) Error() string { return e.err.Error() }
func (e stopUnsent) Unwrap() error { return e.err }

// remoteRunningID is the id of the answer the cluster lock of a
// conversation names, or "" (also when the bus cannot say, and when
// ownerID is not empty and does not own the conversation). The lookup
// ends with ctx, and within busTimeout.
func (h *Hub) remoteRunningID(ctx context.Context, convID, ownerID string) string {
	if h.solo {
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, busTimeout)
	defer cancel()
	a, ok, err := h.bus.Running(ctx, convID)
	if err != nil || !ok || ownerID != "" && a.UserID != ownerID {
		return ""
	}
	return a.MessageID
}

// broadcast sends a user event to the other instances; a failure is
// logged (this instance has delivered it already).
func (h *Hub) broadcast(ev UserEvent) {
	if h.solo {
		return
	}
	ctx, cancel := context.WithTimeout(h.busCtx, busTimeout)
	defer cancel()
	if err := h.bus.Broadcast(ctx, ev); err != nil {
		h.log.Warn("broadcast to the cluster", "user", ev.UserID, "err", err)
	}
}

// BusHealth reports whether the cluster bus is usable (nil with one instance).
func (h *Hub) BusHealth(ctx context.Context) error {
	if h.solo {
		return nil
	}
	return h.bus.Health(ctx)
}

// Drain prepares a rolling restart: it refuses new answers (unavailable)
// but lets the running ones go on, streaming to their followers here and,
// over the bus, on other instances (where this instance's tabs reconnect),
// until they end or ctx ends. Then it ends what still runs as Shutdown
// does (stored as interrupted, done sent) and waits up to FinishTimeout
// for that and for the last frames to be published (not once the bus is
// unusable: see waitPublished).
func (h *Hub) Drain(ctx context.Context) error {
	h.mu.Lock()
	h.closing = true
	h.mu.Unlock()
	_ = waitctx.Wait(ctx, &h.work) // the grace ending is not an error: Shutdown ends the rest
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.opts.FinishTimeout)
	defer cancel()
	return h.Shutdown(sctx)
}

// EndedElsewhere stops the answer producing message messageID, if it runs
// here: the store refused its checkpoint because the message is no longer
// streaming, which means another instance took the answer over while this
// one was cut off from the cluster, or is gone (its conversation was
// deleted). Wire it to persistence/batch Options.OnFenced. Producing more would only show this instance's tabs
// text that is never stored; the answer's done reports the stored state
// (see generation.fenced). It does no I/O and never blocks.
func (h *Hub) EndedElsewhere(messageID string) {
	var g *generation
	h.mu.Lock()
	for _, c := range h.convs {
		c.mu.Lock()
		if c.gen != nil && c.gen.msg.ID == messageID {
			g = c.gen
		}
		c.mu.Unlock()
		if g != nil {
			break
		}
	}
	h.mu.Unlock()
	if g != nil {
		h.log.Warn("the store refused the answer's text (ended by another instance, or deleted): stopping it here",
			"generation", g.id, "user", g.msg.OwnerID, "message", messageID)
		g.cancel(errEndedElsewhere)
	}
}

// busHandler is the hub as its Bus sees it.
type busHandler struct{ h *Hub }

// UserEvent implements BusHandler.
func (b busHandler) UserEvent(ev UserEvent) {
	if ev.Deleted != "" {
		// Before its frame reaches the tabs here, as on the deleting
		// instance (ConversationChanged); not waited for: bus events
		// are not held up, and the answer's done follows at once.
		b.h.haltDeleted(ev.UserID, ev.Deleted)
	}
	switch {
	case ev.Frame != nil:
		b.h.deliverRemote(ev) // a conversation frame is checked first (convframes.go)
	case ev.Close != nil:
		b.h.closeUserAs(ev.UserID, *ev.Close)
		if ev.Close.Reason == protocol.ReasonAccountDeleted {
			b.h.titles.abortUser(ev.UserID) // see EndUser
			b.h.haltUser(ev.UserID)         // not waited for, as a deletion's
		}
	case ev.Started != nil:
		b.h.remoteStarted(*ev.Started)
	}
	if ev.Deleted != "" {
		b.h.titles.abortOwned(ev.Deleted, ev.UserID)
	}
}

// Control implements BusHandler. A kind it does not know stops the answer
// as ControlCancel does. ControlDelete also aborts the conversation's
// title request running here, once the answer is stopped (it then asks
// for none), whether or not the answer still runs here.
func (b busHandler) Control(a AnswerRef, kind ControlKind) {
	c := b.h.lookup(a.ConversationID)
	if c != nil {
		b.stop(c, a, controlCause(kind))
	}
	if kind == ControlDelete && (c == nil || c.owner == a.UserID) {
		b.h.titles.abort(a.ConversationID)
	}
}

// controlCause is the cause an answer stopped by a control of kind ends with.
func controlCause(kind ControlKind) error {
	switch kind {
	case ControlSupersede:
		return errSuperseded
	case ControlDelete:
		return errDeleting
	}
	return errCancelled
}

// stop ends answer a of c with cause, or halts it as it starts when it is
// still being prepared; another answer of c is left alone.
func (b busHandler) stop(c *conv, a AnswerRef, cause error) {
	c.mu.Lock()
	g := c.gen
	if g == nil && c.lock != nil && c.lock.MessageID == a.MessageID {
		c.halt = cause // still being prepared: stopped as soon as it runs
	}
	c.mu.Unlock()
	if g != nil && g.msg.ID == a.MessageID {
		g.cancel(cause)
	}
}

// haltLocked applies a stop that came while g was being prepared; c.mu is held.
func haltLocked(c *conv, g *generation) {
	if c.halt != nil {
		g.cancel(c.halt)
		c.halt = nil
	}
}

// Orphaned implements BusHandler.
func (b busHandler) Orphaned(a AnswerRef) {
	h := b.h
	if a.Instance == h.self || !h.startTakeOver(a.MessageID) {
		return
	}
	if !h.spawn(&h.bg, func() {
		defer h.endTakeOver(a.MessageID)
		h.takeOver(a)
	}) {
		h.endTakeOver(a.MessageID)
	}
}

// startTakeOver records that this instance takes answer id over; false
// when it already does (the bus reported the answer again meanwhile): a
// second take-over would win the same claim (Bus.Claim) and end the
// answer twice.
func (cl *cluster) startTakeOver(id string) bool {
	cl.bgMu.Lock()
	defer cl.bgMu.Unlock()
	if cl.taking[id] {
		return false
	}
	cl.taking[id] = true
	return true
}

// endTakeOver records that the take-over of answer id ended.
func (cl *cluster) endTakeOver(id string) {
	cl.bgMu.Lock()
	defer cl.bgMu.Unlock()
	delete(cl.taking, id)
}

// takeOver ends the answer of a dead instance, if this instance wins its
// lock while that instance's lease is still expired (Bus.Claim): stored
// as interrupted with its last checkpoint's text, a done frame to its
// followers everywhere, the lock released.
func (h *Hub) takeOver(orphan AnswerRef) {
	var mine AnswerRef
	var claimErr error
	if !h.retry("claim orphaned answer", func(ctx context.Context) error {
		mine, claimErr = h.bus.Claim(ctx, orphan)
		if errors.Is(claimErr, ErrLockHeld) {
			return nil // another instance won, the lock is gone, or its owner renewed its lease
		}
		return claimErr
	}) || claimErr != nil {
		return
	}
	frames := h.interruptOrphan(mine, "The server answering stopped; the text so far is kept.")
	if frames != nil {
		h.busm.AnswerTakenOver()
		h.publishEnd(mine, frames)
	}
}

// publishEnd publishes the frames that end answer a, whose lock this
// instance holds and whose generation runs nowhere (interruptOrphan),
// then releases the lock. It gives up only when bus work stops (false).
func (h *Hub) publishEnd(a AnswerRef, frames []*protocol.Frame) bool {
	for _, f := range frames {
		if !h.retry("publish the end of an answer that runs nowhere", func(ctx context.Context) error { return h.bus.Publish(ctx, a, f) }) {
			return false
		}
	}
	return h.retry("release the lock of an answer that runs nowhere", func(ctx context.Context) error { return h.bus.Release(ctx, a) })
}

// interruptOrphan marks an answer whose lock this instance claimed from a
// dead instance interrupted in the store, if it still streams, and
// returns the frames that end its stream: the stored text (FrameStored, so followers get what
// the dead instance stored but had not published) and its done, or
// FrameAborted when its message was never stored. nil: bus work stopped.
func (h *Hub) interruptOrphan(a AnswerRef, reason string) []*protocol.Frame {
	in, ok := h.opts.Store.(MessageInterrupter)
	if !ok {
		h.log.Error("the store cannot interrupt one message; an orphaned answer stays streaming",
			"message", a.MessageID)
		return nil
	}
	var m persistence.Message
	var gone bool
	if !h.retryStore("interrupt an orphaned answer", func(ctx context.Context) error {
		var err error
		m, err = in.InterruptMessage(ctx, a.UserID, a.MessageID, reason, time.Now())
		gone = errors.Is(err, persistence.ErrNotFound)
		if gone {
			return nil
		}
		return err
	}) {
		return nil
	}
	if gone {
		return []*protocol.Frame{abortedFrame(a)}
	}
	h.log.Info("answer that runs nowhere ended", "message", a.MessageID, "conversation", a.ConversationID,
		"status", m.Status, "bytes", len(m.Content), "reason", reason)
	return []*protocol.Frame{storedFrame(m), protocol.Done(m, storedError(m))}
}
