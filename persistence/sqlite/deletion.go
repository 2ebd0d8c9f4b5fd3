package sqlite

import (
	"context"

	"chatd/persistence"
)

// finishAllDeletions finishes every cut-off account or conversation
// deletion it finds (persistence.FinishAllDeletions), logging a failure.
func (s *Store) finishAllDeletions(ctx context.Context) (int, error) {
	return persistence.FinishAllDeletions(ctx, s, deletionBatch, s.log)
}

// startDeletionSweep starts the goroutine that finishes cut-off account
// and conversation deletions every opts.DeletionSweep (none when it is negative);
// stopDeletionSweep ends it.
func (s *Store) startDeletionSweep(opts Options) {
	if opts.DeletionSweep <= 0 {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.sweepStop, s.sweepEnded = cancel, make(chan struct{})
	go func() {
		defer close(s.sweepEnded)
		persistence.SweepDeletions(ctx, s, deletionBatch, opts.DeletionSweep, s.log, opts.afterSweep)
	}()
}

// stopDeletionSweep ends the sweep, cutting a deletion in progress (the
// next Open finishes it), and waits for it.
func (s *Store) stopDeletionSweep() {
	if s.sweepStop == nil {
		return
	}
	s.sweepStop()
	<-s.sweepEnded
}
