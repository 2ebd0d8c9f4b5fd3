package natsbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"chatd/hub"
	"chatd/internal/lograte"
)

// opTimeout bounds one NATS round trip when the caller's context allows more.
const opTimeout = 5 * time.Second

// Bus is a hub.Bus over NATS JetStream; see the package doc. Its methods
// are safe for concurrent use.
type Bus struct {
	opts Options
	log  *slog.Logger
	id   string
	// asyncLog is log rate-limited (lograte: each error once per
	// lograte.DefaultEvery, then with the count of those left out), for
	// the errors nats.go reports apart from any call (asyncError).
	asyncLog *slog.Logger
	nc       *nats.Conn
	js       jetstream.JetStream
	h        atomic.Pointer[hub.BusHandler]

	res     atomic.Pointer[resources] // set once JetStream is provisioned
	provErr atomic.Pointer[error]     // why it is not yet
	conn    connState
	// attempts throttles the log of failed connection attempts.
	attempts attemptLog
	lease    *leaseView
	locks    *lockView
	// watchers mirror the leases and the locks; set by run before it
	// starts judgeLoop, and read only by it and by the renewals, which
	// run on run's goroutine (relostLeases).
	watchers []*watched
	live     *liveFrames // the follows here, each subscribed to its answer's frames
	replies  *replyMux   // answers of direct gets
	pubs     *publishers // numbering of the answers published here
	held     *heldLocks  // the conversation locks held here
	// reconnects tells the frames in flight that the connection came back.
	reconnects reconnects
	tally      *connTally // the connections held here per user (Limits)
	// windows is the bucket of the login and registration limits, once
	// bound (Windows); windowsDown says its absence was logged.
	windows     atomic.Pointer[jetstream.KeyValue]
	windowsDown atomic.Bool
	// directOffUntil (unix ns) pauses direct gets after one went unanswered.
	directOffUntil atomic.Int64
	eventSeq       atomic.Uint64 // numbers the user events broadcast here
	// eventOrigin starts the id of every user event broadcast here: the
	// instance id and a random part new for each Bus, so that a process
	// started with the id of one that stopped never repeats its event ids
	// (receivers and JetStream's duplicate window would drop them).
	eventOrigin string
	seen        recentIDs // user events handed to the hub
	// handing is held while a user event is claimed (seen) and handed to
	// the hub, so that events reaching this instance twice (core NATS
	// and the events stream, read by two goroutines) are handed over in
	// the order they were claimed: an event claimed by one goroutine is
	// not overtaken by a later one the other goroutine claims meanwhile.
	handing    sync.Mutex
	eventsRead atomic.Int64 // user events read from the events stream
	// out holds the user events broadcast while the bus is down, until
	// the connection is back (outbox.go).
	out *outbox
	// eventsNow is the events stream as judgeLoop last saw it (only its
	// goroutine uses it, see checkEvents); eventsRestart hands a stream
	// made again to consumeEvents (capacity 1).
	eventsNow     eventsStream
	eventsRestart chan eventsStream
	// limitFailures counts the limit calls that failed (LimitFailures).
	limitFailures atomic.Int64
	// idleAfter is how long a follow hears nothing before it checks
	// JetStream for a lost last frame (followIdle; tests shorten it).
	idleAfter time.Duration
	// ackWait is how long a frame's JetStream acknowledgement is waited
	// for before the frame is sent again (opTimeout; tests shorten it).
	ackWait time.Duration
	// dropAck, set by tests, loses the acknowledgements it returns true
	// for, as a network fault would.
	dropAck atomic.Pointer[func(*nats.Msg) bool]
	// checkHook, set by tests, runs at the start of each check of the
	// watchers (a slow JetStream API, played).
	checkHook atomic.Pointer[func()]
	// repairHook, set by tests, runs after each repair of the connection
	// counts (Limits.repairLoop).
	repairHook atomic.Pointer[func()]
	// sweepHook, set by tests, runs after each round of the sweep of the
	// connection counts (Limits.sweepLoop) with the keys it read.
	sweepHook atomic.Pointer[func(read int)]
	// boundHook, set by tests, runs in strongKV once the bucket was found
	// or created, before its stream is read (another instance changing
	// the bucket meanwhile, played).
	boundHook atomic.Pointer[func(bucket string)]
	// leaveHook, set by tests, runs after each failed attempt of Close to
	// delete the lease (deleteLease), before the pause that follows it.
	leaveHook atomic.Pointer[func(err error)]
	// answersHook, set by tests, runs in checkAnswers once the answer
	// stream was found gone, before it is set up again.
	answersHook atomic.Pointer[func()]
	// answersGone says checkAnswers found the answer stream gone and has
	// not set it up again yet (Health fails meanwhile).
	answersGone atomic.Bool

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// closed is closed once the connection is (its ClosedHandler).
	closed    chan struct{}
	closeOnce sync.Once
	// closing is set once Close or Kill closes the connection: a close
	// without it is nats.go giving up, which the ClosedHandler logs.
	closing atomic.Bool
}

