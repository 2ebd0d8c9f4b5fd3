package ws_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
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
