package sqlite

import (
	"context"
	"time"
)

// finishAllDeletions runs FinishDeletions until it finds no full batch,
// logging a failure, and returns how many deletions it finished.
func (s *Store) finishAllDeletions(ctx context.Context) (int, error) {
	total := 0
	for {
		n, err := s.FinishDeletions(ctx)
		total += n
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("finishing cut-off account deletions failed; the next look tries again", "err", err)
			}
			return total, err
		}
		if n < deletionBatch {
			return total, nil
		}
	}
}

// startDeletionSweep starts the goroutine that finishes cut-off account
// deletions every opts.DeletionSweep (none when it is negative);
// stopDeletionSweep ends it.
func (s *Store) startDeletionSweep(opts Options) {
	if opts.DeletionSweep <= 0 {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.sweepStop, s.sweepEnded = cancel, make(chan struct{})
	go func() {
		defer close(s.sweepEnded)
		t := time.NewTicker(opts.DeletionSweep)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				n, err := s.finishAllDeletions(ctx)
				if opts.afterSweep != nil {
					opts.afterSweep(n, err)
				}
			}
		}
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
