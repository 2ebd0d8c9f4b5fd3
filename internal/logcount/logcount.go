// Package logcount is a slog handler for tests that counts the lines
// logged at WARN or above by message.
package logcount

import (
	"context"
	"log/slog"
	"maps"
	"sync"
)

// Warnings counts the lines at WARN or above by message; it is safe for
// concurrent use. The zero value is ready.
type Warnings struct {
	mu    sync.Mutex
	lines map[string]int
}

// Enabled takes every level.
func (*Warnings) Enabled(context.Context, slog.Level) bool { return true }

// WithAttrs returns w: attributes do not change the count.
func (w *Warnings) WithAttrs([]slog.Attr) slog.Handler { return w }

// WithGroup returns w: groups do not change the count.
func (w *Warnings) WithGroup(string) slog.Handler { return w }

// Handle counts r when it is at WARN or above.
func (w *Warnings) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		w.mu.Lock()
		if w.lines == nil {
			w.lines = map[string]int{}
		}
		w.lines[r.Message]++
		w.mu.Unlock()
	}
	return nil
}

// Lines returns a copy of the counts by message.
func (w *Warnings) Lines() map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return maps.Clone(w.lines)
}
