package hub

import (
	"strings"
	"testing"
)

// TestHistoryWithinTheWindow: the history a prompt may send is what the
// model's context window holds by the estimate, not a fixed number of
// bytes: four messages of 30,000 bytes (about 40,000 estimated tokens in
// all) go whole to a model with a window of 100,000 tokens, nothing said
// to be left out "to fit the context window". HistoryBytes bounds the
// history of a model whose window is unknown, MaxHistoryBytes that of
// any model.
func TestHistoryWithinTheWindow(t *testing.T) {
	t.Parallel()
	content := strings.Repeat("wordy ", 5000) // 30,000 bytes
	tests := []struct {
		name    string
		window  int
		opts    Options
		omitted int // of the fourth prompt (an answer the cut leaves first is left out too)
	}{
		{"a window of 100,000 tokens holds all", 100_000, Options{}, 0},
		{"an unknown window: HistoryBytes", 0, Options{HistoryBytes: 70_000}, 4},
		{"a window past MaxHistoryBytes: MaxHistoryBytes", 10_000_000, Options{MaxHistoryBytes: 70_000}, 4},
		{"a window of 30,000 tokens: the token fit", 30_000, Options{}, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, tt.opts, say("ok"))
			e.model.window = tt.window
			dones, _ := converse(t, e, 4, content)
			last := dones[len(dones)-1]
			e.model.mu.Lock()
			sent := e.model.requests[len(e.model.requests)-1].Messages
			e.model.mu.Unlock()
			if last.Omitted != tt.omitted || len(sent) != 7-tt.omitted {
				t.Fatalf("the fourth prompt sent %d messages, its done leaves out %d; want %d, %d",
					len(sent), last.Omitted, 7-tt.omitted, tt.omitted)
			}
		})
	}
}

func TestHistoryBound(t *testing.T) {
	t.Parallel()
	o := Options{}
	o.setDefaults()
	tests := []struct{ tokens, want int }{
		{0, DefaultHistoryBytes},                         // nothing known of the model
		{8000, 8000 * bytesPerToken},                     // what the window holds
		{200_000, 200_000 * bytesPerToken},               // past the old 100,000 bytes
		{1 << 20, DefaultMaxHistoryBytes},                // a million tokens
		{1 << 40, DefaultMaxHistoryBytes},                // and no overflow past it
		{DefaultMaxHistoryBytes, DefaultMaxHistoryBytes}, // capped
	}
	for _, tt := range tests {
		if got := o.historyBound(tt.tokens); got != tt.want {
			t.Errorf("historyBound(%d) = %d, want %d", tt.tokens, got, tt.want)
		}
	}
}
