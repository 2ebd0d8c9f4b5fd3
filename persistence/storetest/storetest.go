// Package storetest is the contract test suite every persistence.Store
// implementation must pass, plus shared benchmarks (see RunBenchmarks).
//
// A store package calls it from its own tests:
//
//	func TestContract(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) persistence.Store {
//			return openFreshStore(t)
//		})
//	}
//
//	func TestReopen(t *testing.T) {
//		storetest.RunReopen(t, func(t *testing.T) (persistence.Store, func(t *testing.T) persistence.Store) {
//			s, path := openFreshStoreAndRememberWhere(t)
//			return s, func(t *testing.T) persistence.Store { return openExisting(t, path) }
//		})
//	}
//
// and, for performance (see RunBenchmarks):
//
//	func BenchmarkStore(b *testing.B) {
//		storetest.RunBenchmarks(b, func(b *testing.B) persistence.Store { return openFreshStore(b) })
//	}
//
// Conventions the entry points follow:
//
//   - open is called once per sub-test and must return a fresh, empty store.
//     Sub-tests run in parallel (t.Parallel), so open must be safe to call
//     concurrently and stores must not share data.
//   - The suite closes every store it receives exactly once (through
//     t.Cleanup, or explicitly before reopening). open must not close it, but
//     should register any other cleanup itself (t.TempDir, dropping a test
//     database): cleanups run last-in first-out, so they run after Close.
//   - A store that finishes cut-off account deletions on its own, on a
//     timer, should have that timer off: the suite calls FinishDeletions
//     and counts what it finished.
//   - Timestamps a store fills into the struct it was given must be exactly
//     what it returns later (time.Time.Equal): a store with millisecond
//     resolution truncates before filling. Ordering must still follow
//     insertion order for records created one after another, at any speed.
//
// Choices the suite pins down where the interface comments leave room:
//
//   - Malformed ids ("not-an-id", "") behave like unknown ids: ErrNotFound,
//     never a parse error. InsertMessage into an unknown conversation or
//     another owner's is ErrNotFound, as is one with a malformed ParentID
//     (a well-formed ParentID is not looked up); a taken message ID is
//     ErrDuplicate.
//     CreateConversation for an owner id no user has (unknown, malformed,
//     deleted) is ErrUnknownOwner, also while DeleteUser runs.
//   - ListQuery.Limit: 0 means 30, below 1 means 1, above 100 means 100.
//     NextCursor is "" exactly when no conversation follows (no empty last
//     page). A malformed cursor (not one the store's encoding makes),
//     including a valid one with bytes appended or cut off, is
//     ErrInvalidCursor; a well-formed one it did not hand out (altered) is
//     taken as the position it names in the owner's own list.
//   - Search is a literal substring match after putting both sides in
//     Unicode's composed normal form (NFC: a decomposed "e\u0301" is an
//     "é") and lower-casing them with Unicode rules, rune by rune as
//     strings.ToLower does (so
//     "ПРИВЕТ" finds "привет", "İ" is an "i", "Σ" a "σ" and never a "ς":
//     not case folding); no character is a wildcard or pattern syntax.
//   - MessageUpdate.At becomes UpdatedAt exactly, or truncated to the
//     millisecond; a zero At is not checked.
//   - ApplyMessageUpdates returns unknown and malformed ids as skipped, and
//     the ids of messages no longer streaming (a checkpoint or a final
//     update with a new time after InterruptMessage or a final update),
//     each once; a final update applied a second time exactly as before
//     changes nothing, skipped or not.
package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"chatd/persistence"
)

// testTimeout bounds every sub-test; generous because the machine is
// shared and, on FerretDB, every group of the suite runs at once against
// servers that scan whole collections (MixedLoad alone takes ~30 s there
// under -race, longer beside the rest of make test's packages).
const testTimeout = 5 * time.Minute

// storeTest is one named contract check run against a fresh store.
type storeTest struct {
	name string
	fn   func(t *testing.T, s persistence.Store)
}

// Run runs the whole contract suite (everything except reopening, see
// RunReopen) with a fresh store from open for every sub-test.
func Run(t *testing.T, open func(t *testing.T) persistence.Store) {
	t.Helper()
	groups := []struct {
		name  string
		tests []storeTest
	}{
		{"Users", userTests()},
		{"Conversations", conversationTests()},
		{"List", listTests()},
		{"Search", searchTests()},
		{"Messages", messageTests()},
		{"ReadConversation", readConversationTests()},
		{"PageRead", pageReadTests()},
		{"Updates", updateTests()},
		{"Concurrency", concurrencyTests()},
		{"Pages", pageTests()},
		{"ModelFeatures", modelFeatureTests()},
		{"Latest", latestTests()},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					s := open(t)
					t.Cleanup(func() { closeStore(t, s) })
					tc.fn(t, s)
				})
			}
		})
	}
}

// closeStore closes s with a bounded context and reports an error.
func closeStore(t *testing.T, s persistence.Store) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// testCtx returns a context that ends with the test or after testTimeout.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// wantErr fails the test unless errors.Is(err, want).
func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}

// noErr fails the test on a non-nil err.
func noErr(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// badIDs are ids no store may find: a well-formed unknown one and malformed ones.
func badIDs() []string {
	return []string{persistence.NewID(), "not-an-id", "", "ZZZZZZZZZZZZZZZZZZZZZZZZ"}
}

// checkRecent fails unless ts is set and close to the window [before, after].
// The slack allows stores that truncate to milliseconds or keep a strictly
// increasing clock.
func checkRecent(t *testing.T, what string, ts, before, after time.Time) {
	t.Helper()
	const slack = time.Second
	if ts.IsZero() || ts.Before(before.Add(-slack)) || ts.After(after.Add(slack)) {
		t.Fatalf("%s = %v, want between %v and %v", what, ts, before, after)
	}
}

// sameTime fails unless a and b are the same instant.
func sameTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}
