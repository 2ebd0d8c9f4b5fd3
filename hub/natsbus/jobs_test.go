package natsbus

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"chatd/hub"
	"chatd/hub/natsbus/natstest"
)

// TestJobs: a job claimed (TakeJob) by several instances at once goes to
// exactly one, the others being told it is held (not that the bus is
// unavailable); another instance's EndJob leaves the claim alone, the
// holder's ends it and another instance takes the job; a claim not ended
// expires after its ttl. The in-memory bus (hub.MemCluster) does the same.
func TestJobs(t *testing.T) {
	t.Parallel()
	members := []struct {
		name  string
		start func(t *testing.T, ctx context.Context) []hub.Bus
	}{
		{"natsbus", func(t *testing.T, ctx context.Context) []hub.Bus {
			c := natstest.Start(t, natstest.Options{Nodes: 1, User: "chatd", Password: "pw"})
			var out []hub.Bus
			for _, b := range healthyBuses(t, ctx, c, "jobs", 3) {
				out = append(out, b)
			}
			return out
		}},
		{"membus", func(*testing.T, context.Context) []hub.Bus {
			c := hub.NewMemCluster()
			return []hub.Bus{c.Join("m0"), c.Join("m1"), c.Join("m2")}
		}},
	}
	for _, m := range members {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			buses := m.start(t, ctx)
			const job = "title.c-1"
			winner := takeTogether(t, ctx, buses, job, time.Minute)
			other := buses[(winner+1)%len(buses)]
			if err := other.EndJob(ctx, job); err != nil {
				t.Fatalf("end another's job: %v", err)
			}
			if err := other.TakeJob(ctx, job, time.Minute); !errors.Is(err, hub.ErrLockHeld) {
				t.Fatalf("take a job another instance holds, after a non-holder ended it: %v, want ErrLockHeld", err)
			}
			if err := buses[winner].EndJob(ctx, job); err != nil {
				t.Fatalf("end the job: %v", err)
			}
			if err := other.TakeJob(ctx, job, 300*time.Millisecond); err != nil {
				t.Fatalf("take an ended job: %v", err)
			}
			// Not ended: the claim expires by itself.
			for {
				err := buses[winner].TakeJob(ctx, job, time.Minute)
				if err == nil {
					break
				}
				if !errors.Is(err, hub.ErrLockHeld) || ctx.Err() != nil {
					t.Fatalf("take a job whose claim expires: %v", err)
				}
				wait(ctx, 20*time.Millisecond) // polling the claim's expiry
			}
		})
	}
}

// takeTogether has every bus take job at once and returns the index of
// the one that got it; exactly one must, the others hearing ErrLockHeld.
func takeTogether(t *testing.T, ctx context.Context, buses []hub.Bus, job string, ttl time.Duration) int {
	t.Helper()
	errs := make([]error, len(buses))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, b := range buses {
		wg.Go(func() {
			<-start
			errs[i] = b.TakeJob(ctx, job, ttl)
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner < 0:
			winner = i
		case err == nil:
			t.Fatalf("buses %d and %d both took %s", winner, i, job)
		case !errors.Is(err, hub.ErrLockHeld):
			t.Fatalf("bus %d: take %s: %v, want ErrLockHeld", i, job, err)
		}
	}
	if winner < 0 {
		t.Fatalf("nobody took %s", job)
	}
	return winner
}
