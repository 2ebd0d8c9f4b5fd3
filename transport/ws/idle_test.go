package ws_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"chatd/transport/limits"
	"chatd/transport/ws"
)

// goroutinesIn counts the goroutines whose stack holds each of funcs.
func goroutinesIn(funcs ...string) map[string]int {
	var buf bytes.Buffer
	_ = pprof.Lookup("goroutine").WriteTo(&buf, 2)
	n := map[string]int{}
	for _, g := range strings.Split(buf.String(), "\n\n") {
		for _, f := range funcs {
			if strings.Contains(g, f+"(") {
				n[f]++
			}
		}
	}
	return n
}

// TestIdleConnectionGoroutines: an upgraded connection keeps no HTTP
// request open (its handler returns, the request's context ends), and
// while idle it runs two goroutines, the reader and the writer; a ping
// frame, which the reader answers, starts nothing more, and the worker
// comes with the first frame for the hub. Not parallel: it counts the
// package's goroutines.
func TestIdleConnectionGoroutines(t *testing.T) {
	const (
		handler = "chatd/transport/ws.(*Handler).ServeHTTP"
		reader  = "chatd/transport/ws.(*conn).readLoop"
		writer  = "chatd/transport/ws.(*conn).writeLoop"
		worker  = "chatd/transport/ws.(*conn).workLoop"
	)
	const conns = 3
	s := newServer(t, serverOptions{opts: ws.Options{Limits: limits.New(limits.Options{MaxConns: conns})}})
	returned := make(chan context.Context, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.handler.ServeHTTP(w, r)
		returned <- r.Context()
	}))
	t.Cleanup(srv.Close)
	s.srv = srv // dial this server, in front of the same handler
	clients := make([]*client, conns)
	for i := range clients {
		clients[i] = s.dial(dialOptions{user: "u"})
		clients[i].expect("hello")
		select {
		case ctx := <-returned:
			<-ctx.Done() // the request is over
		case <-time.After(testTimeout):
			t.Fatalf("connection %d: the upgrade request never returned", i)
		}
	}
	waitGoroutines := func(what string, want map[string]int) {
		t.Helper()
		deadline := time.Now().Add(testTimeout)
		for {
			got := goroutinesIn(handler, reader, writer, worker)
			if equalCounts(got, want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: goroutines %v, want %v", what, got, want)
			}
			time.Sleep(5 * time.Millisecond) // polling, with the deadline above
		}
	}
	waitGoroutines("idle", map[string]int{reader: conns, writer: conns})
	clients[0].write(`{"type":"ping","id":"p"}`)
	clients[0].expect("pong")
	waitGoroutines("after a ping", map[string]int{reader: conns, writer: conns})
	clients[0].write(`{"type":"subscribe","id":"s","conversationId":"0123456789abcdef01234567"}`)
	clients[0].expect("error") // not_found, from the worker
	waitGoroutines("after a subscribe", map[string]int{reader: conns, writer: conns, worker: 1})
	for _, cl := range clients {
		cl.c.CloseNow()
	}
	waitGoroutines("closed", map[string]int{})
	for range conns { // the slots came back
		s.dial(dialOptions{user: "u"}).expect("hello")
	}
}

func equalCounts(a, b map[string]int) bool {
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	for k, v := range b {
		if a[k] != v {
			return false
		}
	}
	return true
}

// TestFramesRightAfterUpgrade: frames a client sends in the same packet as
// its upgrade request, which the HTTP server has already read into its own
// buffer by the upgrade, are not lost when the connection moves to its own
// smaller read buffer.
func TestFramesRightAfterUpgrade(t *testing.T) {
	t.Parallel()
	s := newServer(t, serverOptions{})
	conn, err := net.Dial("tcp", s.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(testTimeout))
	var out bytes.Buffer
	out.WriteString("GET / HTTP/1.1\r\nHost: chatd.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
		"Authorization: Bearer token-u\r\n\r\n")
	const pings = 40 // more than the connection's read buffer holds
	for i := range pings {
		writeClientFrame(&out, fmt.Sprintf(`{"type":"ping","id":"p%d"}`, i))
	}
	if _, err := conn.Write(out.Bytes()); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil || res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", res, err)
	}
	want := []string{`"hello"`}
	for i := range pings {
		want = append(want, fmt.Sprintf(`"id":"p%d"`, i))
	}
	for _, w := range want {
		got, err := readServerFrame(br)
		if err != nil {
			t.Fatalf("waiting for %s: %v", w, err)
		}
		if !strings.Contains(got, w) {
			t.Fatalf("got %s, want a frame with %s", got, w)
		}
	}
}

// writeClientFrame appends a masked text frame of at most 125 bytes.
func writeClientFrame(b *bytes.Buffer, payload string) {
	mask := [4]byte{1, 2, 3, 4}
	b.WriteByte(0x81)
	b.WriteByte(0x80 | byte(len(payload)))
	b.Write(mask[:])
	for i := range len(payload) {
		b.WriteByte(payload[i] ^ mask[i%4])
	}
}

// readServerFrame reads one unmasked, unfragmented text frame.
func readServerFrame(br *bufio.Reader) (string, error) {
	var h [2]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return "", err
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var ext [2]byte
		if _, err := io.ReadFull(br, ext[:]); err != nil {
			return "", err
		}
		n = uint64(binary.BigEndian.Uint16(ext[:]))
	case 127:
		var ext [8]byte
		if _, err := io.ReadFull(br, ext[:]); err != nil {
			return "", err
		}
		n = binary.BigEndian.Uint64(ext[:])
	}
	p := make([]byte, n)
	_, err := io.ReadFull(br, p)
	return string(p), err
}

// TestSessionConfirmedOnUpgradeGoroutine: the session check of a new
// connection (a store read in production, whose deep calls grow the
// stack they run on) runs on the upgrade request's goroutine, which ends,
// not on the connection's reader, which stays parked for as long as the
// connection is idle: run there, it kept the grown stack, about 5 KiB per
// idle connection (make bench, memory scenario).
func TestSessionConfirmedOnUpgradeGoroutine(t *testing.T) {
	t.Parallel()
	s := newServer(t, serverOptions{})
	stacks := make(chan string, 1)
	s.mu.Lock()
	s.rechecked = func() {
		buf := make([]byte, 64<<10)
		select {
		case stacks <- string(buf[:runtime.Stack(buf, false)]):
		default:
		}
	}
	s.mu.Unlock()
	s.dial(dialOptions{user: "u"}).expect("hello")
	stack := <-stacks
	if !strings.Contains(stack, "ws.(*Handler).ServeHTTP(") {
		t.Fatalf("the session check ran off the upgrade's goroutine:\n%s", stack)
	}
}
