package hub

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"chatd/llm"
)

// genLines is a slog handler handing on the generation started and
// finished records, with the attributes given to the logger before.
type genLines struct {
	attrs []slog.Attr
	lines chan map[string]string
}

func (genLines) Enabled(context.Context, slog.Level) bool { return true }
func (l genLines) WithGroup(string) slog.Handler          { return l }
func (l genLines) WithAttrs(as []slog.Attr) slog.Handler {
	return genLines{attrs: append(l.attrs[:len(l.attrs):len(l.attrs)], as...), lines: l.lines}
}

func (l genLines) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "generation started" && r.Message != "generation finished" &&
		!strings.HasPrefix(r.Message, finalDroppedLine) {
		return nil
	}
	line := map[string]string{"msg": r.Message, "level": r.Level.String()}
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

// finalDroppedLine begins the error lines of Hub.FinalDropped.
const finalDroppedLine = "answer's final update dropped"

// noInterrupter is a Store that cannot mark messages interrupted, so that
// Hub.endLater refuses.
type noInterrupter struct{ Store }

// TestGenerationLinesNameTheUser: the lines of an answer's start and end
// name the user it answers, the connection that asked and the model, so
// that an operator can tell whose answer failed while the socket is still
// open (its close line, hours later, was the only one tying a connection
// to a user; the finished line did not even name the model). The error
// lines of an answer whose final update the writer dropped (FinalDropped,
// each of its three) name the user and the message as well.
func TestGenerationLinesNameTheUser(t *testing.T) {
	t.Parallel()
	failed := func(_ context.Context, _ llm.Request, onDelta func(string)) (llm.Result, error) {
		onDelta("partial")
		return llm.Result{}, &llm.Error{Kind: llm.KindConnection, Message: "the provider failed"}
	}
	cases := []struct {
		name      string
		script    func(context.Context, llm.Request, func(string)) (llm.Result, error)
		wantLevel string
	}{
		{"completed", say("answer"), "INFO"},
		{"failed upstream", failed, "WARN"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			log := genLines{lines: make(chan map[string]string, 4)}
			e := newEnv(t, Options{Logger: slog.New(log)}, tc.script)
			sub := newSub("u")
			res, err := e.h.Send(context.Background(), sub, "u", SendRequest{Content: "question", ConnectionID: sub.id})
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			var started map[string]string
			for _, msg := range []string{"generation started", "generation finished"} {
				var line map[string]string
				select {
				case line = <-log.lines:
				case <-time.After(waitTimeout):
					t.Fatalf("no %q line", msg)
				}
				if line["msg"] != msg {
					t.Fatalf("line %v, want %q", line, msg)
				}
				if line["user"] != "u" || line["connection"] != sub.id || line["message"] != res.MessageID {
					t.Errorf("%s: user %q, connection %q, message %q; want u, %s, %s",
						msg, line["user"], line["connection"], line["message"], sub.id, res.MessageID)
				}
				if started == nil {
					started = line
					continue
				}
				if line["model"] == "" || line["model"] != started["model"] {
					t.Errorf("finished with model %q, started with %q", line["model"], started["model"])
				}
				if line["level"] != tc.wantLevel {
					t.Errorf("finished at %s, want %s", line["level"], tc.wantLevel)
				}
			}
		})
	}
	t.Run("final update dropped", finalDroppedLinesNameTheUser)
}

// finalDroppedLinesNameTheUser is TestGenerationLinesNameTheUser's part
// for Hub.FinalDropped's three error lines.
func finalDroppedLinesNameTheUser(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		setup func(e *env) *Hub
	}{
		{"while its Finish returns", func(e *env) *Hub { e.h.unsaved.begin("m1"); return e.h }},
		{"marked in the background", func(e *env) *Hub { return e.h }},
		{"cannot be marked", func(e *env) *Hub {
			opts := e.h.opts
			opts.Store = noInterrupter{e.store}
			return New(opts)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			log := genLines{lines: make(chan map[string]string, 4)}
			e := newEnv(t, Options{Logger: slog.New(log)}, say("answer"))
			tc.setup(e).FinalDropped("m1", "u", errors.New("dropped"))
			select {
			case line := <-log.lines:
				if line["level"] != "ERROR" || line["user"] != "u" || line["message"] != "m1" {
					t.Errorf("line %v: want an ERROR naming user u and message m1", line)
				}
			case <-time.After(waitTimeout):
				t.Fatalf("no %q line", finalDroppedLine)
			}
		})
	}
}
