package batch

import (
	"context"
	"log/slog"
	"time"

	"chatd/persistence"
)

// Store is what the Writer needs from a database: one bulk write of message
// updates, conditional on each message still streaming, that returns the
// ids of the updates that did not apply, and, when only some updates
// failed, a *persistence.PartialUpdateError naming them (persistence.Messages
// documents it). persistence.Store implements it.
type Store interface {
	ApplyMessageUpdates(ctx context.Context, updates []persistence.MessageUpdate) (skipped []string, err error)
}

// Metrics receives measurements from the Writer, so the wiring in cmd can
// export them (for example as Prometheus histograms) without this package
// knowing about any metrics library. Calls come from the Writer's flush
// goroutine and must not block.
type Metrics interface {
	// Flushed is called after every bulk write with the number of updates it
	// carried, how long the store took and the store's error (nil on success).
	Flushed(updates int, latency time.Duration, err error)
}

// Options configures a Writer. Zero fields take the documented defaults.
type Options struct {
	// Interval is the checkpoint interval: a streaming message's pending text
	// is written at most once per Interval. It defaults to 300ms.
	Interval time.Duration
	// MaxBatch is the largest number of updates in one bulk write; a flush
	// with more is split into several writes. It defaults to 256.
	MaxBatch int
	// MaxPending bounds the messages the Writer tracks at once (each message
	// counts from its first Append until its final update is durable), which
	// bounds memory while the database is unavailable. It defaults to 10,000
	// and must stay above the number of answers the hub runs at once, since a
	// running answer is tracked even when everything it produced is written.
	// See Writer for what happens when it is reached.
	MaxPending int
	// MaxHoldBack is the longest trailing partial word a checkpoint holds
	// back; a longer tail is written whole (still on a UTF-8 character
	// boundary). It defaults to 256 bytes.
	MaxHoldBack int
	// RetryBase is the first backoff after a failed bulk write; each further
	// consecutive failure doubles it, up to RetryMax, with jitter (the wait is
	// uniformly random between half and all of the backoff). RetryBase
	// defaults to 100ms and RetryMax to 5s.
	RetryBase time.Duration
	RetryMax  time.Duration
	// MaxRefusals is how many times in a row the store may reject a
	// message's update (persistence.PartialUpdateError.Refused: the
	// database ran it and refused it) before the Writer gives up on the
	// message (see Writer, "Failures"). It defaults to 5. Other failures
	// are retried for as long as the Writer runs.
	MaxRefusals int
	// WriteTimeout bounds one bulk write. It defaults to 10s. (The MongoDB
	// store, when a write ran out of time, takes up to its ReadBackTimeout
	// (5s) more to read back
	// which of its updates applied.)
	WriteTimeout time.Duration
	// Logger receives failures and dropped text; it defaults to slog.Default().
	Logger *slog.Logger
	// Metrics, when set, is told about every bulk write.
	Metrics Metrics
	// Now returns the current time, stamped on updates as At; it defaults to
	// time.Now.
	Now func() time.Time
	// OnFenced, when set, is called with the id of a message whose
	// checkpoint the store skipped because the message is no longer
	// streaming (see Writer, "Fence"), so that its producer can stop at
	// once instead of at its Finish. It is called from the flush goroutine
	// with no lock held, once per message, and must not block.
	OnFenced func(id string)
	// OnDropped, when set, is called with the id of a message whose final
	// update the Writer will never write (it gave up on the message, see
	// Writer, "Failures", or Close abandoned it) while no Finish call
	// waits for it any more: every Finish of the message returned when
	// its ctx ended, so none reports the drop, and nothing else would end
	// the message, left streaming. ownerID is the final update's OwnerID
	// (persistence.MessageUpdate), err says why. Its producer can then end
	// the message (the hub marks it interrupted), needing nothing it
	// remembered of it. It is called from the flush goroutine with no lock
	// held, once per message, and must not block.
	OnDropped func(id, ownerID string, err error)
}

// Defaults for Options.
const (
	DefaultInterval     = 300 * time.Millisecond
	DefaultMaxBatch     = 256
	DefaultMaxPending   = 10_000
	DefaultMaxHoldBack  = 256
	DefaultRetryBase    = 100 * time.Millisecond
	DefaultRetryMax     = 5 * time.Second
	DefaultMaxRefusals  = 5
	DefaultWriteTimeout = 10 * time.Second
)

// withDefaults returns o with every zero field set to its default.
func (o Options) withDefaults() Options {
	setDuration(&o.Interval, DefaultInterval)
	setInt(&o.MaxBatch, DefaultMaxBatch)
	setInt(&o.MaxPending, DefaultMaxPending)
	setInt(&o.MaxHoldBack, DefaultMaxHoldBack)
	setDuration(&o.RetryBase, DefaultRetryBase)
	setDuration(&o.RetryMax, DefaultRetryMax)
	setDuration(&o.WriteTimeout, DefaultWriteTimeout)
	setInt(&o.MaxRefusals, DefaultMaxRefusals)
	if o.RetryMax < o.RetryBase {
		o.RetryMax = o.RetryBase
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

func setDuration(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

func setInt(n *int, def int) {
	if *n <= 0 {
		*n = def
	}
}
