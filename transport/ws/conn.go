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
)

// conn is one WebSocket connection, seen by the hub as a Subscriber.
type conn struct {
	h       *Handler
	ws      *websocket.Conn
	id      string
	userID  string
	expires time.Time
	token   string // rechecked before each send and regenerate
	started time.Time
	queue   *outbox.Queue              // frames for the writer; grows while they pile up
	work    chan *protocol.ClientFrame // valid frames waiting for the worker; made with it
	closing chan struct{}              // closed by kick: the writer closes the socket
	kickMu  sync.Mutex
	kicked  bool
	code    protocol.CloseCode // why kick closed the connection
	reason  string
	ctx     context.Context // ends when either goroutine of the connection ends
	cancel  context.CancelFunc
	// watchdog closes the socket when one write takes longer than
	// WriteTimeout; the writer arms it around every write.
	watchdog *time.Timer
	pinging  atomic.Bool    // a ping waits for its pong
	helpers  sync.WaitGroup // the writer, the worker and the pings
	writing  atomic.Bool    // a frame is being written
}

func newConn(h *Handler, ws *websocket.Conn, id Identity, token string) *conn {
	ws.SetReadLimit(h.opts.ReadLimit)
	ctx, cancel := context.WithCancel(context.Background())
	c := &conn{
		h: h, ws: ws, id: persistence.NewID(), userID: id.UserID, expires: id.ExpiresAt,
		token: token, started: time.Now(),
		queue:   outbox.New(h.opts.QueueSize),
		closing: make(chan struct{}),
		ctx:     ctx, cancel: cancel,
	}
	c.watchdog = time.AfterFunc(h.opts.WriteTimeout, c.writeStuck)
	c.watchdog.Stop()
	return c
}

// UserID implements hub.Subscriber.
func (c *conn) UserID() string { return c.userID }

// ConnectionID implements hub.Subscriber.
func (c *conn) ConnectionID() string { return c.id }

// Deliver implements hub.Subscriber: it queues f, or disconnects a client
// whose queue is full (4408), never blocking the caller.
func (c *conn) Deliver(f *protocol.Frame) {
	if !c.queue.Push(f) {
		if c.kick(protocol.CloseSlowClient, "too slow: send queue full; reconnect and resume") {
			c.h.opts.Metrics.SlowClientDisconnected()
		}
	}
}

// Busy implements hub.Busy: frames wait in the queue or one is being
// written, so the hub merges the next deltas rather than adding a frame.
func (c *conn) Busy() bool { return c.queue.Len() > 0 || c.writing.Load() }

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
	close(c.closing)
	return true
}

// closeReason is what kick recorded (zero if nothing kicked the connection).
func (c *conn) closeReason() (protocol.CloseCode, string) {
	c.kickMu.Lock()
	defer c.kickMu.Unlock()
	return c.code, c.reason
}

// serve runs the connection: the writer in a goroutine of its own, the
// reader in this one, the worker from the first frame that needs the hub
// (an idle connection costs two goroutines), and each ping in a
// short-lived one. It returns when all have ended; the writer, the reader
// or the worker ending ends the others.
func (c *conn) serve() {
	h := c.h
	h.opts.Metrics.ConnectionOpened()
	defer h.opts.Metrics.ConnectionClosed()
	h.opts.Hub.Register(c)
	defer h.opts.Hub.Detach(c)
	c.Deliver(protocol.Hello(c.userID, c.id, h.opts.ReadLimit))

	c.helpers.Go(func() {
		defer c.cancel()
		c.writeLoop()
	})
	c.readLoop()
	c.cancel()
	c.helpers.Wait()
	code, reason := c.closeReason()
	h.log.Info("websocket closed", "connection", c.id, "user", c.userID,
		"duration", time.Since(c.started).Round(time.Millisecond), "close_code", int(code), "reason", reason)
}

// writeLoop is the only code that writes data and close frames to the
// socket.
func (c *conn) writeLoop() {
	ping := time.NewTicker(c.h.opts.PingInterval)
	defer ping.Stop()
	var expiry <-chan time.Time
	if !c.expires.IsZero() {
		t := time.NewTimer(time.Until(c.expires))
		defer t.Stop()
		expiry = t.C
	}
	for {
		select {
		case f := <-c.queue.C():
			if c.write(f) != nil {
				c.ws.CloseNow()
				return
			}
		case <-c.queue.More():
			if f, ok := c.queue.Pop(); ok && c.write(f) != nil {
				c.ws.CloseNow()
				return
			}
		case <-ping.C:
			c.startPing()
		case <-expiry:
			c.kick(protocol.CloseUnauthorized, "token expired")
		case <-c.closing:
			c.closeSocket()
			return
		case <-c.ctx.Done():
			c.ws.CloseNow()
			return
		}
	}
}

// write sends one frame. The library gets a context that never ends, so a
// frame costs it no timer and no context registration; instead the
// connection's watchdog closes the socket if the write takes longer than
// WriteTimeout (a peer that stopped reading), which fails the write.
func (c *conn) write(f *protocol.Frame) error {
	c.writing.Store(true)
	c.watchdog.Reset(c.h.opts.WriteTimeout)
	err := c.ws.Write(context.Background(), websocket.MessageText, f.Data)
	c.watchdog.Stop()
	c.writing.Store(false)
	return err
}

// writeStuck runs when a write outlived WriteTimeout: it closes the socket,
// which ends the write with an error.
func (c *conn) writeStuck() {
	c.h.log.Info("websocket write timed out", "connection", c.id, "timeout", c.h.opts.WriteTimeout)
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

// closeSocket sends the close frame of kick. The frames already queued go
// out first (the done of an interrupted answer at shutdown, the error that
// explains a 1008 or a 4401), except for a client too slow to take them.
func (c *conn) closeSocket() {
	code, reason := c.closeReason()
	if code != protocol.CloseSlowClient {
		c.drain()
	}
	err := c.ws.Close(websocket.StatusCode(code), reason)
	if err != nil && !errors.Is(err, context.Canceled) {
		c.h.log.Debug("websocket close handshake", "connection", c.id, "err", err)
	}
}

func (c *conn) drain() {
	for {
		f, ok := c.queue.Pop()
		if !ok || c.write(f) != nil {
			return
		}
	}
}
