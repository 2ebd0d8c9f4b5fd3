package mongo_test

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// replyDropper is a TCP proxy between the store's client and a server
// that can lose the reply to one command, as a network failing after the
// server ran a write does: armed (dropReply), it passes the next command
// of the given name to the server, waits for the server's reply to it, and
// closes the client's connection instead of passing the reply on. Every
// other message passes unchanged, and so do later connections.
type replyDropper struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup // the accept loop and one per connection

	mu      sync.Mutex
	armed   *drop                 // the command whose reply to lose; nil when none
	conns   map[net.Conn]struct{} // open connections, both sides
	closed  bool
	blocked bool // connections are closed as they come (see holdRequest)

	rewrite func(reply []byte) []byte // when set: changes each reply passed on (see asMongos)

	frozen  string        // requests of this command are held silently (see freeze); "" when none
	freezes chan struct{} // receives one value per request frozen (see freeze)
}

// drop is one reply to lose, or with held set, one request to hold back.
type drop struct {
	command string        // the command's name, e.g. "update"
	dropped chan struct{} // closed when the reply is dropped, before the client's connection closes
	held    chan []byte   // when set: receives the request, which is not passed on
	cut     bool          // with held: every connection is closed, and new ones until unblock
}

// pendingDrop is a drop a request on a connection took: the reply whose
// responseTo is requestID is lost.
type pendingDrop struct {
	requestID uint32
	drop      *drop
}

// viaReplyDropper is a via for newEnvWith: it puts a replyDropper,
// stored in *proxy, between the store and FerretDB, and sets the URI's
// options given as key, value pairs.
func viaReplyDropper(t *testing.T, proxy **replyDropper, options ...string) func(uri string) string {
	return func(uri string) string {
		u, err := url.Parse(uri)
		if err != nil {
			t.Fatalf("FerretDB's URI %q: %v", uri, err)
		}
		*proxy = startReplyDropper(t, u.Host)
		u.Host = (*proxy).addr()
		q := u.Query()
		for i := 0; i+1 < len(options); i += 2 {
			q.Set(options[i], options[i+1])
		}
		u.RawQuery = q.Encode()
		return u.String()
	}
}

// startReplyDropper listens on a local port and relays every connection
// to target (host:port) until the test ends.
func startReplyDropper(t *testing.T, target string) *replyDropper {
	t.Helper()
	return startRewriter(t, target, nil)
}

// startRewriter is startReplyDropper with each reply passed through
// rewrite (nil: unchanged) on its way to the client.
func startRewriter(t *testing.T, target string, rewrite func([]byte) []byte) *replyDropper {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy: %v", err)
	}
	p := &replyDropper{ln: ln, target: target, conns: make(map[net.Conn]struct{}), rewrite: rewrite}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// addr is the proxy's host:port.
func (p *replyDropper) addr() string { return p.ln.Addr().String() }

// dropReply arms p: the reply to the next command named command is lost.
// The channel returned is closed when it was.
func (p *replyDropper) dropReply(command string) <-chan struct{} {
	d := &drop{command: command, dropped: make(chan struct{})}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.armed = d
	return d.dropped
}

// holdRequest arms p: the next command named command is not passed to
// the server but sent on the channel returned, and the client's
// connection is closed, as a network failing while a write is on its way
// does; the test may deliver it later (replay), as a server running a
// write after its client gave up on it does.
//
// With cut, the server is also cut off once the request is held: every
// connection is closed, and every new one as it comes, until unblock.
func (p *replyDropper) holdRequest(command string, cut bool) <-chan []byte {
	d := &drop{command: command, held: make(chan []byte, 1), cut: cut}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.armed = d
	return d.held
}

// freeze makes p hold every request of command from now on until thaw, as
// a server that hangs does: the request is not passed on and its
// connection stays open and silent until the client closes it. The
// channel returned receives a value as each request is held (values the
// test does not take are dropped).
func (p *replyDropper) freeze(command string) <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.frozen, p.freezes = command, make(chan struct{}, 1)
	return p.freezes
}

// thaw lets requests of the frozen command through again (those held stay
// unanswered).
func (p *replyDropper) thaw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.frozen = ""
}

// holdsFrozen reports whether command is frozen, telling freeze's channel.
func (p *replyDropper) holdsFrozen(command string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.frozen == "" || p.frozen != command {
		return false
	}
	select {
	case p.freezes <- struct{}{}:
	default:
	}
	return true
}

// block closes every connection and makes p close new ones as they come.
func (p *replyDropper) block() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blocked = true
	for c := range p.conns {
		_ = c.Close()
	}
}

// unblock lets new connections through again.
func (p *replyDropper) unblock() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blocked = false
}

