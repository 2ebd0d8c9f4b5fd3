package ws_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"chatd/hub/protocol"
	"chatd/transport/limits"
	"chatd/transport/ws"
)

// sharedConns is an in-memory limits.Shared: the connection counts of
// several instances in one map, as the cluster's KV holds them.
type sharedConns struct {
	mu    sync.Mutex
	conns map[string]int
}

func (c *sharedConns) AcquireConn(_ context.Context, user string, max int) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conns[user] >= max {
		return false, nil
	}
	c.conns[user]++
	return true, nil
}

func (c *sharedConns) ReleaseConn(_ context.Context, user string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.conns[user]--
	return nil
}

func (c *sharedConns) TakeSend(context.Context, string, int) (bool, error) { return true, nil }

func (c *sharedConns) GiveSend(context.Context, string, int) error { return nil }

func (c *sharedConns) GiveBudget(context.Context, string, string, int) error { return nil }

func (c *sharedConns) TakeBudget(context.Context, string, string, int) (time.Duration, bool, error) {
	return 0, true, nil
}

// opened is what the first read of a new connection found: a hello, or the
// close that refused it.
type opened struct {
	c      *websocket.Conn
	hello  bool
	code   websocket.StatusCode
	reason string
	err    error
}

// open dials url as user and reads the connection's first frame or close.
func open(ctx context.Context, url, user string) opened {
	h := http.Header{}
	h.Set("Authorization", "Bearer token-"+user)
	c, res, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: h, Subprotocols: []string{protocol.Name}})
	if err != nil {
		status := 0
		if res != nil {
			status = res.StatusCode
		}
		return opened{err: errors.Join(err, errors.New("status "+http.StatusText(status)))}
	}
	_, data, err := c.Read(ctx)
	var ce websocket.CloseError
	switch {
	case err == nil:
		var f frame
		if json.Unmarshal(data, &f) != nil || f.Type != protocol.TypeHello {
			return opened{c: c, err: errors.New("first frame " + string(data))}
		}
		return opened{c: c, hello: true}
	case errors.As(err, &ce):
		return opened{c: c, code: ce.Code, reason: ce.Reason}
	default:
		return opened{c: c, err: err}
	}
}

// dialAll opens n connections of user at once, spread over urls, and
// returns those that got hello, open; it fails the test unless every other
// one was closed with 1013 and ReasonTooManyConnections before any frame.
func dialAll(t *testing.T, urls []string, user string, n int) []*websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	results := make(chan opened, n)
	for i := range n {
		go func() { results <- open(ctx, urls[i%len(urls)], user) }()
	}
	var hellos []*websocket.Conn
	for range n {
		o := <-results
		if o.c != nil {
			t.Cleanup(func() { o.c.CloseNow() })
		}
		switch {
		case o.err != nil:
			t.Fatalf("open: %v", o.err)
		case o.hello:
			hellos = append(hellos, o.c)
		case o.code != websocket.StatusCode(protocol.CloseTryAgainLater) || o.reason != ws.ReasonTooManyConnections:
			t.Fatalf("refused with %d %q, want %d %q", o.code, o.reason, protocol.CloseTryAgainLater, ws.ReasonTooManyConnections)
		}
	}
	return hellos
}

