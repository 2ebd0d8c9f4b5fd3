package ws

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"chatd/hub/protocol"
	"chatd/persistence"
	"chatd/transport/internal/outbox"
	"chatd/transport/internal/slow"
)

// conn is one WebSocket connection, seen by the hub as a Subscriber.
type conn struct {
	h       *Handler
	ws      *websocket.Conn
	cork    *corkConn // the socket under ws; the writer corks it for a batch of frames
	id      string
	userID  string
	tv      int64     // the token's version (hub.Session)
	expires time.Time // the token's exp claim, for Recheck
	until   time.Time // when the token stops being accepted: the writer closes with 4401 then
	started time.Time
	queue   *outbox.Queue              // frames for the writer; grows while they pile up
	work    chan *protocol.ClientFrame // valid frames waiting for the worker; made with it
	// followed are the conversations the hub made this connection follow
	// (or may have); only the worker touches it (follow.go).
	followed map[string]struct{}
	// events are what the writer must do besides writing frames (ev*
	// bits), signalled through the queue (queue.Wake), so that the writer
	// waits on one channel rather than six.
	events atomic.Uint32
	kickMu sync.Mutex
	kicked bool
	code   protocol.CloseCode // why kick closed the connection
	reason string
	// confirmed: the session was confirmed (confirmSession) before any
	// kick. Until then no frame goes out, hello included: a connection
	// closed before its session was confirmed gets its close frame alone.
	confirmed bool
	// abortCheck, set while confirmSession waits on the store, ends that
	// wait: a kick (a shutdown) does not wait out DispatchTimeout.
	abortCheck func()
	ctx        context.Context // ends when either goroutine of the connection ends
	cancel     func()          // ends ctx and tells the writer (evEnded)
	// watchdog closes the socket when one write takes longer than
	// WriteTimeout; the writer marks the start and end of every write.
	watchdog *watchdog
	pinging  atomic.Bool // a ping waits for its pong
	// slowCounted: the connection was counted as a slow client's
	// (Metrics.SlowClientDisconnected), which happens once.
	slowCounted atomic.Bool
	// readErr is why the read ended when no close frame came (noteReadEnd);
	// only the reader writes it, serve reads it once the reader returned.
	readErr error
	helpers sync.WaitGroup // the writer, the worker and the pings
}

// Events for the writer (conn.events).
const (
	evEnded  uint32 = 1 << iota // ctx ended: close the socket at once
	evKicked                    // kick: write the close frame
	evPing                      // PingInterval passed: ping the peer
)

func newConn(h *Handler, ws *websocket.Conn, cork *corkConn, id Identity) *conn {
	ws.SetReadLimit(h.opts.ReadLimit)
	ctx, cancel := context.WithCancel(context.Background())
	c := &conn{
		h: h, ws: ws, cork: cork, id: persistence.NewID(), userID: id.UserID, tv: id.TokenVersion, expires: id.ExpiresAt,
		until:   id.AcceptedUntil,
		started: time.Now(),
		queue:   outbox.New(h.opts.QueueSize, h.opts.QueueBytes),
		ctx:     ctx,
	}
	// ctx ends only through c.cancel, which then wakes the writer (a
	// context.AfterFunc would cost an idle connection more memory).
	c.cancel = func() {
		cancel()
		c.signal(evEnded)
	}
	c.watchdog = newWatchdog(h.opts.WriteTimeout, c.writeStuck)
	return c
}

// signal hands the writer an event.
func (c *conn) signal(ev uint32) {
	c.events.Or(ev)
	c.queue.Wake()
}

// UserID implements hub.Subscriber.
func (c *conn) UserID() string { return c.userID }

// TokenVersion implements hub.Session.
func (c *conn) TokenVersion() int64 { return c.tv }

// ConnectionID implements hub.Subscriber.
func (c *conn) ConnectionID() string { return c.id }

