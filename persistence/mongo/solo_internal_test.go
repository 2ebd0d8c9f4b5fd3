package mongo

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"chatd/internal/syncbuf"
	"chatd/persistence"
	"chatd/persistence/ferret"
)

// fakeClock is the lease's clock in these tests: sleeping moves it on at
// once, after calling onSleep (a holder's renewal, say).
type fakeClock struct {
	mu      sync.Mutex
	t       time.Time
	slept   time.Duration
	onSleep func()
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	c.slept += d
}

func (c *fakeClock) sleep(ctx context.Context, d time.Duration) error {
	if c.onSleep != nil {
		c.onSleep()
	}
	c.advance(d)
	return ctx.Err()
}

// tickSleep is a keeper's sleep that returns on each tick sent, or when
// ctx ends: the test decides when a renewal runs.
func tickSleep(ticks <-chan struct{}) func(context.Context, time.Duration) error {
	return func(ctx context.Context, _ time.Duration) error {
		select {
		case <-ticks:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// openSolo opens a store on database db of uri, closed with the test;
// its logs go to log, if given.
func openSolo(ctx context.Context, t *testing.T, uri, db string, log ...io.Writer) *Store {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	if len(log) > 0 {
		logger = slog.New(slog.NewTextHandler(log[0], nil))
	}
	s, err := Open(ctx, Options{URI: uri, Database: db, Logger: logger, DeletionSweep: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

// storedLease is the lease document, or ok false when there is none.
func storedLease(ctx context.Context, t *testing.T, s *Store) (d leaseDoc, ok bool) {
	t.Helper()
	err := s.leases.FindOne(ctx, bson.D{{Key: "_id", Value: soloLeaseID}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return d, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return d, true
}

// TestSoloLease: the first process takes the lease at once; a second is
// refused, naming the holder, while the holder renews; it takes the lease
// over once the holder stopped renewing and the lease expired, and the
// first, renewing then, learns it lost it: Ping and InterruptStreaming
// fail. A lease released by Close is taken at once, one expired long ago
// once two renewal intervals passed without a renewal.
// Time is the fake clock's: no TTL is waited out.
func TestSoloLease(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	uri := ferret.Start(t)
	const ttl, renew = 20 * time.Second, 5 * time.Second
	// leaseOpts: take waits with sleep, renewals run on each tick sent
	// (none when ticks is nil).
	leaseOpts := func(c *fakeClock, sleep func(context.Context, time.Duration) error, ticks <-chan struct{}) LeaseOptions {
		return LeaseOptions{TTL: ttl, Renew: renew, now: c.now, sleep: sleep, tick: tickSleep(ticks)}
	}
	noSleep := func(context.Context, time.Duration) error {
		t.Error("slept: the lease should have been taken at once")
		return errors.New("slept")
	}

	t.Run("held, renewed: refused", func(t *testing.T) {
		clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		first := openSolo(ctx, t, uri, "solo_held")
		if err := first.TakeSoloLease(ctx, leaseOpts(clock, noSleep, nil)); err != nil {
			t.Fatal(err)
		}
		d, ok := storedLease(ctx, t, first)
		if !ok || d.Expires.Sub(clock.now()) != ttl || d.PID == 0 {
			t.Fatalf("lease stored %+v (%v), want expiring in %s with a pid", d, ok, ttl)
		}
		clock.onSleep = func() { // the holder renews while the second watches
			if _, err := first.lease.Load().renew(ctx); err != nil {
				t.Error(err)
			}
		}
		second := openSolo(ctx, t, uri, "solo_held")
		err := second.TakeSoloLease(ctx, leaseOpts(clock, clock.sleep, nil))
		var held *HeldError
		if !errors.As(err, &held) || held.PID != d.PID || held.Host != d.Host {
			t.Fatalf("second take: %v, want the holder named (pid %d, host %s)", err, d.PID, d.Host)
		}
		if clock.slept > renew {
			t.Fatalf("refused after %s, want within one renewal (%s)", clock.slept, renew)
		}
		if err := first.Ping(ctx); err != nil {
			t.Fatalf("the holder's ping: %v", err)
		}
	})

	t.Run("expired: taken over, the holder loses it", func(t *testing.T) {
		clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		first := openSolo(ctx, t, uri, "solo_expired")
		ticks := make(chan struct{})
		if err := first.TakeSoloLease(ctx, leaseOpts(clock, noSleep, ticks)); err != nil {
			t.Fatal(err)
		}
		var logs syncbuf.Buffer
		second := openSolo(ctx, t, uri, "solo_expired", &logs)
		if err := second.TakeSoloLease(ctx, leaseOpts(clock, clock.sleep, nil)); err != nil {
			t.Fatalf("take over: %v", err)
		}
		for _, want := range []string{"is held by another chatd: waiting", "took over the single-process lease"} {
			if !strings.Contains(logs.String(), want) {
				t.Errorf("the log does not say %q:\n%s", want, logs.String())
			}
		}
		if clock.slept < ttl || clock.slept > ttl+renew {
			t.Fatalf("took over after %s, want after the TTL (%s)", clock.slept, ttl)
		}
		if d, _ := storedLease(ctx, t, second); d.Token != second.lease.Load().mine.Token {
			t.Fatalf("stored lease %+v is not the second's", d)
		}
		ticks <- struct{}{} // the first wakes and renews
		<-first.lease.Load().done
		var held *HeldError
		if err := first.Ping(ctx); !errors.As(err, &held) || !errors.Is(err, persistence.ErrLeaseLost) {
			t.Fatalf("the first's ping after losing the lease: %v, want a *HeldError and persistence.ErrLeaseLost", err)
		}
		if _, err := first.InterruptStreaming(ctx); !errors.As(err, &held) {
			t.Fatalf("the first's sweep after losing the lease: %v", err)
		}
		if err := second.Ping(ctx); err != nil {
			t.Fatalf("the new holder's ping: %v", err)
		}
		if err := first.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if _, ok := storedLease(ctx, t, second); !ok {
			t.Fatal("the first's Close deleted the second's lease")
		}
	})

	t.Run("released on Close: taken at once", func(t *testing.T) {
		clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		first := openSolo(ctx, t, uri, "solo_released")
		if err := first.TakeSoloLease(ctx, leaseOpts(clock, noSleep, nil)); err != nil {
			t.Fatal(err)
		}
		if err := first.Close(ctx); err != nil {
			t.Fatal(err)
		}
		second := openSolo(ctx, t, uri, "solo_released")
		if _, ok := storedLease(ctx, t, second); ok {
			t.Fatal("the lease is still stored after Close")
		}
		if err := second.TakeSoloLease(ctx, leaseOpts(clock, noSleep, nil)); err != nil {
			t.Fatal(err)
		}
	})

	// The clean-up stopped by Close may not end within Close's ctx: the
	// lease was released on what was left of it, after the wait, and
	// failed, so the next start waited for it to expire.
	t.Run("released on Close though the clean-up never ends", func(t *testing.T) {
		clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		stuck, unstick := make(chan struct{}), make(chan struct{})
		t.Cleanup(func() { close(unstick) })
		var once sync.Once
		first, err := Open(ctx, Options{URI: uri, Database: "solo_stuck", Logger: slog.New(slog.DiscardHandler),
			DeletionSweep: time.Millisecond, afterSweep: func(int, error) {
				once.Do(func() { close(stuck) })
				<-unstick // the clean-up never ends while Close runs
			}})
		if err != nil {
			t.Fatal(err)
		}
		if err := first.TakeSoloLease(ctx, leaseOpts(clock, noSleep, nil)); err != nil {
			t.Fatal(err)
		}
		<-stuck
		closing, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		if err := first.Close(closing); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatal(err)
		}
		second := openSolo(ctx, t, uri, "solo_stuck")
		if d, ok := storedLease(ctx, t, second); ok {
			t.Fatalf("the lease %+v is still stored after Close", d)
		}
	})

	t.Run("expired long ago: taken after two renewals unseen", func(t *testing.T) {
		clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		first := openSolo(ctx, t, uri, "solo_stale")
		if err := first.TakeSoloLease(ctx, leaseOpts(clock, noSleep, nil)); err != nil {
			t.Fatal(err)
		}
		clock.advance(time.Hour) // the first crashed long ago
		clock.slept = 0
		second := openSolo(ctx, t, uri, "solo_stale")
		if err := second.TakeSoloLease(ctx, leaseOpts(clock, clock.sleep, nil)); err != nil {
			t.Fatal(err)
		}
		if clock.slept != 2*renew {
			t.Fatalf("took over after %s, want after two renewal intervals (%s)", clock.slept, 2*renew)
		}
	})

	t.Run("no lease taken: the sweep runs", func(t *testing.T) {
		s := openSolo(ctx, t, uri, "solo_none")
		if _, err := s.InterruptStreaming(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.Ping(ctx); err != nil {
			t.Fatal(err)
		}
	})
}
