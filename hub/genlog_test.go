package hub

import (
	"context"
	"log/slog"
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
	if r.Message != "generation started" && r.Message != "generation finished" {
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

// TestGenerationLinesNameTheUser: the lines of an answer's start and end
// name the user it answers, the connection that asked and the model, so
// that an operator can tell whose answer failed while the socket is still
// open (its close line, hours later, was the only one tying a connection
// to a user; the finished line did not even name the model).
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
}