// Deliver implements hub.Subscriber: it queues f, or disconnects a client
// whose queue is full, in frames or in bytes (4408), never blocking the
// caller. Once the connection is kicked (a logout, a password change, a
// shutdown) nothing more is queued: the frames queued before go out, then
// the close frame, and a client slow to take them gets none of what its
// user's conversations produce after it was signed out.
func (c *conn) Deliver(f *protocol.Frame) {
	c.kickMu.Lock()
	if c.kicked {
		c.kickMu.Unlock()
		f.Release()
		return
	}
	queued := c.queue.Push(f)
	c.kickMu.Unlock()
	if !queued {
		f.Release()
	}
	if !queued && c.kick(protocol.CloseSlowClient, "too slow: send queue full; reconnect and resume") {
		c.countSlow(slow.QueueFull)
	}
}

// countSlow counts the connection as a slow client's, unless it was.
func (c *conn) countSlow(reason string) {
	if c.slowCounted.CompareAndSwap(false, true) {
		c.h.opts.Metrics.SlowClientDisconnected(reason)
	}
}

// ReleasesFrames implements hub.FrameReleaser: every frame Deliver takes
// is released once it is written (write) or dropped by Deliver; one still
// queued when the connection ends is not, and is not reused.
func (c *conn) ReleasesFrames() {}

// Busy implements hub.Busy: frames wait in the queue or one is being
// written, so the hub merges the next deltas rather than adding a frame.
// A write in flight for longer than StalledWrite means the peer stopped
// reading: the connection is then not busy for the hub, whose other tabs
// should not wait for it.
func (c *conn) Busy() bool {
	if d, writing := c.watchdog.inFlight(); writing {
		return d < c.h.opts.StalledWrite
	}
	return c.queue.Len() > 0
}

// WatchDrain implements hub.DrainWatcher: the writer calls the hub's
// Drained once it has written every frame queued. The writer is woken in
// case it went idle just before the request.
func (c *conn) WatchDrain() { c.queue.WatchDrain() }

// Close implements hub.Subscriber.
func (c *conn) Close(code protocol.CloseCode, reason string) { c.kick(code, reason) }

// kick asks the writer to close the socket; the first reason wins.
func (c *conn) kick(code protocol.CloseCode, reason string) bool {
	c.kickMu.Lock()
	defer c.kickMu.Unlock()
	if c.kicked {
		return false
	}
	c.kicked, c.code, c.reason = true, code, reason
	if c.abortCheck != nil {
		c.abortCheck()
	}
	c.signal(evKicked)
	return true
}

// closing reports whether kick has begun closing the connection.
func (c *conn) closing() bool {
	c.kickMu.Lock()
	defer c.kickMu.Unlock()
	return c.kicked
}

// closeReason is what kick recorded (zero if nothing kicked the connection).
func (c *conn) closeReason() (protocol.CloseCode, string) {
	c.kickMu.Lock()
	defer c.kickMu.Unlock()
	return c.code, c.reason
}

// open introduces the connection to the hub: hello queued, the connection
// registered, its session confirmed; hello goes out only once the session
// is confirmed, so it tells the client its session was. It runs on the
// upgrade's goroutine,
// whose stack the session's store read may grow, not on serve's, which
// stays parked in the reader for as long as the connection is idle.
func (c *conn) open() {
	h := c.h
	h.opts.Metrics.ConnectionOpened()
	// hello is queued before the hub knows the connection: a user-wide
	// frame (a conversation titled in another tab) may come the moment it
	// is registered, and hello must be the connection's first frame.
	c.Deliver(protocol.Hello(c.userID, c.id, h.opts.ReadLimit))
	h.opts.Hub.Register(c)
	// Before the writer starts: the client gets hello only once the
	// session is confirmed. A connection kicked before (a revoked
	// session: 4401; one the store cannot confirm: 1013; a shutdown)
	// gets its close frame and nothing else, not hello nor the frames
	// queued behind it (closeSocket).
	c.confirmSession()
}

// serve runs the connection once open: the writer in a goroutine of its
// own, the reader in this one, the worker from the first frame that needs
// the hub (an idle connection costs two goroutines), and each ping in a
// short-lived one. It returns when all have ended; the writer, the reader
// or the worker ending ends the others.
func (c *conn) serve() {
	h := c.h
	defer h.opts.Metrics.ConnectionClosed()
	defer h.opts.Hub.Detach(c)
	c.helpers.Go(func() {
		defer c.cancel()
		c.writeLoop()
	})
	c.readLoop()
	c.cancel()
	c.helpers.Wait()
	code, reason := c.closeReason()
	attrs := []any{"connection", c.id, "user", c.userID, "duration_ms", time.Since(c.started).Milliseconds()}
	if code == 0 { // nothing closed it with a code: the socket just ended
		code, reason = protocol.CloseCode(websocket.StatusAbnormalClosure), ReasonNoCloseFrame
		if c.readErr != nil {
			attrs = append(attrs, "err", c.readErr)
		}
	}
	h.log.Info("websocket closed", append(attrs, "close_code", int(code), "reason", reason)...)
}

