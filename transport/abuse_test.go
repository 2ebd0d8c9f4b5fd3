package transport_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"chatd/transport"
	"chatd/transport/limits"
)

// TestSlowBodyIsCut: a client sending its body a byte at a time is cut
// off once the body read timeout passes, instead of holding the
// connection for as long as it likes.
func TestSlowBodyIsCut(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	e := newEnv(t, envOptions{router: func(o *transport.RouterOptions) { o.BodyReadTimeout = timeout }})
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	fmt.Fprintf(conn, "POST /api/auth/login HTTP/1.1\r\nHost: chatd\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
	stop := make(chan struct{})
	defer close(stop)
	go func() { // one byte every 20 ms: 1000 bytes would take 20 s
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := conn.Write([]byte(" ")); err != nil {
					return
				}
			}
		}
	}()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err == nil {
		res.Body.Close()
		if res.StatusCode != http.StatusRequestTimeout {
			t.Fatalf("slow body answered %d, want 408", res.StatusCode)
		}
	}
	// After the answer (if any) the server closes the connection.
	buf := make([]byte, 1)
	for {
		if _, err := conn.Read(buf); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("the connection is still open 10 s later")
			}
			break
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("cut after %v, with a body timeout of %v", d, timeout)
	}
	// A body that arrives in time is served as usual.
	r := e.do("POST", "/api/auth/login", "", map[string]string{"email": "a@example.com", "password": "12345678"})
	expect(t, "login in time", r, http.StatusUnauthorized, "unauthorized")
}

// TestConversationCreationLimit: parallel POST /api/conversations of one
// user pass at most the per-minute budget; the rest get 429 with
// Retry-After, and another user keeps their own budget.
func TestConversationCreationLimit(t *testing.T) {
	t.Parallel()
	lim := limits.New(limits.Options{ConversationsPerMinute: 3})
	e := newEnv(t, envOptions{creations: lim})
	u, other := e.register("Creator"), e.register("Other")
	var wg sync.WaitGroup
	var mu sync.Mutex
	count := map[int]int{}
	for range 10 {
		wg.Go(func() {
			r := e.do("POST", "/api/conversations", u.token, map[string]string{"title": "t"})
			if r.status == http.StatusTooManyRequests && r.header.Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
			mu.Lock()
			count[r.status]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if count[http.StatusCreated] != 3 || count[http.StatusTooManyRequests] != 7 {
		t.Fatalf("answers %v: want 3 x 201 and 7 x 429", count)
	}
	e.createConversation(other, "mine")
}
