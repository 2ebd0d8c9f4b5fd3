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

// TestRefusedSendsHeldByTheCluster: with a Shared backend the user's
// refused sends that give their send back are counted for the cluster as
// a whole, not per instance: refusals alternating between two instances
// give back as many sends as the cluster's budget holds, and the rest
// keep theirs. A refused send the cluster refuses leaves this process's
// budget as it was; an unreachable cluster leaves the process's budget
// alone in charge. Before, each instance gave back up to its own budget.
func TestRefusedSendsHeldByTheCluster(t *testing.T) {
	t.Parallel()
	refused := protocol.Errorf(protocol.CodeGenerationRunning, "busy")
	c := &cluster{conns: map[string]int{}, sends: map[string]int{"u": 100}, convs: map[string]int{},
		refused: map[string]int{"u": 2}}
	// A burst of 100 sends and of 2 refused sends on each instance.
	opts := Options{SendsPerMinute: 400, RefusedSendsPerMinute: 8, Shared: c}
	a, b := New(opts), New(opts)
	refuse := func(l *Users, n int) {
		t.Helper()
		for range n {
			spent, r := l.SpendSend("u", false)
			if r != nil {
				t.Fatalf("send refused: %v", r.Err)
			}
			_ = spent.GiveOn(refused)
		}
	}
	sendsLeft := func() int {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.sends["u"]
	}
	refuse(a, 1)
	refuse(b, 1)
	if n := sendsLeft(); n != 100 {
		t.Fatalf("%d sends left after two refusals within the cluster's budget, want 100", n)
	}
	refuse(a, 1)
	refuse(b, 1)
	if n := sendsLeft(); n != 98 {
		t.Fatalf("%d sends left after two refusals past the cluster's budget, want 98: each instance gave back up to its own", n)
	}
	// The cluster refused a's second: a's own budget still holds the
	// second of its burst.
	c.mu.Lock()
	c.refused["u"] = 10
	c.mu.Unlock()
	refuse(a, 1)
	if n := sendsLeft(); n != 98 {
		t.Fatalf("%d sends left, want 98: a refusal by the cluster used up the instance's own", n)
	}
	// Unreachable, the cluster leaves the instance's own budget in charge.
	c.mu.Lock()
	c.down = true
	c.mu.Unlock()
	refuse(b, 3)
	if !b.takeRefusedLocal("v") || b.takeRefusedLocal("u") {
		t.Fatal("with the cluster unreachable, the instance's own refused sends did not hold")
	}
}
