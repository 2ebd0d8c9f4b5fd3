package headers

import (
	"net/http"
	"testing"
)

func TestHasToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		values []string
		token  string
		want   bool
	}{
		{"alone", []string{"websocket"}, "websocket", true},
		{"in a list, other case", []string{"keep-alive, Upgrade"}, "upgrade", true},
		{"on a second line", []string{"text/html", "text/event-stream"}, "text/event-stream", true},
		{"with parameters", []string{"text/html;q=0.9, text/event-stream; q=0.5"}, "text/event-stream", true},
		{"a longer token", []string{"text/event-streams"}, "text/event-stream", false},
		{"a parameter only", []string{"text/html; text/event-stream"}, "text/event-stream", false},
		{"absent", nil, "upgrade", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := http.Header{"X": tc.values}
			if got := HasToken(h, "X", tc.token); got != tc.want {
				t.Fatalf("HasToken(%q, %q) = %v, want %v", tc.values, tc.token, got, tc.want)
			}
		})
	}
}
