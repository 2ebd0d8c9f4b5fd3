package sqlite

import (
	"testing"

	"chatd/persistence"
)

// TestSearchIndexNormalForms: a message stored decomposed (NFD) is found
// through the index by a query typed composed (NFC), and one stored
// composed by a decomposed query: the index holds the text in NFC
// (fold), as the query is. Before, the index held the decomposed text's
// trigrams, which no composed query asks for.
func TestSearchIndexNormalForms(t *testing.T) {
	t.Parallel()
	f := newSearchFixture(t, openTest(t, Options{}))
	f.insert(t, "a cre\u0300me bru\u0302le\u0301e", persistence.StatusComplete)
	other := newSearchFixtureFor(t, f.s, "composed@example.test")
	other.insert(t, "a crème brûlée", persistence.StatusComplete)
	waitIndexed(t, f.s)
	if f.s.requeueing.Load() || indexed(t, f.s) != 2 {
		t.Fatalf("index holds %d messages (requeueing %v), want 2", indexed(t, f.s), f.s.requeueing.Load())
	}
	for _, q := range []string{"crème brûlée", "CRÈME", "cre\u0300me bru\u0302le\u0301e", "BRU\u0302LE\u0301E"} {
		if !f.found(t, q) || !other.found(t, q) {
			t.Errorf("search %q: found decomposed %v, composed %v; want both", q, f.found(t, q), other.found(t, q))
		}
	}
}
