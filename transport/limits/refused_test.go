package limits

import (
	"context"
	"fmt"
	"testing"

	"chatd/hub/protocol"
)

// TestRefusedSendsKeepTheirSendPastTheirBudget: a send the hub refuses
// gives its send back only while the user's refused sends last; past them
// it keeps it, so refused sends end in rate_limited. A send the server
// failed always gives everything back, and spends no refused send; a new
// conversation a refused send spent is given back either way.
func TestRefusedSendsKeepTheirSendPastTheirBudget(t *testing.T) {
	t.Parallel()
	const tries = 100
	for _, tc := range []struct {
		name    string
		err     error
		allowed int // sends spent before rate_limited, at most tries
	}{
		// A burst of 10 sends (40 a minute) and of 2 refused sends (8 a minute).
		{"generation_running", protocol.Errorf(protocol.CodeGenerationRunning, "busy"), 12},
		{"not_found, wrapped", fmt.Errorf("send: %w", protocol.Errorf(protocol.CodeNotFound, "no")), 12},
		{"internal", protocol.Errorf(protocol.CodeInternal, "store"), tries},
		{"unavailable", protocol.Errorf(protocol.CodeUnavailable, "bus"), tries},
		{"out of time", fmt.Errorf("store: %w", context.DeadlineExceeded), tries},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := New(Options{SendsPerMinute: 40, RefusedSendsPerMinute: 8, ConversationsPerMinute: 4})
			n := 0
			for ; n < tries; n++ {
				spent, r := l.SpendSend("u", true)
				if r != nil {
					if r.Conversations {
						t.Fatalf("send %d refused for new conversations: a refused send kept one", n)
					}
					break
				}
				if err := spent.GiveOn(tc.err); err != tc.err {
					t.Fatalf("GiveOn returned %v, want %v", err, tc.err)
				}
			}
			// The budgets refill by well under one send while this runs.
			if n < tc.allowed || n > tc.allowed+1 {
				t.Fatalf("%d sends spent before rate_limited, want %d", n, tc.allowed)
			}
			for i := range 4 {
				if _, ok := l.AllowConversation("u"); !ok {
					t.Fatalf("new conversation %d of 4 refused: a refused send kept one", i)
				}
			}
			if tc.allowed == tries && !l.takeRefused("u") {
				t.Fatal("a failed send spent a refused send")
			}
		})
	}
}
