package mongo

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"chatd/internal/syncbuf"
	"chatd/persistence/ferret"
)

// storedPresence is instance's presence document, or ok false when there
// is none.
func storedPresence(ctx context.Context, t *testing.T, s *Store, instance string) (d presenceDoc, ok bool) {
	t.Helper()
	err := s.leases.FindOne(ctx, bson.D{{Key: "_id", Value: "cluster:" + instance}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return d, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return d, true
}

// TestClusterPresence: a cluster instance marks its presence, renews it
// and deletes it on Close; a start alone is refused, naming the instance,
// while the presence has not expired, and takes the lease once it has. A
// cluster instance is refused, naming the holder and leaving no presence,
// while the single-process lease has not expired, and marks its presence
// once it has. Time is the fake clock's: no TTL is waited out.
func TestClusterPresence(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	uri := ferret.Start(t)
	const ttl, renew = 20 * time.Second, 5 * time.Second
	opts := func(c *fakeClock, ticks <-chan struct{}) LeaseOptions {
		return LeaseOptions{TTL: ttl, Renew: renew, now: c.now, tick: tickSleep(ticks),
			sleep: func(context.Context, time.Duration) error {
				t.Error("slept: the lease should have been taken, or refused, at once")
				return errors.New("slept")
			}}
	}

	t.Run("presence refuses a start alone until it expires", func(t *testing.T) {
		clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		ticks := make(chan struct{})
		inst := openSolo(ctx, t, uri, "presence_solo")
		if err := inst.MarkClusterPresence(ctx, "a-1234abcd", opts(clock, ticks)); err != nil {
			t.Fatal(err)
		}
		d, ok := storedPresence(ctx, t, inst, "a-1234abcd")
		if !ok || d.Expires.Sub(clock.now()) != ttl || d.PID == 0 || d.Kind != clusterKind {
			t.Fatalf("presence stored %+v (%v), want expiring in %s with a pid", d, ok, ttl)
		}
		clock.advance(renew)
		ticks <- struct{}{}
		ticks <- struct{}{} // taken once the first renewal has been written
		if d, _ := storedPresence(ctx, t, inst, "a-1234abcd"); d.Expires.Sub(clock.now()) != ttl {
			t.Fatalf("presence expires %s after a renewal, want %s from now", d.Expires.Sub(clock.now()), ttl)
		}

		alone := openSolo(ctx, t, uri, "presence_solo")
		err := alone.TakeSoloLease(ctx, opts(clock, nil))
		var cluster *ClusterError
		if !errors.As(err, &cluster) || cluster.Instance != "a-1234abcd" || cluster.PID != d.PID {
			t.Fatalf("start alone: %v, want refused naming instance a-1234abcd", err)
		}
		if _, ok := storedLease(ctx, t, alone); ok {
			t.Fatal("the refused start left its lease stored")
		}

		clock.advance(ttl) // the instance crashed: no renewal
		later := openSolo(ctx, t, uri, "presence_solo")
		if err := later.TakeSoloLease(ctx, opts(clock, nil)); err != nil {
			t.Fatalf("start alone after the presence expired: %v", err)
		}
		if err := later.Close(ctx); err != nil {
			t.Fatal(err)
		}

		if err := inst.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if _, ok := storedPresence(ctx, t, alone, "a-1234abcd"); ok {
			t.Fatal("the presence is still stored after Close")
		}
	})

	t.Run("lease refuses a cluster instance until it expires", func(t *testing.T) {
		clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		alone := openSolo(ctx, t, uri, "presence_cluster")
		if err := alone.TakeSoloLease(ctx, opts(clock, nil)); err != nil {
			t.Fatal(err)
		}
		l, _ := storedLease(ctx, t, alone)
		inst := openSolo(ctx, t, uri, "presence_cluster")
		err := inst.MarkClusterPresence(ctx, "b-1234abcd", opts(clock, nil))
		var held *HeldError
		if !errors.As(err, &held) || held.PID != l.PID || held.Host != l.Host {
			t.Fatalf("cluster start: %v, want refused naming the holder (pid %d, host %s)", err, l.PID, l.Host)
		}
		if _, ok := storedPresence(ctx, t, inst, "b-1234abcd"); ok {
			t.Fatal("the refused cluster start left its presence stored")
		}

		clock.advance(ttl) // the process alone crashed: no renewal
		if err := inst.MarkClusterPresence(ctx, "b-1234abcd", opts(clock, nil)); err != nil {
			t.Fatalf("cluster start after the lease expired: %v", err)
		}
		if _, ok := storedPresence(ctx, t, inst, "b-1234abcd"); !ok {
			t.Fatal("no presence stored")
		}
	})
}

// TestClusterPresencePrunes: a starting instance deletes the presences
// that expired more than an hour ago (crashed instances': ids change at
// every start) and keeps the others.
func TestClusterPresencePrunes(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s := openSolo(ctx, t, ferret.Start(t), "presence_prune")
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	for id, expired := range map[string]time.Duration{"old-1": 2 * time.Hour, "old-2": time.Hour + time.Second, "recent": time.Minute} {
		doc := presenceDoc{ID: clusterKind + ":" + id, Kind: clusterKind, Instance: id, Expires: clock.now().Add(-expired)}
		if _, err := s.leases.InsertOne(ctx, doc); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.MarkClusterPresence(ctx, "new-1234abcd", LeaseOptions{TTL: 20 * time.Second, Renew: 5 * time.Second,
		now: clock.now, tick: tickSleep(nil)}); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]bool{"old-1": false, "old-2": false, "recent": true, "new-1234abcd": true} {
		if _, ok := storedPresence(ctx, t, s, id); ok != want {
			t.Errorf("presence %s stored: %v, want %v", id, ok, want)
		}
	}
}

// TestClusterPresenceRenewFails: a renewal that fails (here the client is
// disconnected) is logged and tried again at the next tick: the keeper
// goes on.
func TestClusterPresenceRenewFails(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	gone := openSolo(ctx, t, ferret.Start(t), "presence_down")
	if err := gone.Close(ctx); err != nil {
		t.Fatal(err)
	}
	logs := &syncbuf.Buffer{}
	ticks := make(chan struct{})
	p := &clusterPresence{coll: gone.leases, log: slog.New(slog.NewTextHandler(logs, nil)),
		opts: LeaseOptions{tick: tickSleep(ticks)}.withDefaults(), mine: presenceDoc{ID: "cluster:c-1234abcd"}}
	kctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.keep(kctx)
	}()
	for range 3 { // each tick after the first is taken once the renewal before it failed
		select {
		case ticks <- struct{}{}:
		case <-done:
			t.Fatalf("the keeper stopped after a failed renewal:\n%s", logs)
		}
	}
	stop()
	<-done
	if n := strings.Count(logs.String(), "could not renew this cluster instance's presence on the database: trying again"); n < 2 {
		t.Fatalf("logged %d failed renewals, want at least 2:\n%s", n, logs)
	}
}