// confirmSession checks the session once more now that the hub knows the
// connection: a logout (a password change, an account deletion) that
// landed between the upgrade's authentication and the registration closed
// the user's connections before this one was among them, and would leave
// it open until the accounts' next periodic check. A revoked session is
// closed with 4401; one the store cannot confirm now is closed with 1013
// (try again later), as an SSE stream is refused 503 and a send answered
// unavailable then: nothing is delivered to a session that may have ended.
// A kick meanwhile (a shutdown) ends the check at once: the connection
// then gets the kick's close frame.
func (c *conn) confirmSession() {
	ctx, cancel := context.WithTimeout(c.ctx, c.h.opts.DispatchTimeout)
	defer cancel()
	if !c.abortable(cancel) {
		return // kicked already: nothing to confirm
	}
	err := c.h.opts.Recheck(ctx, Identity{UserID: c.userID, TokenVersion: c.tv, ExpiresAt: c.expires})
	c.abortable(nil)
	switch {
	case err == nil:
		c.confirm()
	case errors.Is(err, ErrUnauthorized):
		c.kick(protocol.CloseUnauthorized, reasonSessionEnded)
	default:
		if c.ctx.Err() == nil && !c.closing() {
			c.h.log.Warn("recheck websocket session after registering", "connection", c.id, "err", err)
		}
		c.kick(protocol.CloseTryAgainLater, ReasonSessionUncheckable)
	}
}

// abortable sets what a kick calls to end the session check (nil: none);
// false if the connection was kicked already.
func (c *conn) abortable(abort func()) bool {
	c.kickMu.Lock()
	defer c.kickMu.Unlock()
	c.abortCheck = abort
	return !c.kicked
}

// confirm marks the session confirmed, unless a kick came first: frames
// (hello first) may then be written.
func (c *conn) confirm() {
	c.kickMu.Lock()
	defer c.kickMu.Unlock()
	c.confirmed = !c.kicked
}

// speaks reports whether frames may be written before the close frame:
// the session was confirmed before the kick.
func (c *conn) speaks() bool {
	c.kickMu.Lock()
	defer c.kickMu.Unlock()
	return c.confirmed
}

// ReasonSessionUncheckable is the reason of the protocol.CloseTryAgainLater
// closing a connection whose session the store could not confirm after
// the upgrade.
const ReasonSessionUncheckable = "cannot check the session right now; reconnect"

// writeLoop is the only code that writes data and close frames to the
// socket. It waits on the queue's channel alone (outbox.Queue.Wait): the
// pings, the token's expiry, a kick and the end of the connection reach
// it as events, woken through the queue. Once awake it writes every frame
// that waits before it waits again, checking the events between frames
// (frames that waited together go to the socket in one write: corkConn),
// and then tells the hub the queue is written if it asked (WatchDrain).
func (c *conn) writeLoop() {
	defer c.watchdog.stop()
	ping := time.AfterFunc(c.h.opts.PingInterval, func() { c.signal(evPing) })
	defer ping.Stop()
	if !c.until.IsZero() {
		t := time.AfterFunc(time.Until(c.until), func() { c.kick(protocol.CloseUnauthorized, "token expired") })
		defer t.Stop()
	}
	for {
		f := c.queue.Wait() // nil: woken for an event or a drain request
		corked := false
		for {
			if ev := c.events.Load(); ev != 0 {
				switch {
				case ev&evEnded != 0:
					c.ws.CloseNow()
					return
				case ev&evKicked != 0:
					if corked && c.uncork() != nil {
						c.ws.CloseNow()
						return
					}
					c.closeSocket(f)
					return
				}
				c.events.And(^evPing)
				c.startPing()
				ping.Reset(c.h.opts.PingInterval)
			}
			if f != nil {
				if !corked && c.queue.Len() > 0 {
					// More frames wait behind this one: they go to the
					// socket together, in one write.
					c.cork.cork()
					corked = true
				}
				if c.write(f) != nil {
					c.ws.CloseNow()
					return
				}
			}
			if c.queue.Len() == 0 {
				break
			}
			f, _ = c.queue.Pop()
		}
		if corked && c.uncork() != nil {
			c.ws.CloseNow()
			return
		}
		if c.queue.Drained() { // the hub asked to hear that the queue is written
			c.h.opts.Hub.Drained(c)
		}
	}
}

