package limits

import (
	"sync"
	"testing"
	"time"

	"chatd/hub/protocol"
)

// left returns the user's sends and new conversations left in this
// process, refilled up to now.
func left(l *Users, user string) (sends, convs float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.state(user)
	now := time.Now()
	s.sends.refill(l.sends, now)
	s.convs.refill(l.convs, now)
	return s.sends.tokens, s.convs.tokens
}

// TestCreatingSendSpendsBothOrNeither: a send that creates a conversation
// spends one send and one new conversation, both or neither, in this
// process and on a cluster, under parallel requests released together.
// Refused for new conversations, it leaves the sends budget full; refused
// for sends, it leaves the new conversations budget full.
func TestCreatingSendSpendsBothOrNeither(t *testing.T) {
	t.Parallel()
	const parallel = 16
	for _, tc := range []struct {
		name    string
		cluster bool
		spent   string // the budget spent before: "sends", "conversations" or ""
		passed  int    // of the parallel requests
	}{
		{"new conversations spent", false, "conversations", 0},
		{"sends spent", false, "sends", 0},
		{"a burst of both", false, "", 8},
		{"cluster: new conversations spent", true, "conversations", 0},
		{"cluster: sends spent", true, "sends", 0},
		{"cluster: a burst of both", true, "", 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts := Options{SendsPerMinute: 32, ConversationsPerMinute: 8} // bursts of 8
			c := &cluster{conns: map[string]int{}, sends: map[string]int{"u": 8}, convs: map[string]int{"u": 8}}
			if tc.cluster {
				// This process's budgets are larger than the parallel
				// requests: only the cluster's refuse.
				opts = Options{SendsPerMinute: 400, ConversationsPerMinute: 100, Shared: c}
			}
			l := New(opts)
			burstSends, burstConvs := left(l, "u")
			spendAll(l, c, tc.cluster, tc.spent)
			passed := make(chan bool, parallel)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for range parallel {
				wg.Go(func() {
					<-start
					passed <- creatingSend(t, l, tc.spent)
				})
			}
			close(start)
			wg.Wait()
			close(passed)
			n := 0
			for ok := range passed {
				if ok {
					n++
				}
			}
			if n != tc.passed {
				t.Fatalf("%d of %d sends creating a conversation passed, want %d", n, parallel, tc.passed)
			}
			sends, convs := left(l, "u")
			wantSends, wantConvs := burstSends, burstConvs
			switch {
			case tc.spent == "": // the passed ones spent both
				wantSends, wantConvs = sends, convs
			case tc.cluster:
				// This process gave back what the cluster refused.
			case tc.spent == "conversations":
				wantConvs = convs
			case tc.spent == "sends":
				wantSends = sends
			}
			if sends != wantSends || convs != wantConvs {
				t.Fatalf("this process has %.2f sends and %.2f new conversations left, want %.2f and %.2f",
					sends, convs, wantSends, wantConvs)
			}
			if tc.cluster {
				c.mu.Lock()
				defer c.mu.Unlock()
				want := map[string][2]int{"sends": {0, 8}, "conversations": {8, 0}, "": {0, 0}}[tc.spent]
				if got := [2]int{c.sends["u"], c.convs["u"]}; got != want {
					t.Fatalf("the cluster has %d sends and %d new conversations left, want %d and %d", got[0], got[1], want[0], want[1])
				}
			}
		})
	}
}

// spendAll empties the named budget of user u, in this process or on the cluster.
func spendAll(l *Users, c *cluster, onCluster bool, budget string) {
	switch {
	case onCluster && budget == "sends":
		c.sends["u"] = 0
	case onCluster && budget == "conversations":
		c.convs["u"] = 0
	case budget == "sends":
		for l.AllowSend("u") == nil {
		}
	case budget == "conversations":
		for {
			if _, ok := l.AllowConversation("u"); !ok {
				break
			}
		}
	}
}

