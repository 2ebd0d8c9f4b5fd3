package mongo

import (
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// TestUnsureInsertsNotes pins the bookkeeping of the conversations failed
// inserts noted: the oldest notes come first, a note taken again is not
// forgotten by the round that read the older one, and past unsureMax a
// new conversation is refused while a noted one is taken again.
func TestUnsureInsertsNotes(t *testing.T) {
	t.Parallel()
	var u unsureInserts
	t0 := time.Now()
	a, b, c := bson.NewObjectID(), bson.NewObjectID(), bson.NewObjectID()
	for _, n := range []struct {
		conv bson.ObjectID
		at   time.Time
	}{{b, t0.Add(2 * time.Second)}, {a, t0.Add(time.Second)}, {c, t0.Add(3 * time.Second)}} {
		if !u.note(n.conv, n.at) {
			t.Fatal("note refused")
		}
	}
	got := u.oldest(2)
	if len(got) != 2 || got[0].conv != a || got[1].conv != b {
		t.Fatalf("oldest(2) = %v, want a then b", got)
	}
	u.note(a, t0.Add(4*time.Second)) // a failed insert again
	u.forget(a, got[0].at)
	u.forget(b, got[1].at)
	if got := u.oldest(10); len(got) != 2 || got[0].conv != c || got[1].conv != a {
		t.Fatalf("after forget: %v, want c then a (noted again)", got)
	}
	for len(u.convs) < unsureMax {
		u.note(bson.NewObjectID(), t0)
	}
	if u.note(bson.NewObjectID(), t0) {
		t.Error("a note past unsureMax was taken")
	}
	if !u.note(c, t0) {
		t.Error("a noted conversation was refused past unsureMax")
	}
}