// uncork writes the frames the writer kept corked, watched as one write.
func (c *conn) uncork() error {
	c.watchdog.start()
	err := c.cork.uncork()
	c.watchdog.done()
	return err
}

// write sends one frame. The library gets a context that never ends, so a
// frame costs it no timer and no context registration; instead the
// connection's watchdog closes the socket if the write takes longer than
// WriteTimeout (a peer that stopped reading), which fails the write.
func (c *conn) write(f *protocol.Frame) error {
	c.watchdog.start()
	err := c.ws.Write(context.Background(), websocket.MessageText, f.Data)
	c.watchdog.done()
	f.Release() // the library copied the bytes (to the socket or the cork)
	return err
}

// writeStuck runs when a write outlived WriteTimeout: it closes the socket,
// which ends the write with an error. A connection that was not closing
// is counted as a slow client's.
func (c *conn) writeStuck() {
	c.h.log.Info("websocket write timed out", "connection", c.id, "timeout", c.h.opts.WriteTimeout.String())
	if !c.closing() {
		c.countSlow(slow.WriteTimeout)
	}
	c.ws.CloseNow()
}

// startPing pings the peer from a short-lived goroutine, one ping at a
// time, and ends the connection when the pong does not come back within
// PingTimeout. Waiting for the pong never holds up the writer's deltas,
// and the reader, which never waits on the hub, takes the pong in as soon
// as it arrives.
func (c *conn) startPing() {
	if !c.pinging.CompareAndSwap(false, true) {
		return
	}
	c.helpers.Go(func() {
		defer c.pinging.Store(false)
		if err := c.ping(); err != nil {
			if c.ctx.Err() == nil {
				c.h.log.Info("websocket peer not answering pings", "connection", c.id, "err", err)
			}
			c.cancel()
			c.ws.CloseNow() // ends the read, and a write stuck on the dead peer
		}
	})
}

func (c *conn) ping() error {
	ctx, cancel := context.WithTimeout(c.ctx, c.h.opts.PingTimeout)
	defer cancel()
	return c.ws.Ping(ctx)
}

// closeSocket sends the close frame of kick. The frames already queued
// (first taken, the writer's frame taken from the queue but not yet
// written, if not nil) go out first (the done of an interrupted answer at
// shutdown, the error that explains a 1008 or a 4401), except for a client
// too slow to take them, and for a connection kicked before its session
// was confirmed, which gets no frame at all (hello means confirmed). Those
// are all it gets (Deliver queues nothing after the kick), within one
// WriteTimeout for them all: past it the socket is closed, with no close
// frame, rather than each frame having a WriteTimeout of its own.
func (c *conn) closeSocket(first *protocol.Frame) {
	code, reason := c.closeReason()
	if code != protocol.CloseSlowClient && c.speaks() {
		late := time.AfterFunc(c.h.opts.WriteTimeout, c.drainStuck)
		if first == nil || c.write(first) == nil {
			c.drain()
		}
		if !late.Stop() {
			return
		}
	}
	err := c.ws.Close(websocket.StatusCode(code), reason)
	if err != nil && !errors.Is(err, context.Canceled) {
		c.h.log.Debug("websocket close handshake", "connection", c.id, "err", err)
	}
}

// drainStuck runs when the frames written before the close frame outlived
// WriteTimeout: it closes the socket, which ends the write under way.
func (c *conn) drainStuck() {
	c.h.log.Info("websocket frames before the close timed out", "connection", c.id, "timeout", c.h.opts.WriteTimeout.String())
	c.ws.CloseNow()
}

// drain writes the frames queued before the kick.
func (c *conn) drain() {
	for {
		f, ok := c.queue.Pop()
		if !ok || c.write(f) != nil {
			return
		}
	}
}