// creatingSend calls SpendSend for a new conversation and checks that a
// refusal names the budget spent.
func creatingSend(t *testing.T, l *Users, spent string) bool {
	_, r := l.SpendSend("u", true)
	switch {
	case r == nil:
		return true
	case r.Err == nil || r.Err.Code != protocol.CodeRateLimited:
		t.Errorf("refused with %v, want rate_limited", r.Err)
	case spent == "": // either may refuse once the bursts are spent
	case !r.Conversations && spent != "sends":
		t.Errorf("refused for sends (%v), with %q spent", r.Err, spent)
	case r.Conversations && (spent != "conversations" || r.Wait <= 0):
		t.Errorf("refused for new conversations (wait %v), with %q spent", r.Wait, spent)
	}
	return false
}

// TestClusterRefusalGivesLocalBack: a send or a new conversation the
// cluster refuses (its budget spent on other instances) gives this
// process's token back. Before, the process kept it spent, so a user the
// cluster refused here ran out of this instance's own budget, refused by
// it once the cluster had room again.
func TestClusterRefusalGivesLocalBack(t *testing.T) {
	t.Parallel()
	c := &cluster{conns: map[string]int{}, sends: map[string]int{"u": 0}, convs: map[string]int{"u": 0}}
	l := New(Options{SendsPerMinute: 32, ConversationsPerMinute: 8, Shared: c})
	burstSends, burstConvs := left(l, "u")
	if err := l.AllowSend("u"); err == nil {
		t.Fatal("a send the cluster has no budget for passed")
	}
	if _, ok := l.AllowConversation("u"); ok {
		t.Fatal("a new conversation the cluster has no budget for passed")
	}
	if sends, convs := left(l, "u"); sends != burstSends || convs != burstConvs {
		t.Fatalf("this process has %.2f sends and %.2f new conversations left after the cluster refused, want %.2f and %.2f",
			sends, convs, burstSends, burstConvs)
	}
}

// TestBucketGive: a token given back restores what the take spent, never
// beyond the burst.
func TestBucketGive(t *testing.T) {
	t.Parallel()
	r := perMinute(8) // burst 2
	var b bucket
	now := b.last
	b.give(r, now.Add(1))
	if b.tokens != r.burst {
		t.Fatalf("a new bucket given a token holds %v, want its burst %v", b.tokens, r.burst)
	}
	b.take(r, now.Add(2))
	b.give(r, now.Add(3))
	b.give(r, now.Add(4))
	if b.tokens != r.burst {
		t.Fatalf("the bucket holds %v after a take and two gives, want its burst %v", b.tokens, r.burst)
	}
}

// TestSpentGive: Give returns what SpendSend took, in this process and on
// the cluster, and on the cluster only what it took: a send let through
// while the cluster could not be reached gives nothing back there (the
// cluster would hold a send it never spent).
func TestSpentGive(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		down    bool // the cluster cannot be reached at the take
		creates bool
	}{
		{"a send", false, false},
		{"a send creating a conversation", false, true},
		{"the cluster unreachable", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := &cluster{conns: map[string]int{}, sends: map[string]int{"u": 8}, convs: map[string]int{"u": 8}, down: tc.down}
			l := New(Options{SendsPerMinute: 32, ConversationsPerMinute: 8, Shared: c})
			burstSends, burstConvs := left(l, "u")
			spent, r := l.SpendSend("u", tc.creates)
			if r != nil {
				t.Fatalf("refused: %v", r.Err)
			}
			c.mu.Lock()
			c.down = false
			c.mu.Unlock()
			spent.Give()
			Spent{}.Give() // nothing
			if sends, convs := left(l, "u"); sends != burstSends || convs != burstConvs {
				t.Fatalf("this process has %.2f sends and %.2f new conversations left, want %.2f and %.2f", sends, convs, burstSends, burstConvs)
			}
			if c.sends["u"] != 8 || c.convs["u"] != 8 {
				t.Fatalf("the cluster has %d sends and %d new conversations left, want 8 and 8", c.sends["u"], c.convs["u"])
			}
		})
	}
}
