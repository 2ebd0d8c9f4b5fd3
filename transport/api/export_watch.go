package api

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"chatd/transport/internal/reqtimeout"
)

// storeWatch bounds each wait of an export on the store, and only those:
// an export streams for as long as its reader takes it (each write is
// bounded by the response's write timeout), but a store that stops
// answering (a stalled disk, a database failover) must not hold the
// request, and its connection, for as long as it hangs. One timer runs
// while the export waits on the store (waiting) and is stopped while it
// writes (writing); when a wait outlasts its bound, ctx ends and the
// store call fails.
//
// Until the export's first bytes are sent (sent), its waits share the
// request's one deadline (reqtimeout.Deadline: timeout after the
// request's start, the deadline the token check counted against too), so
// a store too slow gets the export's JSON error (503) out within the
// request timeout, before a proxy in front gives up waiting for the
// response (nginx's proxy_read_timeout, the timeout + 5 s) and answers
// its own 504. Once bytes flow, each wait is bounded by timeout on its
// own; the export sends its first bytes before its first read of a text
// past a second into it (sendHeld), so only the reads until then share
// the deadline, however many short texts it reads.
type storeWatch struct {
	ctx      context.Context
	cancel   context.CancelFunc
	timer    *time.Timer
	timeout  time.Duration
	deadline time.Time   // the request's, bounding every wait before the first bytes
	sent     func() bool // whether the first bytes were sent
	early    bool        // the last wait started before the first bytes were sent
	fired    atomic.Bool
}

// newStoreWatch returns a watch over parent, the context of a request,
// its timer stopped. sent reports whether the export's first bytes were
// sent.
func newStoreWatch(parent context.Context, timeout time.Duration, sent func() bool) *storeWatch {
	w := &storeWatch{timeout: timeout, deadline: reqtimeout.Deadline(parent, timeout), sent: sent}
	w.ctx, w.cancel = context.WithCancel(parent)
	w.timer = time.AfterFunc(timeout, func() {
		w.fired.Store(true)
		w.cancel()
	})
	w.timer.Stop()
	return w
}

// waiting starts the timer: the export waits on the store, until the
// request's deadline before its first bytes were sent, for timeout after.
func (w *storeWatch) waiting() {
	d := w.timeout
	w.early = !w.sent()
	if w.early {
		d = min(d, time.Until(w.deadline)) // at or below 0, it fires at once
	}
	w.timer.Reset(d)
}

// writing stops the timer: what the store gave is being written.
func (w *storeWatch) writing() { w.timer.Stop() }

// stop ends the watch.
func (w *storeWatch) stop() {
	w.timer.Stop()
	w.cancel()
}

// err is err, marked as a wait that ran out of time
// (context.DeadlineExceeded, answered 503) when the timer ended it.
func (w *storeWatch) err(err error) error {
	if err == nil || !w.fired.Load() {
		return err
	}
	if w.early {
		return fmt.Errorf("the store did not answer within %s of the request's start, before the export's first bytes: %w (%w)",
			w.timeout, context.DeadlineExceeded, err)
	}
	return fmt.Errorf("the store did not answer within %s: %w (%w)", w.timeout, context.DeadlineExceeded, err)
}