var _ hub.Bus = (*Bus)(nil)

// New connects to NATS and starts the bus's background work: provisioning
// the buckets and the stream (retried until NATS answers), renewing the
// lease and watching the other instances. It returns at once even when NATS
// is unreachable; Health says when the bus is usable. Close ends it.
func New(opts Options) (*Bus, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	b := &Bus{opts: opts, id: opts.InstanceID,
		log:  opts.Logger.With(slog.String("component", "natsbus"), slog.String("instance", opts.InstanceID)),
		live: newLiveFrames(), replies: newReplyMux(), pubs: newPublishers(), held: newHeldLocks(), tally: newConnTally(),
		idleAfter: followIdle, ackWait: opTimeout, eventOrigin: opts.InstanceID + "." + randomHex(4) + ".",
		eventsRestart: make(chan eventsStream, 1), closed: make(chan struct{}), out: newOutbox()}
	b.asyncLog = lograte.Logger(b.log)
	b.conn.init(opts.OutageGrace)
	b.lease = newLeaseView(opts.InstanceID, opts.LeaseTTL, opts.SessionKeys, b.log)
	b.lease.host = opts.clock
	b.locks = newLockView(b.lease)
	nc, err := nats.Connect(strings.Join(opts.URLs, ","), b.natsOptions()...)
	if err != nil {
		return nil, fmt.Errorf("natsbus: connect to %s: %w", strings.Join(opts.URLs, ","), err)
	}
	b.nc = nc
	if nc.IsConnected() {
		b.conn.up()
	}
	if b.js, err = jetstream.New(nc, b.jetStreamOptions()...); err != nil {
		b.closing.Store(true)
		nc.Close()
		return nil, fmt.Errorf("natsbus: jetstream: %w", err)
	}
	if err := b.subscribe(); err != nil {
		b.closing.Store(true)
		nc.Close()
		return nil, err
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.wg.Add(2)
	go func() {
		defer b.wg.Done()
		b.run(b.ctx)
	}()
	go func() {
		defer b.wg.Done()
		b.outboxLoop(b.ctx)
	}()
	return b, nil
}

// jetStreamOptions are those of the JetStream context, which stores the
// user events (Broadcast): a failed store is logged, and an
// acknowledgement that never comes (the events stream lost, or without a
// leader, while core NATS still carries the events) is given up after
// eventAckWait, so that the events waiting for one do not pile up until
// Broadcast stalls.
func (b *Bus) jetStreamOptions() []jetstream.JetStreamOpt {
	o := []jetstream.JetStreamOpt{
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, err error) {
			b.log.Warn("store a user event", slog.String("subject", m.Subject), slog.Any("err", err))
		}),
		jetstream.WithPublishAsyncTimeout(b.opts.eventAckWait),
	}
	if b.opts.eventsPending > 0 {
		o = append(o, jetstream.WithPublishAsyncMaxPending(b.opts.eventsPending))
	}
	return o
}

