package transport_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/gin-gonic/gin"

	"chatd/hub/protocol"
	"chatd/persistence"

	"chatd/transport"
	"chatd/transport/internal/hubtest"
	"chatd/transport/internal/nettest"
	"chatd/transport/sse"
	"chatd/transport/ws"
)

// TestPipelinedAnswersNeverReadAreCut: a client that pipelines requests on
// one connection and never reads the answers has the connection cut once
// a write makes no progress for the response write timeout, on the live
// channel's routes as on REST ones. Before, the live routes (the
// WebSocket, the event streams, streaming sends and regenerates) had
// their write deadline cleared and never set again, even for a plain JSON
// error such as the 401 of a request without a token: with the kernel's
// buffers full, the server's flush blocked for ever, holding a goroutine
// and a listener slot, and enough such connections, no account needed,
// would have exhausted CHATD_MAX_CONNECTIONS.
func TestPipelinedAnswersNeverReadAreCut(t *testing.T) {
	t.Parallel()
	const timeout = 500 * time.Millisecond
	h := hubtest.New()
	e := newEnv(t, envOptions{listener: nettest.SmallSendBuffers, router: func(o *transport.RouterOptions) {
		o.ResponseWriteTimeout = timeout
		o.Register = func(r transport.Routes) {
			sse.NewHandler(sse.Options{Hub: h}).Routes(r.Authed)
			wsh := ws.NewHandler(ws.Options{Hub: h,
				Authenticate: func(context.Context, string) (ws.Identity, error) { return ws.Identity{}, ws.ErrUnauthorized },
				Recheck:      func(context.Context, ws.Identity) error { return nil }})
			r.Engine.GET("/ws", gin.WrapH(wsh))
		}
	}})
	u := e.register("Piper")
	conv := e.createConversation(u, "pipes")
	const id = "0123456789abcdef01234567"
	cases := []struct {
		name, request string
		token         string
	}{
		{"REST control", "GET /api/conversations", ""},
		{"events", "GET /api/events", ""},
		{"resume", "GET /api/conversations/" + id + "/stream", ""},
		{"streaming send", "POST /api/conversations/" + id + "/messages\r\nAccept: text/event-stream\r\nContent-Length: 0", ""},
		{"streaming regenerate", "POST /api/conversations/" + id + "/regenerate\r\nAccept: text/event-stream\r\nContent-Length: 0", ""},
		{"websocket", "GET /ws", ""},
		{"resume signed in, nothing running (204)", "GET /api/conversations/" + conv.ID + "/stream", u.token},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			conn, err := nettest.SmallReceiveBuffer().Dial("tcp", e.srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			method, rest, _ := strings.Cut(c.request, " ")
			path, extra, _ := strings.Cut(rest, "\r\n")
			req := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: x\r\n", method, path)
			if extra != "" {
				req += extra + "\r\n"
			}
			if c.token != "" {
				req += "Authorization: Bearer " + c.token + "\r\n"
			}
			batch := []byte(strings.Repeat(req+"\r\n", 64))
			// The requests go on until the server stops reading them (its
			// answers fill the buffers) and the buffers of the requests
			// fill too; the write that then waits fails once the server
			// gives up and closes the connection (reset: requests it never
			// read are left). Nothing here ever reads an answer.
			cut := make(chan error, 1)
			go func() {
				for {
					if _, err := conn.Write(batch); err != nil {
						cut <- err
						return
					}
				}
			}()
			bound := timeout + 10*time.Second
			select {
			case err := <-cut:
				if errors.Is(err, net.ErrClosed) {
					t.Fatalf("write ended by the test's own close: %v", err)
				}
			case <-time.After(bound):
				t.Fatalf("%s: connection still held %s after its answers stopped being read (response write timeout %s)",
					c.name, bound, timeout)
			}
		})
	}
}

// TestWebSocketOutlivesResponseWriteTimeout: an upgraded WebSocket is left
// without the deadline the router sets once a live route's handler
// returns: its connection belongs to the WebSocket library, whose writes
// set none, so a deadline set on it would cut every frame written after
// the response write timeout.
func TestWebSocketOutlivesResponseWriteTimeout(t *testing.T) {
	t.Parallel()
	const timeout = 200 * time.Millisecond
	h := hubtest.New()
	e := newEnv(t, envOptions{router: func(o *transport.RouterOptions) {
		o.ResponseWriteTimeout = timeout
		o.Register = func(r transport.Routes) {
			wsh := ws.NewHandler(ws.Options{Hub: h,
				Authenticate: func(context.Context, string) (ws.Identity, error) { return ws.Identity{UserID: "u"}, nil },
				Recheck:      func(context.Context, ws.Identity) error { return nil }})
			t.Cleanup(func() { _ = wsh.Shutdown(context.Background()) })
			r.Engine.GET("/ws", gin.WrapH(wsh))
		}
	}})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	hd := http.Header{}
	hd.Set("Authorization", "Bearer t")
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(e.srv.URL, "http")+"/ws", &websocket.DialOptions{HTTPHeader: hd})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if _, data, err := c.Read(ctx); err != nil || !strings.Contains(string(data), `"hello"`) {
		t.Fatalf("first frame %s %v, want hello", data, err)
	}
	// What is tested is the passing of time: a deadline of the response
	// write timeout, had one been set, is now over.
	<-time.After(4 * timeout)
	h.DeliverAll("u", protocol.Conversation("updated", persistence.Conversation{ID: "0123456789abcdef01234567"}))
	if _, data, err := c.Read(ctx); err != nil || !strings.Contains(string(data), `"conversation"`) {
		t.Fatalf("frame after the response write timeout: %s %v", data, err)
	}
}
