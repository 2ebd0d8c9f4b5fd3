package transport_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/gin-gonic/gin"

	"chatd/transport"
	"chatd/transport/internal/hubtest"
	"chatd/transport/ws"
)

// lineLog is a slog handler handing on the records of some messages,
// their attributes as text.
type lineLog struct {
	msgs  map[string]bool
	lines chan map[string]string
}

func (lineLog) Enabled(context.Context, slog.Level) bool { return true }
func (l lineLog) WithAttrs([]slog.Attr) slog.Handler     { return l }
func (l lineLog) WithGroup(string) slog.Handler          { return l }

func (l lineLog) Handle(_ context.Context, r slog.Record) error {
	if !l.msgs[r.Message] {
		return nil
	}
	line := map[string]string{"msg": r.Message}
	r.Attrs(func(a slog.Attr) bool {
		line[a.Key] = a.Value.String()
		return true
	})
	l.lines <- line
	return nil
}

// TestWebSocketOpenLogged: a WebSocket opened with a valid token leaves a
// line naming its user and its connection id, and the request id of the
// upgrade's request line. That line (101) cannot name the user (/ws is
// not behind the router's authentication), and before, only the close of
// the socket, hours later, tied a connection id to a user: the lines of
// its answers (naming the connection) could not be told apart by user.
func TestWebSocketOpenLogged(t *testing.T) {
	t.Parallel()
	log := lineLog{msgs: map[string]bool{"websocket opened": true, "http request": true}, lines: make(chan map[string]string, 8)}
	e := newEnv(t, envOptions{router: func(o *transport.RouterOptions) {
		o.Logger = slog.New(log)
		o.Register = func(r transport.Routes) {
			wsh := ws.NewHandler(ws.Options{Hub: hubtest.New(), Logger: slog.New(log),
				Authenticate: func(context.Context, string) (ws.Identity, error) { return ws.Identity{UserID: "u-42"}, nil },
				Recheck:      func(context.Context, ws.Identity) error { return nil }})
			t.Cleanup(func() { _ = wsh.Shutdown(context.Background()) })
			r.Engine.GET("/ws", gin.WrapH(wsh))
		}
	}})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	hd := http.Header{}
	hd.Set("Authorization", "Bearer t")
	hd.Set(transport.RequestIDHeader, "ws-open-1")
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(e.srv.URL, "http")+"/ws", &websocket.DialOptions{HTTPHeader: hd})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	_, data, err := c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var hello struct{ ConnectionID string }
	if err := json.Unmarshal(data, &hello); err != nil || hello.ConnectionID == "" {
		t.Fatalf("first frame %s (%v), want hello with a connection id", data, err)
	}
	seen := map[string]map[string]string{}
	for len(seen) < 2 {
		select {
		case l := <-log.lines:
			seen[l["msg"]] = l
		case <-ctx.Done():
			t.Fatalf("lines logged: %v; want the request's and the opening's", seen)
		}
	}
	opened := seen["websocket opened"]
	if opened["user"] != "u-42" || opened["connection"] != hello.ConnectionID || opened["request_id"] != "ws-open-1" {
		t.Errorf("opened line %v, want user u-42, connection %s, request_id ws-open-1", opened, hello.ConnectionID)
	}
	if req := seen["http request"]; req["route"] != "/ws" || req["request_id"] != "ws-open-1" {
		t.Errorf("request line %v, want route /ws with request_id ws-open-1", req)
	}
}