// replay sends the wire message msg to the server on a connection of its
// own and waits for the server's reply, which it returns.
func (p *replyDropper) replay(msg []byte) ([]byte, error) {
	conn, err := net.Dial("tcp", p.target)
	if err != nil {
		return nil, err
	}
	defer func() { _ = conn.Close() }()
	if _, err := conn.Write(msg); err != nil {
		return nil, err
	}
	return readWireMessage(conn)
}

// close stops accepting, closes every connection and waits for the relays.
func (p *replyDropper) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *replyDropper) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

// serve relays client to a connection of its own to the server, requests
// on a second goroutine, replies on this one, until either side closes.
func (p *replyDropper) serve(client net.Conn) {
	defer p.wg.Done()
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		_ = client.Close()
		return
	}
	if !p.track(client, server) {
		return
	}
	var pending atomic.Pointer[pendingDrop]
	requestsDone := make(chan struct{})
	go func() {
		defer close(requestsDone)
		p.relayRequests(client, server, &pending)
	}()
	relayReplies(server, client, &pending, p.rewrite)
	p.untrack(client, server)
	<-requestsDone
}

// track records the connections of one relay; when p is closed it closes
// them instead and reports false.
func (p *replyDropper) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range conns {
		if p.closed || p.blocked {
			_ = c.Close()
		} else {
			p.conns[c] = struct{}{}
		}
	}
	return !p.closed && !p.blocked
}

// untrack closes the connections of one relay and forgets them.
func (p *replyDropper) untrack(conns ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
		delete(p.conns, c)
	}
}

// relayRequests passes client's messages to server; a command the proxy
// is armed for is marked in pending before it is passed on, so that its
// reply cannot come back unmarked.
func (p *replyDropper) relayRequests(client, server net.Conn, pending *atomic.Pointer[pendingDrop]) {
	defer func() { _ = server.Close() }() // ends relayReplies
	for {
		msg, err := readWireMessage(client)
		if err != nil {
			return
		}
		if p.holdsFrozen(commandName(msg)) {
			_, _ = io.Copy(io.Discard, client) // silent until the client (or close) ends it
			return
		}
		d := p.take(commandName(msg))
		if d != nil && d.held != nil {
			d.held <- msg
			if d.cut {
				p.block()
			}
			return
		}
		if d != nil {
			pending.Store(&pendingDrop{requestID: binary.LittleEndian.Uint32(msg[4:8]), drop: d})
		}
		if _, err := server.Write(msg); err != nil {
			return
		}
	}
}

// relayReplies passes server's messages to client, until it meets the
// reply pending marks: that one it drops, and returns (the caller closes
// the client's connection).
func relayReplies(server, client net.Conn, pending *atomic.Pointer[pendingDrop], rewrite func([]byte) []byte) {
	for {
		msg, err := readWireMessage(server)
		if err != nil {
			return
		}
		if pd := pending.Load(); pd != nil && binary.LittleEndian.Uint32(msg[8:12]) == pd.requestID {
			close(pd.drop.dropped)
			return
		}
		if rewrite != nil {
			msg = rewrite(msg)
		}
		if _, err := client.Write(msg); err != nil {
			return
		}
	}
}

// take returns the armed drop, disarming p, when command is its command.
func (p *replyDropper) take(command string) *drop {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := p.armed
	if d == nil || d.command != command {
		return nil
	}
	p.armed = nil
	return d
}

// readWireMessage reads one MongoDB wire protocol message, whose header
// starts with the whole message's length (little-endian int32); the header
// then holds requestID, responseTo and opCode.
func readWireMessage(r io.Reader) ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return nil, err
	}
	n := binary.LittleEndian.Uint32(size[:])
	if n < 16 || n > 64<<20 {
		return nil, fmt.Errorf("wire message of %d bytes", n)
	}
	msg := make([]byte, n)
	copy(msg, size[:])
	if _, err := io.ReadFull(r, msg[4:]); err != nil {
		return nil, err
	}
	return msg, nil
}

// commandName is the name of the command msg carries, the first key of
// its body, or "" when msg is not an OP_MSG whose first section is the body.
func commandName(msg []byte) string {
	const opMsg, header, body = 2013, 16 + 4, 0 // the header and flagBits; section kind 0
	if len(msg) < header+5 || binary.LittleEndian.Uint32(msg[12:16]) != opMsg || msg[header] != body {
		return ""
	}
	doc := msg[header+1:]
	n := binary.LittleEndian.Uint32(doc[:4])
	if n < 5 || int(n) > len(doc) {
		return ""
	}
	el, err := bson.Raw(doc[:n]).IndexErr(0)
	if err != nil {
		return ""
	}
	return el.Key()
}
