package natsbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go/jetstream"

	"chatd/hub"
)

// checkAnswers sets the answer stream up again when it is gone while the
// buckets are not (deleted by hand, or lost with its replicas): without
// it every frame's publish fails (the first frame of an answer with
// "stream not found", the others unacknowledged), so no answer ends, its
// lock is never released, and the conversation refuses sends until a
// restart. relostLeases sets everything up again when the leases bucket
// went too; this covers the stream alone (judgeLoop calls it each round).
// Health fails from the moment the stream is found missing until it is
// there again. The answers running meanwhile go on in it: their next
// frame finds none of theirs stored and is stored after nothing
// (rebase), and a follow whose stream positions are past the new
// stream's reads it from its start again (follow.sameStream); the frames
// lost with the stream are a hole its followers fill from the store.
func (b *Bus) checkAnswers(ctx context.Context) {
	res := b.res.Load()
	cctx, cancel := context.WithTimeout(ctx, b.opts.LeaseTTL/2)
	defer cancel()
	_, err := b.js.Stream(cctx, res.stream)
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		if err == nil {
			b.answersGone.Store(false)
		}
		return // there, or NATS trouble: the next round looks again
	}
	if !b.answersGone.Swap(true) {
		b.log.Warn("the answer stream is gone from NATS JetStream (deleted, or lost with its replicas); setting it up again",
			slog.String("stream", res.stream))
	}
	if hook := b.answersHook.Load(); hook != nil {
		(*hook)()
	}
	r := b.replicas()
	if _, err := ensure(cctx, func(ctx context.Context) (string, error) { return b.provisionStream(ctx, r) }); err != nil {
		b.log.Warn("set the answer stream up again; retrying at the next renewal", slog.Any("err", err))
		return
	}
	b.log.Info("the answer stream is set up again", slog.String("stream", res.stream))
	b.answersGone.Store(false)
}

// answersErr is why the answer stream cannot be used: nil, or an error
// wrapping hub.ErrBusUnavailable while it is gone (checkAnswers).
func (b *Bus) answersErr() error {
	if !b.answersGone.Load() {
		return nil
	}
	return fmt.Errorf("natsbus: %w: the answer stream is gone from JetStream; being set up again", hub.ErrBusUnavailable)
}
