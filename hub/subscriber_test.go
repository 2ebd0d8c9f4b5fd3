package hub

import (
	"slices"
	"testing"

	"chatd/hub/protocol"
)

// followersOf returns the set of subs, as followLocked builds it.
func followersOf(subs ...Subscriber) followers {
	var fs followers
	for _, s := range subs {
		fs.add(s)
	}
	return fs
}

// plainSub is a Subscriber that implements neither Busy nor DrainWatcher.
type plainSub struct{ id string }

func (s *plainSub) UserID() string                   { return "u" }
func (s *plainSub) ConnectionID() string             { return s.id }
func (s *plainSub) Deliver(*protocol.Frame)          {}
func (s *plainSub) Close(protocol.CloseCode, string) {}

// TestFollowers checks the conversation's subscriber set: no duplicates,
// removal keeps the others in order, removing an absent one changes
// nothing, and the optional interfaces are found once, at add.
func TestFollowers(t *testing.T) {
	t.Parallel()
	a, b, c := &plainSub{id: "a"}, &drainRecorder{}, &plainSub{id: "c"}
	ids := func(fs followers) []Subscriber {
		var out []Subscriber
		for _, f := range fs {
			out = append(out, f.sub)
		}
		return out
	}
	tests := []struct {
		name   string
		add    []Subscriber
		remove []Subscriber
		want   []Subscriber
	}{
		{"empty", nil, nil, nil},
		{"order kept", []Subscriber{a, b, c}, nil, []Subscriber{a, b, c}},
		{"duplicate ignored", []Subscriber{a, b, a, b}, nil, []Subscriber{a, b}},
		{"remove middle", []Subscriber{a, b, c}, []Subscriber{b}, []Subscriber{a, c}},
		{"remove first and last", []Subscriber{a, b, c}, []Subscriber{a, c}, []Subscriber{b}},
		{"remove absent", []Subscriber{a}, []Subscriber{c}, []Subscriber{a}},
		{"remove all, add again", []Subscriber{a, b}, []Subscriber{a, b, a}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fs := followersOf(tt.add...)
			for _, s := range tt.remove {
				fs.remove(s)
			}
			if got := ids(fs); !slices.Equal(got, tt.want) {
				t.Fatalf("followers %v, want %v", got, tt.want)
			}
			for _, f := range fs {
				_, busy := f.sub.(Busy)
				_, drain := f.sub.(DrainWatcher)
				if (f.busy != nil) != busy || (f.drain != nil) != drain {
					t.Fatalf("%v: busy %v drain %v cached, implements %v %v", f.sub, f.busy != nil, f.drain != nil, busy, drain)
				}
			}
		})
	}
}
