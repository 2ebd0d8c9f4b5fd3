package ws_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"chatd/hub/protocol"
	"chatd/persistence"
	"chatd/transport/ws"
)

// refusedLog is a slog handler that hands on the attributes of each line
// whose message is msg.
type refusedLog struct {
	msg   string
	attrs []slog.Attr
	lines chan map[string]string
}

func (refusedLog) Enabled(context.Context, slog.Level) bool { return true }
func (l refusedLog) WithGroup(string) slog.Handler          { return l }
func (l refusedLog) WithAttrs(as []slog.Attr) slog.Handler {
	return refusedLog{msg: l.msg, attrs: append(l.attrs[:len(l.attrs):len(l.attrs)], as...), lines: l.lines}
}

func (l refusedLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message != l.msg {
		return nil
	}
	line := map[string]string{}
	for _, a := range l.attrs {
		line[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool {
		line[a.Key] = a.Value.String()
		return true
	})
	l.lines <- line
	return nil
}

// TestRefusedFrameLineNamesTheUser: a frame refused because the database
// cannot take it now (a full disk) is logged naming the user, as a frame
// that failed otherwise is, so an operator can tell whose sends failed.
func TestRefusedFrameLineNamesTheUser(t *testing.T) {
	t.Parallel()
	log := refusedLog{msg: "websocket frame refused: the database cannot take it now", lines: make(chan map[string]string, 4)}
	s := newServer(t, serverOptions{opts: ws.Options{Logger: slog.New(log)}})
	conv := persistence.NewID()
	s.hub.AddConversation(conv, "u", "")
	s.hub.FailSends(fmt.Errorf("store user message: disk full: %w", persistence.ErrUnavailable))
	cl := s.dial(dialOptions{user: "u"})
	cl.expect(protocol.TypeHello)
	cl.write(`{"type":"send","id":"s","conversationId":"` + conv + `","content":"hi"}`)
	if f := cl.next(); f.Type != protocol.TypeError || f.Code != protocol.CodeUnavailable {
		t.Fatalf("answer %s, want the error %s", f.raw, protocol.CodeUnavailable)
	}
	select {
	case line := <-log.lines:
		if line["user"] != "u" {
			t.Errorf("refused frame logged as %v, want user u", line)
		}
	case <-time.After(testTimeout):
		t.Fatal("no refused frame logged")
	}
}
