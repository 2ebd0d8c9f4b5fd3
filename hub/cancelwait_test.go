package hub

import (
	"context"
	"sync"
	"testing"
	"time"

	"chatd/llm"
)

// TestCancelWaitEndsWithRequest: CancelAnswer waits for the answer it
// stopped to end only as long as its own request lasts: when the request
// is gone (its connection closed), the wait ends, and the answer still
// ends. It used to wait up to FinishTimeout whatever the request, holding
// the connection's worker.
func TestCancelWaitEndsWithRequest(t *testing.T) {
	t.Parallel()
	stopping, hold := make(chan struct{}), make(chan struct{})
	e := newEnv(t, Options{FinishTimeout: time.Hour}, func(ctx context.Context, _ llm.Request, onDelta func(string)) (llm.Result, error) {
		onDelta("partial")
		<-ctx.Done()
		close(stopping)
		<-hold // the upstream takes its time to let go
		return llm.Result{}, context.Cause(ctx)
	})
	release := sync.OnceFunc(func() { close(hold) })
	t.Cleanup(release) // before the hub's shutdown, should the test fail
	sub := newSub("u")
	res := e.send(t, sub, "hi")
	ctx, cancel := context.WithCancel(context.Background())
	returned := make(chan error, 1)
	go func() { returned <- e.h.CancelAnswer(ctx, "u", res.ConversationID, res.MessageID) }()
	<-stopping
	cancel()
	select {
	case err := <-returned:
		if err != nil {
			t.Fatalf("CancelAnswer: %v", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("CancelAnswer still waits after its request ended")
	}
	release()
	if _, done := sub.textUntilDone(t, res.MessageID, 0); done.Status != "cancelled" {
		t.Fatalf("done %+v, want cancelled", done)
	}
}
