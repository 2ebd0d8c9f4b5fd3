package limits

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"chatd/hub/protocol"

	"chatd/internal/logcount"
)

// cluster is an in-memory Shared: the counts of several instances in one
// map (hub/natsbus tests the NATS one against a real cluster).
type cluster struct {
	mu    sync.Mutex
	conns map[string]int
	sends map[string]int // sends left
	convs map[string]int // new conversations left
	// refused is the refused sends left; nil: no bound.
	refused map[string]int
	down    bool
	calls   int
}

func (c *cluster) AcquireConn(_ context.Context, user string, max int) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if c.down {
		return false, errors.New("bus down")
	}
	if c.conns[user] >= max {
		return false, nil
	}
	c.conns[user]++
	return true, nil
}

func (c *cluster) ReleaseConn(_ context.Context, user string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if c.down {
		return errors.New("bus down")
	}
	c.conns[user]--
	return nil
}

func (c *cluster) TakeSend(_ context.Context, user string, _ int) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if c.down {
		return false, errors.New("bus down")
	}
	if c.sends[user] == 0 {
		return false, nil
	}
	c.sends[user]--
	return true, nil
}

func (c *cluster) GiveSend(_ context.Context, user string, _ int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if c.down {
		return errors.New("bus down")
	}
	c.sends[user]++
	return nil
}

func (c *cluster) GiveBudget(_ context.Context, budget, user string, _ int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if c.down {
		return errors.New("bus down")
	}
	left, err := c.budget(budget)
	if err != nil {
		return err
	}
	if left != nil {
		left[user]++
	}
	return nil
}

// budget is the map of what is left of the named budget (nil: no bound).
func (c *cluster) budget(name string) (map[string]int, error) {
	switch name {
	case BudgetConversations:
		return c.convs, nil
	case BudgetRefusedSends:
		return c.refused, nil
	}
	return nil, errors.New("unknown budget " + name)
}

func (c *cluster) TakeBudget(_ context.Context, budget, user string, _ int) (time.Duration, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if c.down {
		return 0, false, errors.New("bus down")
	}
	left, err := c.budget(budget)
	switch {
	case err != nil:
		return 0, false, err
	case left == nil:
		return 0, true, nil
	case left[user] == 0:
		return 7 * time.Second, false, nil
	}
	left[user]--
	return 0, true, nil
}

// TestSharedLimits: two instances' Users over one Shared hold the limits
// together; a refusal by the cluster gives the local slot back; an
// unreachable Shared lets requests through (the per-process limits still
// hold); frames other than sends never reach it.
func TestSharedLimits(t *testing.T) {
	t.Parallel()
	c := &cluster{conns: map[string]int{}, sends: map[string]int{"u": 1}, convs: map[string]int{"u": 1}}
	a := New(Options{MaxConns: 2, Shared: c})
	b := New(Options{MaxConns: 2, Shared: c})
	if !a.AcquireConn("u") || !b.AcquireConn("u") {
		t.Fatal("the first two connections of the cluster were refused")
	}
	if a.AcquireConn("u") {
		t.Fatal("a third connection in the cluster was accepted")
	}
	// The refused one did not keep a's local slot: a's second local slot is free.
	c.conns["u"] = 0
	if !a.AcquireConn("u") {
		t.Fatal("a refusal by the cluster kept the local slot")
	}
	b.ReleaseConn("u")
	if c.conns["u"] != 0 {
		t.Fatalf("release not passed on: cluster counts %d", c.conns["u"])
	}

	if err := a.AllowSend("u"); err != nil {
		t.Fatalf("first send: %v", err)
	}
	if err := b.AllowSend("u"); err == nil || err.Code != protocol.CodeRateLimited {
		t.Fatalf("a second send on another instance: %v, want rate_limited", err)
	}
	before := c.calls
	if err := b.AllowFrame("u"); err != nil {
		t.Fatal(err)
	}
	if c.calls != before {
		t.Fatal("a ping consulted the cluster")
	}

	if _, ok := a.AllowConversation("u"); !ok {
		t.Fatal("the cluster's first new conversation was refused")
	}
	if wait, ok := b.AllowConversation("u"); ok || wait != 7*time.Second {
		t.Fatalf("a second new conversation on another instance: %v (wait %v), want the cluster's refusal and wait", ok, wait)
	}

	c.down = true
	fresh := New(Options{MaxConns: 1, Shared: c})
	if !fresh.AcquireConn("w") {
		t.Fatal("an unreachable cluster refused a connection")
	}
	if fresh.AcquireConn("w") {
		t.Fatal("the per-process limit did not hold while the cluster is unreachable")
	}
	if err := fresh.AllowSend("w"); err != nil {
		t.Fatalf("an unreachable cluster refused a send: %v", err)
	}
	if _, ok := fresh.AllowConversation("w"); !ok {
		t.Fatal("an unreachable cluster refused a new conversation")
	}
}

// TestSpendBudget: give gives back the event the cluster spent, and
// nothing when the cluster refused the request or could not be reached
// (it spent nothing then); a nil cluster lets every request through.
func TestSpendBudget(t *testing.T) {
	t.Parallel()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tc := range []struct {
		name      string
		left      int
		down      bool
		ok        bool
		leftAfter int // after give
	}{
		{"spent, given back", 1, false, true, 1},
		{"refused", 0, false, false, 0},
		{"unreachable", 1, true, true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := &cluster{convs: map[string]int{"u": tc.left}, down: tc.down}
			_, ok, give := SpendBudget(c, time.Second, quiet, BudgetConversations, "u", 1)
			if ok != tc.ok {
				t.Fatalf("ok %v, want %v", ok, tc.ok)
			}
			c.down = false // a give that asked an unreachable cluster would count
			give()
			if got := c.convs["u"]; got != tc.leftAfter {
				t.Fatalf("%d left after give, want %d", got, tc.leftAfter)
			}
		})
	}
	_, ok, give := SpendBudget(nil, time.Second, quiet, BudgetConversations, "u", 1)
	if !ok {
		t.Fatal("a nil cluster refused")
	}
	give() // gives nothing, and does not fail
}

// TestSharedOutageLogsOnce: through an outage of the cluster every
// request that goes through on the instance's limits alone failed alike:
// 100 connections opened and closed, sends and new conversations log each
// failure once (lograte: then once per 30 s, with the count left out),
// not a warning each, 200 lines for the connections alone.
func TestSharedOutageLogsOnce(t *testing.T) {
	t.Parallel()
	log := &logcount.Warnings{}
	c := &cluster{conns: map[string]int{}, down: true}
	u := New(Options{MaxConns: 1, SendsPerMinute: 1 << 20, ConversationsPerMinute: 1 << 20, Shared: c,
		Logger: slog.New(log)})
	for range 100 {
		if !u.AcquireConn("u") {
			t.Fatal("an unreachable cluster refused a connection")
		}
		u.ReleaseConn("u")
		if err := u.AllowSend("u"); err != nil {
			t.Fatalf("an unreachable cluster refused a send: %v", err)
		}
		if _, ok := u.AllowConversation("u"); !ok {
			t.Fatal("an unreachable cluster refused a new conversation")
		}
	}
	lines := log.Lines()
	if len(lines) == 0 {
		t.Fatal("the outage was not logged")
	}
	for msg, n := range lines {
		if n != 1 {
			t.Errorf("%q logged %d times, want once", msg, n)
		}
	}
}
