package natsbus

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TestConnCountsAfterSplitHeals: an instance cut off from NATS for longer
// than the lease TTL is judged dead by the others, which drop its
// connection counts from chatd_conns while its tabs stay open. Once the
// split heals it writes its count of every user again, those whose
// connections did not change too, so the user's limit counts them again
// across the cluster (before, only a user's next connection opened or
// closed there did, and the others admitted up to a second full
// allowance meanwhile).
func TestConnCountsAfterSplitHeals(t *testing.T) {
	t.Parallel()
	c := startNATS(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a, _, p := newBusBehindProxy(t, c, "split-a") // lease TTL 2 s
	b, _ := newBus(t, c, "split-b", 2*time.Second)
	waitHealthy(t, ctx, a, b)
	waitJudging(t, ctx, b)
	const user, limit = "u-split", 2
	for i := range limit {
		if ok, err := a.Limits().AcquireConn(ctx, user, limit); !ok || err != nil {
			t.Fatalf("a's connection %d: admitted %v, err %v", i, ok, err)
		}
	}
	if ok, err := b.Limits().AcquireConn(ctx, user, limit); ok || err != nil {
		t.Fatalf("b's connection before the split: admitted %v, err %v (want refused)", ok, err)
	}

	p.cutOff()
	waitJudgedDead(t, ctx, b, a.id)
	// A connection of the user opened and closed on b meanwhile drops a's
	// count, as b judges a dead.
	if ok, err := b.Limits().AcquireConn(ctx, user, limit); !ok || err != nil {
		t.Fatalf("b's connection during the split: admitted %v, err %v", ok, err)
	}
	if err := b.Limits().ReleaseConn(ctx, user); err != nil {
		t.Fatal(err)
	}
	if e, err := b.res.Load().conns.Get(ctx, token(user)); err == nil {
		t.Fatalf("%s's connection counts after b's release during the split: %s, want none", user, e.Value())
	} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatal(err)
	}

	p.restore()
	// a's tabs stayed open through the split: its count comes back within
	// a few renewals of its lease landing again (the deadline is generous
	// for a loaded machine).
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	waitConnCounts(t, wctx, b, user, `{"split-a":2}`)
	if ok, err := b.Limits().AcquireConn(ctx, user, limit); ok || err != nil {
		t.Fatalf("b's connection after the split healed: admitted %v, err %v (want refused: a holds %d)", ok, err, limit)
	}
}

// waitJudgedDead waits until b judges instance dead.
func waitJudgedDead(t *testing.T, ctx context.Context, b *Bus, instance string) {
	t.Helper()
	for {
		if now, ok := b.lease.judging(); ok && b.lease.deadHolder(instance, now) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s never judged %s dead", b.id, instance)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestRejoinsCounted: the view counts a rejoin (this instance's counts
// to write again) when its own lease lands more than its TTL after the
// one before, by the stream's clock, whether the renewals between failed
// (a split) or were never sent (a pause), and once more a TTL later;
// never for renewals that kept within the TTL.
func TestRejoinsCounted(t *testing.T) {
	t.Parallel()
	type step struct {
		at   int  // seconds from t0, on both clocks
		fail bool // the renewal failed and never landed
	}
	plays := func(from, to, every int, fail bool) []step {
		var out []step
		for _, at := range renewals(from, to, every) {
			out = append(out, step{at: int(at / time.Second), fail: fail})
		}
		return out
	}
	tests := []struct {
		name  string
		steps []step
		want  uint64
	}{
		{"renewed throughout", plays(0, 60, 3, false), 0},
		{"a gap of exactly the TTL", []step{{at: 0}, {at: 10}, {at: 20}, {at: 30}}, 0},
		{"a split longer than the TTL",
			append(append(plays(0, 9, 3, false), plays(12, 24, 3, true)...), plays(27, 33, 3, false)...), 1},
		{"a split, then a TTL of renewals",
			append(append(plays(0, 9, 3, false), plays(12, 24, 3, true)...), plays(27, 60, 3, false)...), 2},
		{"a pause longer than the TTL, then a TTL of renewals",
			append(plays(0, 6, 3, false), plays(20, 50, 3, false)...), 2},
		{"two gaps", append(append(append(plays(0, 3, 3, false), plays(15, 27, 3, false)...),
			plays(30, 42, 3, true)...), plays(45, 60, 3, false)...), 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v, _, t0 := newViews() // TTL 10 s
			for i, s := range tt.steps {
				at := t0.Add(time.Duration(s.at) * time.Second)
				if s.fail {
					failRenewal(v, at)
				} else {
					renew(v, at, at, uint64(i+1), i%2 == 0)
				}
			}
			if got := v.rejoinCount(); got != tt.want {
				t.Fatalf("rejoins %d, want %d", got, tt.want)
			}
		})
	}
}