func (b *Bus) natsOptions() []nats.Option {
	o := []nats.Option{
		nats.Name("chatd " + b.id),
		nats.MaxReconnects(-1),
		// Go on after the same server refused the credentials twice in
		// a row (nats.go closes the connection for good then): the
		// operator puts a wrong password or hash right, or renews the
		// credentials file, and this instance joins at its next attempt.
		nats.IgnoreAuthErrorAbort(),
		// What this instance publishes never comes back to it: its own
		// user events are not for it, and its answers' frames reach its
		// own follows from Publish (not at all otherwise: every instance
		// would receive every frame it publishes).
		nats.NoEcho(),
		nats.RetryOnFailedConnect(true),
		nats.CustomReconnectDelay(backoff),
		nats.PingInterval(5 * time.Second),
		nats.MaxPingsOutstanding(2),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			b.conn.lost()
			if !nc.IsClosed() {
				b.log.Warn("NATS connection lost", slog.Any("err", err))
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			b.conn.up()
			b.attempts.connected()
			b.live.resyncAll()  // frames published meanwhile were not received
			b.reconnects.fire() // acknowledgements due meanwhile may be lost: frames in flight go again
			b.out.wake()        // user events broadcast while down go now
			b.log.Info("NATS connection back", slog.String("server", nc.ConnectedUrlRedacted()))
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) { b.asyncError(sub, err) }),
		// Every failed attempt to connect or reconnect, the first
		// connection's included: why this instance cannot join (servers
		// unreachable, a wrong password, a certificate refused).
		nats.ReconnectErrHandler(func(_ *nats.Conn, err error) {
			if skipped, ok := b.attempts.failed(err, time.Now()); ok {
				b.log.Warn("NATS connection attempt failed", slog.Any("err", err), slog.Int("failures_not_logged", skipped))
			}
		}),
		nats.ConnectHandler(func(*nats.Conn) {
			b.conn.up()
			b.attempts.connected()
			b.out.wake()
		}),
		nats.ClosedHandler(func(nc *nats.Conn) {
			b.conn.lost()
			if !b.closing.Load() {
				b.log.Error("NATS connection closed for good: this instance stays unavailable until restarted",
					slog.Any("err", nc.LastError()))
			}
			b.closeOnce.Do(func() { close(b.closed) })
		}),
	}
	switch {
	case b.opts.CredsFile != "":
		o = append(o, nats.UserCredentials(b.opts.CredsFile))
	case b.opts.NKeySeedFile != "":
		o = append(o, nkeyFromSeed(b.opts.NKeySeedFile))
	case b.opts.User != "":
		o = append(o, nats.UserInfo(b.opts.User, b.opts.Password))
	case b.opts.Token != "":
		o = append(o, nats.Token(b.opts.Token))
	}
	if b.opts.TLSCAFile != "" {
		o = append(o, nats.RootCAs(b.opts.TLSCAFile))
	}
	if b.opts.TLSCertFile != "" {
		o = append(o, nats.ClientCert(b.opts.TLSCertFile, b.opts.TLSKeyFile))
	}
	return append(o, b.opts.clientOptions...)
}

// asyncError handles an error nats.go reports apart from any call: a
// subscription that dropped messages (a slow consumer), a permission
// violation. Its line names the subscription's subject, and goes through
// asyncLog: nats.go reports a slow consumer again for each message it
// drops after one got through, hundreds a second from one follow a little
// behind, and a permission violation once per publish. The lines of one
// error (slow consumers of several follows alike) are counted together:
// the subject named is that of the one logged.
func (b *Bus) asyncError(sub *nats.Subscription, err error) {
	if sub == nil { // a permission violation names its subject in err
		b.asyncLog.Warn("NATS error", slog.Any("err", err))
		return
	}
	if errors.Is(err, nats.ErrSlowConsumer) {
		b.live.slow(sub) // frames of a follow were dropped: it reads them from JetStream
	}
	b.asyncLog.Warn("NATS error", slog.String("subject", sub.Subject), slog.Any("err", err))
}

// nkeyFromSeed authenticates with the user NKey seed in path; the seed is
// read again to sign each connection's challenge.
func nkeyFromSeed(path string) nats.Option {
	return func(o *nats.Options) error {
		opt, err := nats.NkeyOptionFromSeed(path)
		if err != nil {
			return fmt.Errorf("natsbus: NKey seed %s: %w", path, err)
		}
		return opt(o)
	}
}

// CheckNKeySeed reports whether path holds a user NKey seed, as
// Options.NKeySeedFile needs.
func CheckNKeySeed(path string) error {
	_, err := nats.NkeyOptionFromSeed(path)
	return err
}

// backoff is the wait before reconnect attempt n: 50ms doubling up to 2s.
func backoff(attempts int) time.Duration {
	d := 50 * time.Millisecond << min(attempts, 6)
	return min(d, 2*time.Second)
}

// InstanceID implements hub.Bus.
func (b *Bus) InstanceID() string { return b.id }

// Attach implements hub.Bus.
func (b *Bus) Attach(h hub.BusHandler) { b.h.Store(&h) }

func (b *Bus) handler() hub.BusHandler {
	if p := b.h.Load(); p != nil {
		return *p
	}
	return nil
}

