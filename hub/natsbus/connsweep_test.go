package natsbus

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TestConnCountsOfDeadInstancesSwept: the counts of a crashed instance,
// and of one never seen alive, leave chatd_conns by themselves, with no
// connection of their users opened or closed again: keys holding nothing
// else are deleted, a key shared with a live instance keeps the live
// count. Keys of live instances alone, and a value chatd cannot read,
// are left as they are; a user's connections changing during the sweep
// keep their count (compare-and-swap); a round reads at most its page of
// keys. Before, such a count was dropped only when the user's key was
// written again, so the key of a user who never came back stayed for
// good, one per user connected to each instance that crashed.
func TestConnCountsOfDeadInstancesSwept(t *testing.T) {
	t.Parallel()
	c := startNATS(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	const page = 2
	sweeper, _ := newBusWith(t, c, Options{InstanceID: "sweep-live", LeaseTTL: time.Second,
		connsSweepEvery: 20 * time.Millisecond, connsSweepPage: page})
	other, _ := newBus(t, c, "sweep-other", time.Second)
	crashed, _ := newBus(t, c, "sweep-crashed", time.Second)
	waitHealthy(t, ctx, sweeper, other, crashed)
	acquire := func(b *Bus, user string) {
		t.Helper()
		if ok, err := b.Limits().AcquireConn(ctx, user, 10); !ok || err != nil {
			t.Fatalf("acquire %s on %s: %v, %v", user, b.id, ok, err)
		}
	}
	kv := sweeper.res.Load().conns
	put := func(user, value string) uint64 {
		t.Helper()
		rev, err := kv.Put(ctx, token(user), []byte(value))
		if err != nil {
			t.Fatal(err)
		}
		return rev
	}
	// Left alone: written first, so that the dead keys' removal does not
	// prove a pass went over them.
	acquire(other, "u-other")
	acquire(sweeper, "u-own")
	put("u-bad", "not json")
	kept := map[string]uint64{}
	for _, user := range []string{"u-other", "u-own", "u-bad"} {
		e, err := kv.Get(ctx, token(user))
		if err != nil {
			t.Fatal(err)
		}
		kept[user] = e.Revision()
	}
	for _, user := range []string{"u-crashed-1", "u-crashed-2", "u-shared", "u-busy"} {
		acquire(crashed, user)
	}
	acquire(sweeper, "u-shared")
	acquire(sweeper, "u-busy")
	put("u-gone", `{"sweep-never-seen":3}`)
	crashed.Kill()

	rounds := make(chan int, 1)
	var mu sync.Mutex
	overPage := 0
	hook := func(read int) {
		if read > page {
			mu.Lock()
			overPage = max(overPage, read)
			mu.Unlock()
		}
		select {
		case rounds <- read:
		default:
		}
	}
	sweeper.sweepHook.Store(&hook)
	// u-busy's connections on the sweeper change all along: 1, 2, 1, ...
	stop := make(chan struct{})
	busy := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				busy <- nil
				return
			default:
			}
			if _, err := sweeper.Limits().AcquireConn(ctx, "u-busy", 10); err != nil {
				busy <- err
				return
			}
			if err := sweeper.Limits().ReleaseConn(ctx, "u-busy"); err != nil {
				busy <- err
				return
			}
		}
	}()

	want := map[string]string{"u-crashed-1": "", "u-crashed-2": "", "u-gone": "",
		"u-shared": `{"sweep-live":1}`}
	waitRound := func(what func() string) {
		t.Helper()
		select {
		case <-rounds:
		case <-ctx.Done():
			t.Fatalf("%v waiting for a round of the sweep; %s", ctx.Err(), what())
		}
	}
	for {
		left := connValues(ctx, kv, want)
		if len(left) == 0 {
			break
		}
		waitRound(func() string { return "keys not as wanted: " + formatValues(left) })
	}
	close(stop)
	if err := <-busy; err != nil {
		t.Fatalf("u-busy's connections on the sweeper: %v", err)
	}
	// More than a pass over the bucket (8 keys, page 2): the keys left
	// alone were read.
	for range 12 {
		waitRound(func() string { return "after the dead counts were removed" })
	}
	for user, rev := range kept {
		e, err := kv.Get(ctx, token(user))
		if err != nil {
			t.Fatalf("%s: %v", user, err)
		}
		if e.Revision() != rev {
			t.Errorf("%s written again (%s), want it left alone", user, e.Value())
		}
	}
	if left := connValues(ctx, kv, map[string]string{"u-busy": `{"sweep-live":1}`}); len(left) > 0 {
		t.Errorf("u-busy after its connections changed during the sweep: %s", formatValues(left))
	}
	// A key is written from what it holds when written, not from what
	// the round read: here the live count grew meanwhile.
	s := newConnsSweep(sweeper.Limits())
	s.noticed["sweep-stale"] = time.Time{} // named without a lease long ago
	put("u-stale", `{"sweep-stale":1,"sweep-live":2}`)
	now, _ := sweeper.lease.judging()
	if _, err := s.prune(ctx, token("u-stale"), []byte(`{"sweep-stale":1,"sweep-live":1}`), now); err != nil {
		t.Fatalf("prune u-stale: %v", err)
	}
	if left := connValues(ctx, kv, map[string]string{"u-stale": `{"sweep-live":2}`}); len(left) > 0 {
		t.Errorf("u-stale after a prune of what was read before it changed: %s", formatValues(left))
	}
	mu.Lock()
	defer mu.Unlock()
	if overPage > 0 {
		t.Errorf("a round read %d keys, more than its page of %d", overPage, page)
	}
}

// connValues returns the users of want whose key in kv does not hold
// the value want gives ("": no key), with what it holds.
func connValues(ctx context.Context, kv jetstream.KeyValue, want map[string]string) map[string]string {
	left := map[string]string{}
	for user, value := range want {
		e, err := kv.Get(ctx, token(user))
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			if value != "" {
				left[user] = "no key"
			}
		case err != nil:
			left[user] = err.Error()
		case string(e.Value()) != value:
			left[user] = string(e.Value())
		}
	}
	return left
}

func formatValues(m map[string]string) string {
	s := ""
	for k, v := range m {
		s += k + "=" + v + " "
	}
	return s
}
