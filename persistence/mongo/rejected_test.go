package mongo

import (
	"errors"
	"fmt"
	"testing"

	"go.mongodb.org/mongo-driver/v2/mongo"
)

// TestRejected: only write errors that the same statement would meet
// again (a field of the wrong type, a document over the size limit, a
// failed validation) count as the server rejecting an update; write
// errors of a primary stepping down or shutting down, or of a conflict,
// do not (the batching writer gives up on a message after repeated
// rejections, and must not during an election), nor does anything that
// is not write errors alone.
func TestRejected(t *testing.T) {
	t.Parallel()
	bulk := func(codes ...int) mongo.BulkWriteException {
		var e mongo.BulkWriteException
		for i, c := range codes {
			e.WriteErrors = append(e.WriteErrors, mongo.BulkWriteError{WriteError: mongo.WriteError{Index: i, Code: c}})
		}
		return e
	}
	withConcern := bulk(2)
	withConcern.WriteConcernError = &mongo.WriteConcernError{Code: 64}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"push to a string (BadValue)", bulk(2), true},
		{"type mismatch", bulk(14), true},
		{"document too large", bulk(17419), true},
		{"BSON object too large", bulk(10334), true},
		{"validation failed", bulk(121), true},
		{"two rejections", bulk(2, 121), true},
		{"wrapped", fmt.Errorf("apply: %w", bulk(2)), true},
		{"not writable primary", bulk(10107), false},
		{"interrupted by a step-down", bulk(11602), false},
		{"primary stepped down", bulk(189), false},
		{"shutdown in progress", bulk(91), false},
		{"write conflict", bulk(112), false},
		{"a rejection and a step-down", bulk(2, 11602), false},
		{"with a write concern error", withConcern, false},
		{"network error", errors.New("connection reset"), false},
	}
	for _, tt := range tests {
		if got := rejected(tt.err); got != tt.want {
			t.Errorf("%s: rejected = %v, want %v", tt.name, got, tt.want)
		}
	}
}