// TestConnectionLimitCloses: a WebSocket over its user's connection limit
// (CHATD_MAX_CONNS_PER_USER) is accepted and closed at once with 1013 and
// the reason "too many connections", without a frame, because a browser
// is not told the status of a refused upgrade and its client took the 429
// it was refused with before for a server it cannot reach over WebSocket,
// and fell back to SSE. Opened many at once, never more than the limit
// get hello, on one instance or across a cluster's (limits.Shared), and
// the refused ones hold no slot: once one that got hello closes, the next
// one gets hello.
func TestConnectionLimitCloses(t *testing.T) {
	t.Parallel()
	const max, dials = 3, 24
	shared := &sharedConns{conns: map[string]int{}}
	cluster := []*server{
		newServer(t, serverOptions{opts: ws.Options{Limits: limits.New(limits.Options{MaxConns: max, Shared: shared})}}),
		newServer(t, serverOptions{opts: ws.Options{Limits: limits.New(limits.Options{MaxConns: max, Shared: shared})}}),
	}
	metrics := &slowCount{}
	single := newServer(t, serverOptions{opts: ws.Options{Limits: limits.New(limits.Options{MaxConns: max}), Metrics: metrics}})
	for _, tc := range []struct {
		name    string
		servers []*server
	}{
		{"one instance", []*server{single}},
		{"a cluster", cluster},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var urls []string
			for _, s := range tc.servers {
				urls = append(urls, s.url())
			}
			open := dialAll(t, urls, "many", dials)
			if len(open) != max {
				t.Fatalf("%d of %d connections opened at once got hello, want the limit, %d", len(open), dials, max)
			}
			if tc.name == "one instance" {
				if n := metrics.refused.Load(); n != dials-max {
					t.Fatalf("%d refusals counted, want %d", n, dials-max)
				}
			}
			n := 0
			for _, s := range tc.servers {
				n += len(s.hub.Subscribers("many"))
			}
			if n != max {
				t.Fatalf("the hub knows %d connections, want %d", n, max)
			}
			// The refused ones hold no slot: once those that got hello
			// close, as many get hello again.
			for _, c := range open {
				c.Close(websocket.StatusNormalClosure, "")
			}
			until(t, "the slots to be released", func() bool {
				for _, s := range tc.servers {
					if slices.Contains(s.limits.ConnectedUsers(), "many") {
						return false
					}
				}
				shared.mu.Lock()
				defer shared.mu.Unlock()
				return shared.conns["many"] == 0
			})
			if again := dialAll(t, urls, "many", dials); len(again) != max {
				t.Fatalf("once they closed, %d of %d got hello, want %d", len(again), dials, max)
			}
		})
	}
}

// until polls cond until it holds, or fails the test after testTimeout.
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	timeout := time.After(testTimeout)
	for !cond() {
		select {
		case <-tick.C:
		case <-timeout:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestConnectionLimitPlainRequest: a request to /ws over the connection
// limit that is no WebSocket upgrade is still answered 429 with
// Retry-After, as an event stream is; a HEAD alike, as the GET (before, it
// was answered 426 before the limit was looked at). Under the limit, a
// HEAD is 426, as a GET that asks no upgrade, and keeps no slot: the
// user's one connection still opens after it.
func TestConnectionLimitPlainRequest(t *testing.T) {
	t.Parallel()
	plain := func(s *server, method, user string, upgrade bool) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, s.srv.URL, nil)
		req.Header.Set("Authorization", "Bearer token-"+user)
		if upgrade { // a HEAD with a GET's upgrade headers is still no upgrade
			req.Header.Set("Connection", "Upgrade")
			req.Header.Set("Upgrade", "websocket")
			req.Header.Set("Sec-WebSocket-Version", "13")
			req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	for _, tc := range []struct {
		method  string
		upgrade bool
	}{{http.MethodGet, false}, {http.MethodHead, false}, {http.MethodHead, true}} {
		method := tc.method
		t.Run(fmt.Sprintf("%s upgrade headers %v", method, tc.upgrade), func(t *testing.T) {
			t.Parallel()
			s := newServer(t, serverOptions{opts: ws.Options{Limits: limits.New(limits.Options{MaxConns: 1})}})
			if res := plain(s, method, "free", tc.upgrade); res.StatusCode != http.StatusUpgradeRequired {
				t.Fatalf("%s under the limit: %d, want 426", method, res.StatusCode)
			}
			s.dial(dialOptions{user: "free"}).expect("hello") // the slot was not kept
			s.dial(dialOptions{user: "full"})
			res := plain(s, method, "full", tc.upgrade)
			if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") == "" {
				t.Fatalf("%s over the limit: %d, Retry-After %q", method, res.StatusCode, res.Header.Get("Retry-After"))
			}
		})
	}
}
