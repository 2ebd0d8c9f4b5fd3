package natsbus

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"chatd/transport/auth"
)

// Windows holds the failed-login and registration limits of the account
// routes for the whole cluster (auth.SharedWindows) in the bucket
// chatd_windows: a key per thing counted (an account, a client address),
// each a window of events counted from its first. Every change is a
// compare-and-swap on the key, so parallel attempts on several instances
// never pass a limit together. Keys are HMACs under a secret NATS never
// sees (Options.WindowsSecret): no email or address is stored in NATS,
// and none can be found again from a key by hashing guesses (every IPv4
// address, a known email) without that secret.
//
// The bucket is optional: while it cannot be created or bound (a NATS
// user whose permissions predate it, as in the deploy/nats-server.conf
// of versions before it) every call passes, which leaves the limits to
// each instance, and the bus tries again at each lease renewal. That is
// logged when it starts and when it ends; the rest of the bus works
// meanwhile.
type Windows struct{ b *Bus }

var _ auth.SharedWindows = (*Windows)(nil)

// Windows returns the cluster-wide login and registration limits over
// this bus.
func (b *Bus) Windows() *Windows { return &Windows{b: b} }

// DefaultWindowsAge is how long the windows bucket keeps a key after its
// last change unless Options.WindowsAge says longer: the longest window
// the account routes use by default (registrations per hour).
const DefaultWindowsAge = time.Hour

// ensure binds (or creates) the bucket unless it is bound already.
func (w *Windows) ensure(ctx context.Context) {
	if w.b.windows.Load() != nil {
		return
	}
	kv, err := w.b.provisionKV(ctx, w.b.replicas(), "windows", w.b.opts.WindowsAge, w.b.opts.markerTTL)
	if err != nil {
		if ctx.Err() == nil && !w.b.windowsDown.Swap(true) {
			w.b.log.Warn("cluster-wide limits of failed logins and registrations unavailable; each instance limits them on its own "+
				"until the bucket can be used (the NATS user needs the permissions of deploy/nats-server.conf)",
				slog.String("bucket", w.b.name("windows")), slog.Any("err", err))
		}
		return
	}
	w.b.windows.Store(&kv)
	if w.b.windowsDown.Swap(false) {
		w.b.log.Info("cluster-wide limits of failed logins and registrations available", slog.String("bucket", w.b.name("windows")))
	}
}

// bucket is the windows bucket, or nil while it is not bound.
func (w *Windows) bucket() jetstream.KeyValue {
	if kv := w.b.windows.Load(); kv != nil {
		return *kv
	}
	return nil
}

// eventWindow is the value of a key in chatd_windows.
type eventWindow struct {
	Count int       `json:"count"`
	Start time.Time `json:"start"`
}

// windowKey is the bucket key of what key counts: its HMAC-SHA256 under
// secret (the first 16 bytes, hex-encoded), so that the emails and
// addresses the limits are about stay out of NATS. A plain hash would
// not: an IPv4 address is found by hashing all 2^32 of them, an email
// confirmed by hashing a guess.
func windowKey(secret []byte, key string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(key))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// Take implements auth.SharedWindows.
func (w *Windows) Take(ctx context.Context, key string, max int, length time.Duration) (time.Duration, bool, error) {
	var wait time.Duration
	ok := w.bucket() == nil // no cluster-wide window: the instance's own holds
	err := w.update(ctx, key, func(c *eventWindow, now time.Time) bool {
		// Times are the NATS servers' as each instance estimates them
		// (natsNow), so the hosts' clocks do not matter. A window
		// another instance started is current for an instance whose
		// estimate is behind that one's; only a start more than a
		// window ahead (a version that wrote its host's time, far off)
		// begins a new one. Taken as ended, it lost the other
		// instance's count as soon as the estimates differed at all.
		if now.Sub(c.Start) >= length || c.Start.Sub(now) > length {
			*c = eventWindow{Start: now} // ended (or from a clock far ahead)
		}
		if ok = c.Count < max; !ok {
			// Another instance's estimate of NATS time that began it
			// may be ahead of this one's by a round trip: never more
			// than the window.
			wait = min(c.Start.Add(length).Sub(now), length)
			return false
		}
		c.Count++
		return true
	})
	return wait, ok, w.b.limitResult(err)
}

// Refund implements auth.SharedWindows.
func (w *Windows) Refund(ctx context.Context, key string) error {
	return w.b.limitResult(w.update(ctx, key, func(c *eventWindow, _ time.Time) bool {
		if c.Count == 0 {
			return false
		}
		c.Count--
		return true
	}))
}

// Reset implements auth.SharedWindows.
func (w *Windows) Reset(ctx context.Context, key string) error {
	return w.b.limitResult(w.cas(ctx, key, func(val []byte) ([]byte, bool, error) {
		return nil, val != nil, nil // remove it, if there is one
	}))
}

// cas runs the bus's compare-and-swap on key's window; without the
// bucket it does nothing.
func (w *Windows) cas(ctx context.Context, key string, change func(val []byte) ([]byte, bool, error)) error {
	kv := w.bucket()
	if kv == nil {
		return nil
	}
	return w.b.updateKey(ctx, func(*resources) jetstream.KeyValue { return kv }, windowKey(w.b.opts.WindowsSecret, key), change)
}

// update applies change to key's window (a new one when it has none) and
// writes it back if change returns true.
func (w *Windows) update(ctx context.Context, key string, change func(c *eventWindow, now time.Time) bool) error {
	return w.cas(ctx, key, func(val []byte) ([]byte, bool, error) {
		now, known := w.b.lease.natsNow()
		if !known {
			return nil, false, errNoNATSTime
		}
		c := eventWindow{Start: now}
		if val != nil {
			if err := json.Unmarshal(val, &c); err != nil {
				return nil, false, fmt.Errorf("decode limit window: %w", err)
			}
		}
		if !change(&c, now) {
			return nil, false, nil
		}
		out, err := json.Marshal(c)
		return out, true, err
	})
}
