package mongo_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"chatd/persistence"
	"chatd/persistence/ferret"
	"chatd/persistence/mongo"
)

// The lease's cadence in these tests: a renewal gets at most hangBound
// (a quarter of the TTL), and the next follows hangRenew later.
const (
	hangTTL   = 2 * time.Second
	hangRenew = 250 * time.Millisecond
	hangBound = hangTTL / 4
	// hangLapse is how long after the last renewal that got through the
	// keeper has seen the lease expire: the TTL, then at most a renewal
	// under way and the wait before the next.
	hangLapse = hangTTL + hangBound + hangRenew
)

// hangSlack is what a loaded test machine may add to a bound (it can hold
// a goroutine for a second or two under -race); an unbounded renewal
// would wait minutes, for TCP to give up.
const hangSlack = 10 * time.Second

// TestSoloLeaseRenewalHangs: a renewal sent to a database that never
// answers (its host died, the connection left open) fails within its
// bound; once the lease expired unrenewed, Ping reports it lost
// (persistence.ErrLeaseLost: /readyz fails); and when another chatd took
// it meanwhile, the first renewal that gets through finds it taken, for
// good. Unbounded, the renewal waited on the dead connection (until TCP
// gave up, minutes) and the lease was lost unseen.
func TestSoloLeaseRenewalHangs(t *testing.T) {
	t.Parallel()
	ctx, uri, proxied, proxy := hangEnv(t)
	logs := make(chan string, 1024)
	first := openLogged(ctx, t, proxied, "lease_hang", logs)
	opts := mongo.LeaseOptions{TTL: hangTTL, Renew: hangRenew}
	if err := first.TakeSoloLease(ctx, opts); err != nil {
		t.Fatal(err)
	}
	frozen := proxy.freeze("update")
	<-frozen // a renewal is on its way to a server that will not answer
	heldAt := time.Now()
	waitLog(t, logs, "could not renew the single-process lease", hangBound+hangSlack)
	waitLog(t, logs, "expired unrenewed", hangLapse+hangSlack)
	if err := first.Ping(ctx); !errors.Is(err, persistence.ErrLeaseLost) {
		t.Fatalf("ping %s after the renewals stopped getting through: %v, want persistence.ErrLeaseLost", time.Since(heldAt), err)
	}

	// A second chatd (blue/green) takes the expired lease over, then the
	// database answers the first again.
	second := openLogged(ctx, t, uri, "lease_hang", make(chan string, 1024))
	if err := second.TakeSoloLease(ctx, opts); err != nil {
		t.Fatalf("the second's take: %v", err)
	}
	proxy.thaw()
	waitLog(t, logs, "another chatd took this process's single-process lease", hangRenew+hangBound+hangSlack)
	var held *mongo.HeldError
	if err := first.Ping(ctx); !errors.As(err, &held) || !errors.Is(err, persistence.ErrLeaseLost) {
		t.Fatalf("the first's ping once taken over: %v, want a *HeldError and persistence.ErrLeaseLost", err)
	}
	if err := second.Ping(ctx); err != nil {
		t.Fatalf("the new holder's ping: %v", err)
	}
}

// TestSoloLeaseLapseRecovers: a lease that expired unrenewed while nobody
// took it holds again at the next renewal that gets through.
func TestSoloLeaseLapseRecovers(t *testing.T) {
	t.Parallel()
	ctx, _, proxied, proxy := hangEnv(t)
	logs := make(chan string, 1024)
	s := openLogged(ctx, t, proxied, "lease_lapse", logs)
	if err := s.TakeSoloLease(ctx, mongo.LeaseOptions{TTL: hangTTL, Renew: hangRenew}); err != nil {
		t.Fatal(err)
	}
	<-proxy.freeze("update")
	waitLog(t, logs, "expired unrenewed", hangLapse+hangSlack)
	if err := s.Ping(ctx); !errors.Is(err, persistence.ErrLeaseLost) {
		t.Fatalf("ping with the lease expired: %v, want persistence.ErrLeaseLost", err)
	}
	proxy.thaw()
	waitLog(t, logs, "after it had expired: nobody took it", hangRenew+hangBound+hangSlack)
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("ping once renewed again: %v", err)
	}
}

// TestClusterPresenceRenewalHangs: a cluster instance's presence renewal
// sent to a database that never answers fails within its bound, and the
// next is tried.
func TestClusterPresenceRenewalHangs(t *testing.T) {
	t.Parallel()
	ctx, _, proxied, proxy := hangEnv(t)
	logs := make(chan string, 1024)
	s := openLogged(ctx, t, proxied, "presence_hang", logs)
	if err := s.MarkClusterPresence(ctx, "a-1", mongo.LeaseOptions{TTL: hangTTL, Renew: hangRenew}); err != nil {
		t.Fatal(err)
	}
	frozen := proxy.freeze("update")
	for range 2 {
		<-frozen
		waitLog(t, logs, "could not renew this cluster instance's presence", hangBound+hangSlack)
	}
}

// hangEnv starts FerretDB and a proxy in front of it; it returns both
// URIs.
func hangEnv(t *testing.T) (ctx context.Context, direct, proxied string, proxy *replyDropper) {
	t.Helper()
	takeFerretSlot(t)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	direct = ferret.Start(t)
	proxied = viaReplyDropper(t, &proxy)(direct)
	return ctx, direct, proxied, proxy
}

// openLogged opens a store on database db whose log messages go to logs;
// it is closed with the test.
func openLogged(ctx context.Context, t *testing.T, uri, db string, logs chan<- string) *mongo.Store {
	t.Helper()
	s, err := mongo.Open(ctx, mongo.Options{URI: uri, Database: db, Logger: slog.New(messagesTo{logs}), DeletionSweep: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

// waitLog waits up to within for a log message containing want.
func waitLog(t *testing.T, logs <-chan string, want string, within time.Duration) {
	t.Helper()
	timer := time.NewTimer(within)
	defer timer.Stop()
	for {
		select {
		case msg := <-logs:
			if strings.Contains(msg, want) {
				return
			}
		case <-timer.C:
			t.Fatalf("no log message saying %q within %s", want, within)
		}
	}
}

// messagesTo is a slog.Handler sending each record's message on a
// channel (dropped when it is full).
type messagesTo struct{ ch chan<- string }

func (messagesTo) Enabled(context.Context, slog.Level) bool { return true }

func (h messagesTo) Handle(_ context.Context, r slog.Record) error {
	select {
	case h.ch <- r.Message:
	default:
	}
	return nil
}

func (h messagesTo) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h messagesTo) WithGroup(string) slog.Handler      { return h }
