package persistence

import (
	"fmt"
	"slices"
	"strings"
)

// PartialUpdateError is the error Messages.ApplyMessageUpdates returns when
// the updates of some messages failed and every other update of the batch
// is known to have applied (or to have been skipped by the fence, in which
// case its id is among the skipped ids returned with it): some statements
// of a bulk write failed, or its reply was lost and the store read back
// which applied. The updates of the messages in IDs did not apply: a
// caller may retry them whole. The others must not be written again: a
// checkpoint would append its text a second time. Compare with errors.As.
//
// Refused, a subset of IDs, names the messages whose update the database
// ran and rejected for a reason of its own (a write error: a field of the
// wrong type, a document over the size limit, a failed validation):
// written again unchanged, it is rejected again, unlike an update whose
// reply was lost or that met a primary stepping down.
type PartialUpdateError struct {
	IDs     []string // messages whose updates did not apply, each once
	Refused []string // those of IDs the database rejected
	Err     error    // why: the first write error, or the error of the write whose reply was lost
}

// Error names the failed messages and the cause.
func (e *PartialUpdateError) Error() string {
	return fmt.Sprintf("updates of %d message(s) not applied (%s): %v", len(e.IDs), strings.Join(e.IDs, ", "), e.Err)
}

// Unwrap returns the cause.
func (e *PartialUpdateError) Unwrap() error { return e.Err }

// Failed reports whether the update of message id failed.
func (e *PartialUpdateError) Failed(id string) bool {
	return slices.Contains(e.IDs, id)
}

// Rejected reports whether the database rejected the update of message id
// (see Refused).
func (e *PartialUpdateError) Rejected(id string) bool {
	return slices.Contains(e.Refused, id)
}
