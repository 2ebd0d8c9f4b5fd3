package api

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
)

// storeWatch bounds each wait of an export on the store, and only those:
// an export streams for as long as its reader takes it (each write is
// bounded by the response's write timeout), but a store that stops
// answering (a stalled disk, a database failover) must not hold the
// request, and its connection, for as long as it hangs. One timer runs
// while the export waits on the store (waiting) and is stopped while it
// writes (writing); when a wait outlasts the timeout, ctx ends and the
// store call fails.
type storeWatch struct {
	ctx     context.Context
	cancel  context.CancelFunc
	timer   *time.Timer
	timeout time.Duration
	fired   atomic.Bool
}

// newStoreWatch returns a watch over parent, its timer stopped.
func newStoreWatch(parent context.Context, timeout time.Duration) *storeWatch {
	w := &storeWatch{timeout: timeout}
	w.ctx, w.cancel = context.WithCancel(parent)
	w.timer = time.AfterFunc(timeout, func() {
		w.fired.Store(true)
		w.cancel()
	})
	w.timer.Stop()
	return w
}

// waiting starts the timer: the export waits on the store.
func (w *storeWatch) waiting() { w.timer.Reset(w.timeout) }

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
	if err != nil && w.fired.Load() {
		return fmt.Errorf("the store did not answer within %s: %w (%w)", w.timeout, context.DeadlineExceeded, err)
	}
	return err
}
