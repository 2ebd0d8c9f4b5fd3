package mongo

import (
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// TestUnsureInsertsNotes pins the bookkeeping of the conversations failed
// inserts noted: a round takes the notes checked longest ago, never
// checked first (oldest note first), so that every note is checked in
// turn; a note past unsureHold is dropped once checked, unless noted again
// meanwhile; past unsureMax a new conversation is refused while a noted
// one is taken again.
func TestUnsureInsertsNotes(t *testing.T) {
	t.Parallel()
	var u unsureInserts
	t0 := time.Now()
	a, b, c := bson.NewObjectID(), bson.NewObjectID(), bson.NewObjectID()
	u.note(b, t0.Add(2*time.Second))
	u.note(a, t0.Add(time.Second))
	u.note(c, t0.Add(3*time.Second))
	convs := func(notes []unsureNote) []bson.ObjectID {
		var out []bson.ObjectID
		for _, n := range notes {
			out = append(out, n.conv)
		}
		return out
	}
	round := func(limit int, now time.Time) []bson.ObjectID {
		notes := u.next(limit)
		for _, n := range notes {
			u.done(n, now)
		}
		return convs(notes)
	}
	for _, tt := range []struct {
		name string
		got  []bson.ObjectID
		want []bson.ObjectID
	}{
		{"first round: oldest notes", round(2, t0.Add(10*time.Second)), []bson.ObjectID{a, b}},
		{"second round: the one not checked first", round(2, t0.Add(20*time.Second)), []bson.ObjectID{c, a}},
	} {
		if len(tt.got) != len(tt.want) || tt.got[0] != tt.want[0] || tt.got[1] != tt.want[1] {
			t.Errorf("%s: %v, want %v", tt.name, tt.got, tt.want)
		}
	}
	late := t0.Add(unsureHold + time.Hour)
	notes := u.next(3)
	u.note(a, late) // a failed insert again, during the round
	for _, n := range notes {
		u.done(n, late)
	}
	if got := convs(u.next(10)); len(got) != 1 || got[0] != a {
		t.Fatalf("after the hold: %v, want a alone (noted again)", got)
	}
	for len(u.convs) < unsureMax {
		u.note(bson.NewObjectID(), t0)
	}
	if u.note(bson.NewObjectID(), t0) {
		t.Error("a note past unsureMax was taken")
	}
	if !u.note(a, t0) {
		t.Error("a noted conversation was refused past unsureMax")
	}
}