// Health implements hub.Bus: nil when connected (or lost for less than
// OutageGrace), provisioned, this instance's lease renewed within
// LeaseTTL and seen in its bucket (the NATS servers' time is known:
// natsNow), and the answer stream not found gone (checkAnswers).
func (b *Bus) Health(context.Context) error {
	if err := b.state(); err != nil {
		return err
	}
	if age := b.lease.sinceRenewed(); age > b.opts.LeaseTTL {
		return fmt.Errorf("natsbus: %w: lease of %s not renewed for %s", hub.ErrBusUnavailable, b.id, age.Round(time.Millisecond))
	}
	if _, known := b.lease.natsNow(); !known {
		return fmt.Errorf("natsbus: %w: the lease of %s not seen in its bucket yet", hub.ErrBusUnavailable, b.id)
	}
	return b.answersErr()
}

// Instances is how many instances of the cluster hold a live lease, this
// one included, as this instance's view of the leases bucket has them (0
// before this instance saw its own lease).
func (b *Bus) Instances() int { return b.lease.live() }

// Alone reports whether this instance judges itself the only live
// instance of the cluster: every other instance's lease seen is expired,
// and this instance judges (it has renewed its lease without a break for
// a TTL, so a live instance would have renewed its own since). Unlike
// Instances, false while it does not judge (just started, its renewals
// resumed after an outage or a step of the leases stream's clock for
// less than a TTL): then a peer whose lease looks old may be live still.
func (b *Bus) Alone() bool { return b.lease.alone() }

// SessionKeyConflicts is how many instances with a live lease would
// refuse this instance's session tokens or sign tokens it refuses (see
// SessionKeys); 0 when they all agree.
func (b *Bus) SessionKeyConflicts() int { return b.lease.keyConflicts() }

// LeaseClockSteps is how many times the leases stream's clock was found
// to step (its leader moved to a NATS server whose clock differs; see
// leaseclock.go): each time, this instance judged no other dead for a
// lease TTL. More than none means the NATS servers' clocks disagree.
func (b *Bus) LeaseClockSteps() int { return b.lease.clockSteps() }

// LimitFailures is how many cluster-wide limit checks and updates (Limits,
// Windows) failed since the start, NATS not answering: each time the
// request was held to this instance's own limit only. A repair of a
// connection count whose update failed (repairConns) counts too, each
// time it fails again.
func (b *Bus) LimitFailures() int { return int(b.limitFailures.Load()) }

// limitResult counts err, a limit call's result, in LimitFailures and
// returns it.
func (b *Bus) limitResult(err error) error {
	if err != nil {
		b.limitFailures.Add(1)
	}
	return err
}

// usable returns nil, or an error wrapping hub.ErrBusUnavailable (state)
// when the connection is down or JetStream is not provisioned yet. Every
// call checks it before it sends anything, so its refusal also wraps
// hub.ErrNotSent: the call had no effect (an Acquire took no lock).
func (b *Bus) usable() error {
	if err := b.state(); err != nil {
		return fmt.Errorf("%w (%w)", err, hub.ErrNotSent)
	}
	return nil
}

// state returns nil, or an error wrapping hub.ErrBusUnavailable when the
// connection is down or JetStream is not provisioned yet.
func (b *Bus) state() error {
	if err := b.conn.err(); err != nil {
		return err
	}
	if b.res.Load() == nil {
		return fmt.Errorf("natsbus: %w: JetStream not set up yet: %v", hub.ErrBusUnavailable, b.provisionErr())
	}
	return nil
}

// Close stops renewing, deletes this instance's lease (its answers must have
// ended: the hub drains before), and closes the connection, returning
// once it is closed (or ctx ends): what was published last (user events
// broadcast during the shutdown, and those still in the outbox if the
// connection is up) is flushed to NATS before the process exits.
func (b *Bus) Close(ctx context.Context) error {
	b.cancel()
	b.wg.Wait()
	b.flushOutbox()
	if n := b.out.len(); n > 0 {
		b.log.Warn("closing without a NATS connection: user events broadcast while cut off are lost", slog.Int("events", n))
	}
	if r := b.res.Load(); r != nil && b.nc.IsConnected() {
		b.deleteLease(ctx, r)
	}
	// Drain closes at once, without flushing, a connection being
	// re-established: there is nothing to flush to.
	b.closing.Store(true)
	err := b.nc.Drain()
	if err != nil && !errors.Is(err, nats.ErrConnectionClosed) && !errors.Is(err, nats.ErrConnectionReconnecting) {
		return fmt.Errorf("natsbus: close the NATS connection: %w", err)
	}
	select {
	case <-b.closed:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("natsbus: close the NATS connection: %w", ctx.Err())
	}
}

