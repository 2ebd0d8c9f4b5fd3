package ferret

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"testing"
)

// TestHandler is a slog.Handler that writes each record as one tb.Log line
// (text format). Records logged after the test finished are dropped instead
// of making the testing package panic.
type TestHandler struct {
	tb    testing.TB
	level slog.Leveler
	state *testLogState
	attrs []slog.Attr // added with WithAttrs, already qualified by groups
	group string      // dotted prefix from WithGroup
}

// testLogState is shared by a TestHandler and every handler derived from it.
type testLogState struct {
	mu   sync.Mutex
	done bool
}

// NewTestHandler returns a handler logging to tb at level and above; a nil
// level means info. It stops logging when tb's cleanups run.
func NewTestHandler(tb testing.TB, level slog.Leveler) *TestHandler {
	if level == nil {
		level = slog.LevelInfo
	}
	h := &TestHandler{tb: tb, level: level, state: &testLogState{}}
	tb.Cleanup(h.state.finish)
	return h
}

func (s *testLogState) finish() {
	s.mu.Lock()
	s.done = true
	s.mu.Unlock()
}

// Enabled implements slog.Handler.
func (h *TestHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.level.Level()
}

// Handle implements slog.Handler.
func (h *TestHandler) Handle(_ context.Context, r slog.Record) error {
	var buf bytes.Buffer
	th := slog.NewTextHandler(&buf, &slog.HandlerOptions{
		Level: slog.LevelDebug - 10,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{} // the test log has its own timing
			}
			return a
		},
	})
	rec := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	rec.AddAttrs(h.attrs...)
	r.Attrs(func(a slog.Attr) bool {
		rec.AddAttrs(h.qualify(a))
		return true
	})
	if err := th.Handle(context.Background(), rec); err != nil {
		return err
	}
	h.state.mu.Lock()
	defer h.state.mu.Unlock()
	if !h.state.done {
		h.tb.Log(string(bytes.TrimRight(buf.Bytes(), "\n")))
	}
	return nil
}

// WithAttrs implements slog.Handler.
func (h *TestHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append([]slog.Attr(nil), h.attrs...)
	for _, a := range attrs {
		c.attrs = append(c.attrs, h.qualify(a))
	}
	return &c
}

// WithGroup implements slog.Handler.
func (h *TestHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.group = h.group + name + "."
	return &c
}

// qualify prefixes a's key with the handler's groups.
func (h *TestHandler) qualify(a slog.Attr) slog.Attr {
	if h.group != "" {
		a.Key = h.group + a.Key
	}
	return a
}
