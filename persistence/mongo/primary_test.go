package mongo_test

import (
	"context"
	"encoding/binary"
	"errors"
	"net/url"
	"slices"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"

	"chatd/persistence"
	"chatd/persistence/mongo"
)

// asMongos rewrites a hello reply (OP_REPLY to a connection's first,
// legacy hello; OP_MSG to the monitor's later ones) so that the driver
// takes the server for a mongos ("msg": "isdbgrid"). A driver sends a
// mongos the read preference of each read in its $readPreference field
// (none for the primary), where it sends a standalone none at all: so a
// test on FerretDB sees where each read was meant to go. Every other
// message passes unchanged.
func asMongos(msg []byte) []byte {
	const opReply, opMsg = 1, 2013
	var start int // where the reply's one document starts
	switch binary.LittleEndian.Uint32(msg[12:16]) {
	case opReply: // header, responseFlags, cursorID, startingFrom, numberReturned
		start = 16 + 4 + 8 + 4 + 4
	case opMsg: // header, flagBits, the body's section kind
		if binary.LittleEndian.Uint32(msg[16:20])&1 != 0 || msg[20] != 0 { // a checksum, or no body first
			return msg
		}
		start = 16 + 4 + 1
	default:
		return msg
	}
	if len(msg) < start+5 || start+int(binary.LittleEndian.Uint32(msg[start:])) != len(msg) {
		return msg
	}
	doc := bson.Raw(msg[start:])
	if _, err := doc.LookupErr("maxWireVersion"); err != nil {
		return msg // not a hello reply
	}
	var d bson.D
	if err := bson.Unmarshal(doc, &d); err != nil {
		return msg
	}
	body, err := bson.Marshal(append(d, bson.E{Key: "msg", Value: "isdbgrid"}))
	if err != nil {
		return msg
	}
	out := append(append([]byte{}, msg[:start]...), body...)
	binary.LittleEndian.PutUint32(out[:4], uint32(len(out)))
	return out
}

// viaMongos is a via for newEnvWith: the store reaches FerretDB through a
// proxy that presents it as a mongos (asMongos), with the URI's options
// given as key, value pairs set.
func viaMongos(t *testing.T, options ...string) func(uri string) string {
	return func(uri string) string {
		u, err := url.Parse(uri)
		if err != nil {
			t.Fatalf("FerretDB's URI %q: %v", uri, err)
		}
		u.Host = startRewriter(t, u.Host, asMongos).addr()
		q := u.Query()
		for i := 0; i+1 < len(options); i += 2 {
			q.Set(options[i], options[i+1])
		}
		u.RawQuery = q.Encode()
		return u.String()
	}
}

// readModes records, per collection, the read preference of each find
// and aggregate sent ("primary" when the command names none).
type readModes struct {
	mu    sync.Mutex
	modes map[string][]string
}

func (r *readModes) monitor() *event.CommandMonitor {
	r.modes = make(map[string][]string)
	return &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		if e.CommandName != "find" && e.CommandName != "aggregate" {
			return
		}
		coll, _ := e.Command.Lookup(e.CommandName).StringValueOK()
		mode := "primary"
		if v, err := e.Command.LookupErr("$readPreference", "mode"); err == nil {
			mode, _ = v.StringValueOK()
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		r.modes[coll] = append(r.modes[coll], mode)
	}}
}

// take returns the modes recorded for coll and forgets them.
func (r *readModes) take(coll string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.modes[coll]
	delete(r.modes, coll)
	return m
}