// leaveAttemptTimeout bounds one attempt to delete the lease at Close: a
// request lost while JetStream elects a leader is tried again soon.
const leaveAttemptTimeout = time.Second

// deleteLease deletes this instance's lease, so the others count it gone
// at once rather than a lease TTL after its last renewal. It tries again
// while JetStream does not answer (a leader being elected after a NATS
// node restarted), within ctx and at most a lease TTL: by then the lease
// has expired by itself. A lease it could not delete is logged, not an
// error: the instance has drained, so expiring is all the lease has left
// to do.
func (b *Bus) deleteLease(ctx context.Context, r *resources) {
	ctx, cancel := context.WithTimeout(ctx, b.opts.LeaseTTL)
	defer cancel()
	for attempt := 0; ; attempt++ {
		actx, acancel := context.WithTimeout(ctx, leaveAttemptTimeout)
		err := r.leases.Delete(actx, token(b.id))
		acancel()
		if err == nil {
			return
		}
		if hook := b.leaveHook.Load(); hook != nil {
			(*hook)(err)
		}
		if wait(ctx, backoff(attempt)); ctx.Err() != nil {
			b.log.Warn("could not delete the lease: the other instances count this one gone a lease TTL after its last renewal",
				slog.Int("attempts", attempt+1), slog.Any("err", err))
			return
		}
	}
}

// Kill drops the connection at once without deleting the lease or ending
// anything, as a crashed process would (for tests of crash recovery).
func (b *Bus) Kill() {
	b.cancel()
	b.closing.Store(true)
	b.nc.Close()
	b.wg.Wait()
}

// opContext bounds one round trip by opTimeout within ctx; a ctx that
// ends sooner is used as it is (the hub bounds each of its calls already,
// and a context with a timer per frame published was measurable).
func opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= opTimeout {
		return ctx, noCancel
	}
	return context.WithTimeout(ctx, opTimeout)
}

func noCancel() {}

// unavailable wraps err, a failed NATS call, as hub.ErrBusUnavailable.
func unavailable(what string, err error) error {
	return fmt.Errorf("natsbus: %s: %w: %w", what, hub.ErrBusUnavailable, err)
}

// connState tracks the connection: the bus counts as down once it has been
// lost for longer than grace.
type connState struct {
	grace  time.Duration
	mu     sync.Mutex
	lostAt time.Time // zero while connected
	downCh chan struct{}
	timer  *time.Timer
	armed  uint64 // timers armed so far: which one is current
}

func (c *connState) init(grace time.Duration) {
	c.grace = grace
	c.downCh = make(chan struct{})
	c.lost() // not connected yet
}

func (c *connState) lost() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.lostAt.IsZero() && c.timer != nil {
		return
	}
	if c.lostAt.IsZero() {
		c.lostAt = time.Now()
	}
	ch := c.downCh
	c.armed++
	armed := c.armed
	c.timer = time.AfterFunc(c.grace, func() { c.expire(armed, ch) })
}

// expire declares the loss whose timer was the armed-th down (closes ch),
// unless the connection came back since: a timer that fired as up
// stopped it could run after a new loss and declare that one down
// before its grace.
func (c *connState) expire(armed uint64, ch chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.armed == armed && !c.lostAt.IsZero() && c.downCh == ch {
		close(ch)
	}
}

func (c *connState) up() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	c.lostAt = time.Time{}
	select {
	case <-c.downCh:
		c.downCh = make(chan struct{}) // it was declared down: a new episode starts
	default:
	}
}

// down returns a channel closed once the current connection is declared down.
func (c *connState) down() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.downCh
}

// err returns why the bus is down, or nil (also while lost within grace).
// Its text is the same for the whole of one outage (when it began, not how
// long ago): callers' rate-limited logs tell repeats apart by the error's
// text, and one with the time elapsed in it was a new line per request.
func (c *connState) err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lostAt.IsZero() {
		return nil
	}
	if time.Since(c.lostAt) >= c.grace {
		return fmt.Errorf("natsbus: %w: no NATS connection since %s", hub.ErrBusUnavailable,
			c.lostAt.UTC().Format("2006-01-02T15:04:05.000Z07:00"))
	}
	return nil
}

// downErr is why the bus is down.
func (b *Bus) downErr() error {
	if err := b.conn.err(); err != nil {
		return err
	}
	return errors.New("the NATS connection was lost")
}
