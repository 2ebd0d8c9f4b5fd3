package ws_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"chatd/transport/ws"
)

// closeLog is a slog handler that hands on the close_code and reason of
// each "websocket closed" line.
type closeLog struct{ lines chan closeLine }

type closeLine struct {
	code   int64
	reason string
}

func (closeLog) Enabled(context.Context, slog.Level) bool { return true }
func (l closeLog) WithAttrs([]slog.Attr) slog.Handler     { return l }
func (l closeLog) WithGroup(string) slog.Handler          { return l }

func (l closeLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "websocket closed" {
		return nil
	}
	var line closeLine
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "close_code":
			line.code = a.Value.Int64()
		case "reason":
			line.reason = a.Value.String()
		}
		return true
	})
	l.lines <- line
	return nil
}

// TestCloseLoggedForWhatItIs: a client that closes with 1009 (a frame of
// the server's was too big for it) is logged as closed by the client,
// code 1009, not as "frame too large", which is kept for a client frame
// over the server's read limit; a client gone without a close frame is
// logged with 1006 and says so, not with code 0 and no reason.
func TestCloseLoggedForWhatItIs(t *testing.T) {
	t.Parallel()
	log := closeLog{lines: make(chan closeLine, 4)}
	s := newServer(t, serverOptions{opts: ws.Options{Logger: slog.New(log), ReadLimit: 1 << 10}})
	wait := func(what string) closeLine {
		t.Helper()
		select {
		case l := <-log.lines:
			return l
		case <-time.After(testTimeout):
			t.Fatalf("no close logged for %s", what)
		}
		return closeLine{}
	}

	cl := s.dial(dialOptions{user: "u"})
	cl.expect("hello")
	if err := cl.c.Close(websocket.StatusMessageTooBig, "too big for me"); err != nil {
		t.Fatalf("close: %v", err)
	}
	if l := wait("the client's 1009"); l.code != 1009 || l.reason != ws.ReasonClosedByClient {
		t.Fatalf("the client's 1009 logged as %d %q, want 1009 %q", l.code, l.reason, ws.ReasonClosedByClient)
	}

	gone := s.dial(dialOptions{user: "u"})
	gone.expect("hello")
	gone.c.CloseNow() // no close frame: the TCP connection just ends
	if l := wait("a client gone without a close frame"); l.code != 1006 || l.reason != ws.ReasonNoCloseFrame {
		t.Fatalf("a client gone without a close frame logged as %d %q, want 1006 %q", l.code, l.reason, ws.ReasonNoCloseFrame)
	}

	big := s.dial(dialOptions{user: "u"})
	big.expect("hello")
	big.write(`{"type":"ping","id":"` + strings.Repeat("x", 2<<10) + `"}`)
	if got := big.closeStatus(); got != websocket.StatusMessageTooBig {
		t.Fatalf("close status %d, want 1009", got)
	}
	if l := wait("a frame over the limit"); l.code != 1009 || l.reason != ws.ReasonFrameTooLarge {
		t.Fatalf("a frame over the limit logged as %d %q, want 1009 %q", l.code, l.reason, ws.ReasonFrameTooLarge)
	}
}
