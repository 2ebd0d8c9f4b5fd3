package waitctx

import (
	"context"
	"errors"
	"sync"
	"testing"
)

// TestWait: the group ending first is nil; the context ending first is
// its error, though the group is still counting.
func TestWait(t *testing.T) {
	tests := []struct {
		name    string
		pending bool // the group still counts one
		cancel  bool // the context is cancelled
		want    error
	}{
		{"group done", false, false, nil},
		{"context first", true, true, context.Canceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var wg sync.WaitGroup
			if tc.pending {
				wg.Add(1)
				defer wg.Done()
			}
			ctx, cancel := context.WithCancel(context.Background())
			if tc.cancel {
				cancel()
			}
			defer cancel()
			if err := Wait(ctx, &wg); !errors.Is(err, tc.want) {
				t.Fatalf("Wait = %v, want %v", err, tc.want)
			}
		})
	}
}