// TestDecidingReadsGoToThePrimary: with a URI that sends reads to secondaries
// (readPreference=secondaryPreferred), every read of users still goes to
// the primary, since each decides a sign-in, a token check or a write's
// outcome. A lagging secondary answered the re-read by which the account
// deletion learns that its mark landed (transport/auth's takeBack, a
// UserByID) that it had not: a 500 for a deletion under way; and it let a
// token revoked a moment ago, or an old password, pass. So does the read
// that tells UpdateConversation's conflict from an unknown id, and the one
// by which a repeated send learns whether it was stored
// (MessageByClientID: the hub stores it again when not), and Open's reads
// of meta (a stale schema version decided which steps to run and whether
// the schema is too new; a stale clean-up state skipped the sweep) and of
// the conversations being deleted (whether there are deletions to finish). The other
// reads of conversations keep the URI's preference (the test sees it, so
// it sees the preferences at all).
func TestDecidingReadsGoToThePrimary(t *testing.T) {
	t.Parallel()
	var reads readModes
	ctx, e := newEnvWith(t, mongo.Options{Monitor: reads.monitor()},
		viaMongos(t, "readPreference", "secondaryPreferred", "retryWrites", "false"))
	s := e.store
	if got := reads.take("meta"); len(got) == 0 || slices.ContainsFunc(got, func(m string) bool { return m != "primary" }) {
		t.Errorf("Open read meta (the schema version, the clean-up's state) with %v, want the primary only", got)
	}
	if got := reads.take("conversations"); len(got) == 0 || slices.ContainsFunc(got, func(m string) bool { return m != "primary" }) {
		t.Errorf("Open read conversations (those being deleted) with %v, want the primary only", got)
	}
	u := mustUser(ctx, t, s, "primary@example.test")
	c := mustConversation(ctx, t, s, u.ID, "t")
	reads.take("users")
	if _, err := s.Conversation(ctx, u.ID, c.ID); err != nil {
		t.Fatal(err)
	}
	if got := reads.take("conversations"); !slices.Equal(got, []string{"secondaryPreferred"}) {
		t.Fatalf("Conversation read with %v, want the URI's [secondaryPreferred]: the proxy shows no read preference", got)
	}
	for _, tc := range []struct {
		name string
		read func() error
	}{
		{"UserByID", func() error { _, err := s.UserByID(ctx, u.ID); return err }},
		{"UserByEmail", func() error { _, err := s.UserByEmail(ctx, u.Email); return err }},
		{"ChangePassword's conflict", func() error {
			if _, err := s.ChangePassword(ctx, u.ID, "h2", u.TokenVersion+7); !errors.Is(err, persistence.ErrConflict) {
				return err
			}
			return nil
		}},
		{"CreateConversation's owner", func() error {
			mustConversation(ctx, t, s, u.ID, "t2")
			return nil
		}},
	} {
		if err := tc.read(); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		got := reads.take("users")
		if len(got) == 0 || slices.ContainsFunc(got, func(m string) bool { return m != "primary" }) {
			t.Errorf("%s read users with %v, want the primary only", tc.name, got)
		}
	}
	// The read that tells a conditional rename's conflict from an unknown
	// id: a conversation created a moment ago is there.
	other := "other"
	if _, err := s.UpdateConversation(ctx, u.ID, c.ID, persistence.ConversationPatch{Title: &other, IfTitle: &other}); !errors.Is(err, persistence.ErrConflict) {
		t.Fatalf("UpdateConversation with another IfTitle: %v, want ErrConflict", err)
	}
	if got := reads.take("conversations"); !slices.Equal(got, []string{"primary"}) {
		t.Errorf("UpdateConversation's conflict read conversations with %v, want the primary", got)
	}
	// The read by which a repeated send learns whether it was stored.
	m := mustMessage(ctx, t, s, c, persistence.RoleUser, "hi")
	reads.take("messages")
	if _, err := s.MessageByClientID(ctx, u.ID, m.ClientMessageID); err != nil {
		t.Fatal(err)
	}
	if got := reads.take("messages"); !slices.Equal(got, []string{"primary"}) {
		t.Errorf("MessageByClientID read messages with %v, want the primary", got)
	}
	// The read by which an account deletion learns which streaming
	// answers' entries to drop from the tail cache.
	gone := mustUser(ctx, t, s, "gone@example.test")
	mustMessage(ctx, t, s, mustConversation(ctx, t, s, gone.ID, "t"), persistence.RoleAssistant, "streaming")
	reads.take("messages")
	if err := s.DeleteUser(ctx, gone.ID); err != nil {
		t.Fatal(err)
	}
	if got := reads.take("messages"); len(got) == 0 || slices.ContainsFunc(got, func(m string) bool { return m != "primary" }) {
		t.Errorf("DeleteUser read messages with %v, want the primary only", got)
	}
}

