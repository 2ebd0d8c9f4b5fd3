// Package waitctx waits for a sync.WaitGroup or a context, whichever ends
// first: what each shutdown (the hub's, the WebSocket handler's, the
// cluster's last publishes, the account deletions under way) needs.
package waitctx

import (
	"context"
	"sync"
)

// Wait returns nil once wg's count is zero, or ctx's error if ctx ends
// first. When ctx wins, one goroutine stays until wg is done.
func Wait(ctx context.Context, wg *sync.WaitGroup) error {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
