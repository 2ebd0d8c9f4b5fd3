package natsbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"chatd/hub/natsbus/natstest"
)

// TestLimitsAcrossSkewedClocks: requests alternating between two
// instances whose clocks differ (round-robin balancing does that by
// itself) get no more than the limit, whatever the skew: the buckets and
// windows are judged by the NATS servers' time. By the hosts' clocks, an
// instance whose clock is behind set a token bucket's last refill back
// to its own time, and the next take on the instance ahead refilled the
// whole skew again: with a skew of a minute every take passed, and past a
// minute (how long a bucket's key lives) as well once that was bounded.
// A failed-login window another instance started was taken as ended
// (begun in its future), and past the window's length (a 20-minute skew,
// a 15-minute window) every failed login passed.
func TestLimitsAcrossSkewedClocks(t *testing.T) {
	t.Parallel()
	c := startNATS(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, skew := range []time.Duration{time.Minute, 2 * time.Minute, 20 * time.Minute} {
		ahead, _ := newBusWith(t, c, Options{InstanceID: "skew-ahead-" + skew.String(), LeaseTTL: 2 * time.Second,
			clock: func() time.Time { return time.Now().Add(skew) }})
		behind, _ := newBus(t, c, "skew-behind-"+skew.String(), 2*time.Second)
		waitHealthy(t, ctx, ahead, behind)
		user := "u-skew-" + skew.String()

		tests := []struct {
			name string
			take func(b *Bus) (bool, error)
			// allowed is the limit, plus one token for a bucket (the test
			// takes well under a second, which refills less than one).
			allowed int
		}{
			{"budget", func(b *Bus) (bool, error) {
				_, ok, err := b.Limits().TakeBudget(ctx, "conversations", user, 6) // a burst of 6
				return ok, err
			}, 7},
			{"sends", func(b *Bus) (bool, error) { return b.Limits().TakeSend(ctx, user, 8) }, 3}, // a burst of 2
			{"failed logins", func(b *Bus) (bool, error) {
				_, ok, err := b.Windows().Take(ctx, "login-account:"+user+"@example.com", 3, 15*time.Minute)
				return ok, err
			}, 3},
		}
		for _, tt := range tests {
			passed := 0
			for i := range 20 {
				b := ahead
				if i%2 == 1 {
					b = behind
				}
				ok, err := tt.take(b)
				if err != nil {
					t.Fatalf("skew %s, %s: take %d: %v", skew, tt.name, i, err)
				}
				if ok {
					passed++
				}
			}
			if passed > tt.allowed {
				t.Errorf("skew %s, %s: %d of 20 takes passed across two instances, want at most %d", skew, tt.name, passed, tt.allowed)
			}
		}
	}
}

// TestConnCountsOfANewInstance: the connections an instance counted for
// a user before the others saw its lease (it has just started: tabs
// reconnect to it at once in a rolling restart) still count for them.
// They were dropped as a dead instance's at the next update of the user's
// counts elsewhere, and the user got that many connections more.
func TestConnCountsOfANewInstance(t *testing.T) {
	t.Parallel()
	c := startNATS(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A TTL that the three updates below cannot outlast on a loaded
	// machine: past it, an instance still without a lease is dead.
	b, _ := newBus(t, c, "counts-old", 3*time.Second)
	waitHealthy(t, ctx, b)
	waitJudging(t, ctx, b)
	// The new instance's count, written before its lease reached b.
	if _, err := b.res.Load().conns.Put(ctx, token("u-new"), []byte(`{"counts-new":2}`)); err != nil {
		t.Fatal(err)
	}
	const maxConns = 3
	granted := 0
	for range 3 {
		ok, err := b.Limits().AcquireConn(ctx, "u-new", maxConns)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			granted++
		}
	}
	if granted != maxConns-2 {
		t.Fatalf("%d connections granted beside the new instance's 2, want %d", granted, maxConns-2)
	}
}

// TestTokenBucketAfterAClockFarAhead: a token bucket taken from by an
// instance whose clock is far ahead (a wrong clock, off by an hour)
// refills on an instance with the right time as time passes (here its
// last refill put back a minute). By the hosts' clocks its last refill
// was an hour ahead, and the instance behind refilled nothing until its
// own clock reached it.
func TestTokenBucketAfterAClockFarAhead(t *testing.T) {
	t.Parallel()
	c := startNATS(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ahead, _ := newBusWith(t, c, Options{InstanceID: "far-ahead", LeaseTTL: 2 * time.Second,
		clock: func() time.Time { return time.Now().Add(time.Hour) }})
	behind, _ := newBus(t, c, "far-behind", 2*time.Second)
	waitHealthy(t, ctx, ahead, behind)

	const perMinute = 6 // a burst of 6, refilled in a minute
	key := token("conversations:u-far")
	take := func(b *Bus) bool {
		t.Helper()
		_, ok, err := b.Limits().TakeBudget(ctx, "conversations", "u-far", perMinute)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	// moveLast moves the bucket's last refill (time passing, played).
	moveLast := func(last func(time.Time) time.Time) {
		t.Helper()
		kv := behind.res.Load().sends
		e, err := kv.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		var s sendBucket
		if err := json.Unmarshal(e.Value(), &s); err != nil {
			t.Fatal(err)
		}
		s.Last = last(s.Last)
		val, _ := json.Marshal(s)
		if _, err := kv.Update(ctx, key, val, e.Revision()); err != nil {
			t.Fatal(err)
		}
	}
	spend := func() {
		t.Helper()
		for i := range perMinute {
			if !take(behind) {
				t.Fatalf("take %d of the burst refused", i+1)
			}
		}
		if take(behind) || take(ahead) {
			t.Fatal("a take past the burst passed")
		}
	}
	if !take(ahead) || !take(behind) {
		t.Fatal("the first takes were refused")
	}
	moveLast(func(l time.Time) time.Time { return l.Add(-time.Minute) }) // a minute later: refilled
	spend()
	moveLast(func(l time.Time) time.Time { return l.Add(-time.Minute) })
	if !take(behind) {
		t.Fatal("a take a minute after the burst was spent was refused: the bucket did not refill")
	}
}

// TestRepairFailuresCounted: a repair of a user's connection count that
// fails (here its context ended: the bucket cannot be read) counts in
// LimitFailures, as the AcquireConn that failed before it does: the
// metric stayed flat while every repair failed.
func TestRepairFailuresCounted(t *testing.T) {
	t.Parallel()
	c := startNATS(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// No repair runs by itself within the test: it calls repairConns.
	b, _ := newBusWith(t, c, Options{InstanceID: "repair-count", LeaseTTL: 2 * time.Hour, RenewEvery: time.Hour})
	waitHealthy(t, ctx, b)
	const user = "user-repair"
	ended, end := context.WithCancel(ctx)
	end()
	if _, err := b.Limits().AcquireConn(ended, user, 3); err == nil {
		t.Fatal("acquire with an ended context succeeded")
	}
	if n := b.LimitFailures(); n != 1 {
		t.Fatalf("%d limit failures after the failed acquire, want 1", n)
	}
	b.Limits().repairConns(ended)
	if n := b.LimitFailures(); n != 2 {
		t.Fatalf("%d limit failures after the failed repair, want 2", n)
	}
}

// TestUnreadableConnCountsReplaced: a user's entry in the conns bucket
// that cannot be read is replaced by this instance's count of the user's
// connections (those it held before the entry went bad, plus or minus
// the change), and logged; the limit then holds again. The bucket keeps
// an entry until it is changed: before, every connection of the user
// failed the cluster-wide check (and went through on the instance's
// limit alone), for good, and every repair failed too; a null entry
// panicked; a negative count was taken as it was, lifting the limit.
func TestUnreadableConnCountsReplaced(t *testing.T) {
	t.Parallel()
	c := startNATS(t, 1)
	for _, tc := range []struct {
		name    string
		value   string
		held    int  // connections acquired before the entry went bad
		release bool // the change is a release, else an acquire
		want    string
	}{
		{name: "not json", value: "not json", want: `{"%s":1}`},
		{name: "null", value: "null", want: `{"%s":1}`},
		{name: "not counts", value: `{"x":"y"}`, held: 1, want: `{"%s":2}`},
		{name: "negative", value: `{"inst-gone":-5}`, held: 1, want: `{"%s":2}`},
		{name: "release", value: "not json", held: 2, release: true, want: `{"%s":1}`},
		{name: "last release", value: "not json", held: 1, release: true}, // the key is deleted
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			logs := make(logRecords, 64)
			id := "conns-" + strings.ReplaceAll(tc.name, " ", "-")
			b, _ := newBusWith(t, c, Options{InstanceID: id, LeaseTTL: 2 * time.Hour, RenewEvery: time.Hour,
				Logger: slog.New(logs)})
			waitHealthy(t, ctx, b)
			user := "user-" + id
			const limit = 3
			for range tc.held {
				if ok, err := b.Limits().AcquireConn(ctx, user, limit); !ok || err != nil {
					t.Fatalf("acquire before: %v, %v", ok, err)
				}
			}
			kv := b.res.Load().conns
			if _, err := kv.Put(ctx, token(user), []byte(tc.value)); err != nil {
				t.Fatal(err)
			}
			var err error
			if tc.release {
				err = b.Limits().ReleaseConn(ctx, user)
			} else {
				var ok bool
				if ok, err = b.Limits().AcquireConn(ctx, user, limit); !ok && err == nil {
					t.Fatal("acquire over an unreadable entry refused")
				}
			}
			if err != nil {
				t.Fatalf("change over an unreadable entry: %v", err)
			}
			e, err := kv.Get(ctx, token(user))
			switch {
			case tc.want == "" && !errors.Is(err, jetstream.ErrKeyNotFound):
				t.Fatalf("entry after the change: %v, want none", err)
			case tc.want != "" && err != nil:
				t.Fatalf("entry after the change: %v", err)
			case tc.want != "" && string(e.Value()) != fmt.Sprintf(tc.want, id):
				t.Fatalf("entry after the change: %s, want %s", e.Value(), fmt.Sprintf(tc.want, id))
			}
			if n := b.LimitFailures(); n != 0 {
				t.Fatalf("%d limit failures, want 0", n)
			}
			warned := 0
			for len(logs) > 0 {
				if r := <-logs; r.Level >= slog.LevelWarn && strings.Contains(r.Message, "conns bucket") &&
					logAttr(r, "key") == token(user) {
					warned++
				}
			}
			if warned != 1 {
				t.Fatalf("%d warnings of the unreadable entry, want 1", warned)
			}
			// The limit holds again: up to 3 connections in all.
			open := tc.held + 1
			if tc.release {
				open = tc.held - 1
			}
			for ; open < limit; open++ {
				if ok, err := b.Limits().AcquireConn(ctx, user, limit); !ok || err != nil {
					t.Fatalf("acquire %d of %d: %v, %v", open+1, limit, ok, err)
				}
			}
			if ok, err := b.Limits().AcquireConn(ctx, user, limit); ok || err != nil {
				t.Fatalf("acquire past the limit: %v, %v", ok, err)
			}
		})
	}
}

// TestConnLimitAfterJetStreamLost: NATS comes back without its data
// (the conns bucket made again, empty). Every instance writes its count
// of each user's connections again within a few repairs, also of users
// whose connections did not change meanwhile, so the limit still counts
// connections opened before the loss. Before, only users whose update
// failed during the outage were written again: here a held 3 of the
// user's connections (the limit), b saw none and admitted more until a's
// closed.
func TestConnLimitAfterJetStreamLost(t *testing.T) {
	t.Parallel()
	c := natstest.Start(t, natstest.Options{Nodes: 1, User: "chatd", Password: "pw"})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, _ := newBus(t, c, "connlost-a", time.Second)
	b, _ := newBus(t, c, "connlost-b", time.Second)
	waitHealthy(t, ctx, a, b)
	const user, limit = "u-connlost", 3
	for i := range limit {
		if ok, err := a.Limits().AcquireConn(ctx, user, limit); !ok || err != nil {
			t.Fatalf("connection %d: admitted %v, %v", i+1, ok, err)
		}
	}

	c.StopAll()
	waitUnhealthy(t, ctx, a)
	c.Wipe()
	c.StartAll()
	waitHealthy(t, ctx, a, b)
	rounds := make(chan struct{}, 1)
	hook := func() {
		select {
		case rounds <- struct{}{}:
		default:
		}
	}
	a.repairHook.Store(&hook)
	js := testJetStream(t, c)
	// The loss is noticed within a check of the events stream (every
	// renewal) and the counts written at the next repair.
	const repairs = 8
	for n := 0; ; n++ {
		if held := countOf(ctx, js, a.name("conns"), user, a.InstanceID()); held == limit {
			break
		} else if n == repairs {
			t.Fatalf("after %d repairs a's count of the user's connections in the bucket made again is %d, want %d", repairs, held, limit)
		}
		select {
		case <-rounds:
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}
	if ok, err := b.Limits().AcquireConn(ctx, user, limit); ok || err != nil {
		t.Fatalf("a fourth connection on b: admitted %v, %v; want refused (a holds %d)", ok, err, limit)
	}
}

// countOf is instance's count of user's connections in the conns bucket
// (0 while there is none).
func countOf(ctx context.Context, js jetstream.JetStream, bucket, user, instance string) int {
	kv, err := js.KeyValue(ctx, bucket)
	if err != nil {
		return 0
	}
	e, err := kv.Get(ctx, token(user))
	if err != nil {
		return 0
	}
	c, err := decodeConnCounts(e.Value())
	if err != nil {
		return 0
	}
	return c[instance]
}