// TestLatestReadsGoToThePrimary: a read of conversations or messages made
// with a context of persistence.WithLatest goes to the primary, whatever
// readPreference the URI names; without it, it follows the URI's. The hub
// asks for it where what it reads decides a write or goes upstream right
// after one (the history of a send, whether a new conversation is still
// empty before it is deleted): a lagging secondary left out a message just
// stored. Each read is checked both ways, with the collections it reads.
func TestLatestReadsGoToThePrimary(t *testing.T) {
	t.Parallel()
	var reads readModes
	ctx, e := newEnvWith(t, mongo.Options{Monitor: reads.monitor()},
		viaMongos(t, "readPreference", "secondaryPreferred", "retryWrites", "false"))
	s := e.store
	u := mustUser(ctx, t, s, "latest@example.test")
	c := mustConversation(ctx, t, s, u.ID, "t")
	m := mustMessage(ctx, t, s, c, persistence.RoleUser, "hello there")
	tests := []struct {
		name  string
		colls []string // the collections it reads
		read  func(ctx context.Context) error
	}{
		{"Conversation", []string{"conversations"}, func(ctx context.Context) error {
			_, err := s.Conversation(ctx, u.ID, c.ID)
			return err
		}},
		{"Messages", []string{"messages"}, func(ctx context.Context) error {
			_, err := s.Messages(ctx, u.ID, c.ID)
			return err
		}},
		{"ReadConversation", []string{"conversations", "messages"}, func(ctx context.Context) error {
			_, _, err := persistence.ReadConversation(ctx, s, u.ID, c.ID)
			return err
		}},
		{"Message", []string{"messages"}, func(ctx context.Context) error {
			_, err := s.Message(ctx, u.ID, m.ID)
			return err
		}},
		{"MessagePage", []string{"messages"}, func(ctx context.Context) error {
			_, err := s.MessagePage(ctx, u.ID, c.ID, persistence.PageQuery{Before: m.ID})
			return err
		}},
		{"MessageOutline", []string{"messages"}, func(ctx context.Context) error {
			_, err := s.MessageOutline(ctx, u.ID, c.ID)
			return err
		}},
		{"ReadPage", []string{"conversations", "messages"}, func(ctx context.Context) error {
			_, _, err := persistence.ReadPage(ctx, s, u.ID, c.ID, persistence.PageQuery{Before: m.ID})
			return err
		}},
		{"ReadOutline", []string{"conversations", "messages"}, func(ctx context.Context) error {
			_, _, err := persistence.ReadOutline(ctx, s, u.ID, c.ID)
			return err
		}},
		{"ReadContent", []string{"messages"}, func(ctx context.Context) error {
			return s.ReadContent(ctx, u.ID, m.ID, func(string) error { return nil })
		}},
		{"ReadReasoning", []string{"messages"}, func(ctx context.Context) error {
			return s.ReadReasoning(ctx, u.ID, m.ID, func(string) error { return nil })
		}},
		{"ListConversations with a search", []string{"conversations", "messages"}, func(ctx context.Context) error {
			_, err := s.ListConversations(ctx, u.ID, persistence.ListQuery{Search: "lo th"})
			return err
		}},
		{"StreamingConversations", []string{"messages"}, func(ctx context.Context) error {
			_, err := s.StreamingConversations(ctx, u.ID)
			return err
		}},
	}
	for _, tc := range tests {
		for _, latest := range []bool{false, true} {
			rctx, want := ctx, "secondaryPreferred"
			if latest {
				rctx, want = persistence.WithLatest(ctx), "primary"
			}
			for _, coll := range []string{"conversations", "messages"} {
				reads.take(coll)
			}
			if err := tc.read(rctx); err != nil {
				t.Fatalf("%s (latest: %v): %v", tc.name, latest, err)
			}
			for _, coll := range tc.colls {
				got := reads.take(coll)
				if len(got) == 0 || slices.ContainsFunc(got, func(m string) bool { return m != want }) {
					t.Errorf("%s (latest: %v) read %s with %v, want %s only", tc.name, latest, coll, got, want)
				}
			}
		}
	}
}
