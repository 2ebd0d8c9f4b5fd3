package natsbus

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestGiveSend: a send given back (GiveSend), or a budget's event
// (GiveBudget), can be taken again, on any instance, also when requests on several instances each take and give
// back at once; giving back never fills a bucket past its burst, and a
// user without a key (a full bucket) keeps none.
func TestGiveSend(t *testing.T) {
	t.Parallel()
	c := startNATS(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	buses := healthyBuses(t, ctx, c, "give", 2)
	const perMinute = 8 // a burst of 2
	take := func(user string, n int) int {
		passed := 0
		for i := range n {
			ok, err := buses[i%2].Limits().TakeSend(ctx, user, perMinute)
			if err != nil {
				t.Fatalf("take a send of %s: %v", user, err)
			}
			if ok {
				passed++
			}
		}
		return passed
	}
	give := func(user string, n int) {
		for i := range n {
			if err := buses[i%2].Limits().GiveSend(ctx, user, perMinute); err != nil {
				t.Fatalf("give a send of %s back: %v", user, err)
			}
		}
	}
	for _, tc := range []struct {
		name       string
		took, gave int
		left       int // of the burst of 2
	}{
		{"given to a full bucket", 0, 1, 2},
		{"given once more than taken", 1, 2, 2},
		{"given back after the burst", 3, 1, 1},
		{"given back each", 2, 2, 2},
	} {
		user := "give-" + tc.name
		take(user, tc.took)
		give(user, tc.gave)
		if left := take(user, 4); left != tc.left {
			t.Errorf("%s: %d sends left, want %d", tc.name, left, tc.left)
		}
	}

	// A budget's event given back (GiveBudget), on the other instance.
	for range 3 {
		if _, _, err := buses[0].Limits().TakeBudget(ctx, "conversations", "give-budget", 2); err != nil { // a burst of 2
			t.Fatal(err)
		}
	}
	if err := buses[1].Limits().GiveBudget(ctx, "conversations", "give-budget", 2); err != nil {
		t.Fatal(err)
	}
	passed := 0
	for range 3 {
		if _, ok, err := buses[0].Limits().TakeBudget(ctx, "conversations", "give-budget", 2); err != nil {
			t.Fatal(err)
		} else if ok {
			passed++
		}
	}
	if passed != 1 {
		t.Fatalf("%d new conversations left after one given back, want 1", passed)
	}

	// Parallel requests on two instances, each giving back what it took.
	parallel(t, buses, 4, func(_ int, l *Limits) error {
		ok, err := l.TakeSend(ctx, "give-parallel", perMinute)
		if ok && err == nil {
			err = l.GiveSend(ctx, "give-parallel", perMinute)
		}
		if err != nil {
			return fmt.Errorf("take and give back: %w", err)
		}
		return nil
	})
	if left := take("give-parallel", 4); left != 2 {
		t.Fatalf("%d sends left after parallel takes each given back, want the burst of 2", left)
	}
}
