package mongo_test

import (
	"encoding/binary"
	"net/url"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"chatd/persistence"
	"chatd/persistence/mongo"
)

// asNoTextIndex turns FerretDB's refusal of a $text query into MongoDB's
// answer to one on a collection without a text index (IndexNotFound, 27),
// and passes every other reply unchanged.
func asNoTextIndex(msg []byte) []byte {
	const opMsg = 2013
	const start = 16 + 4 + 1 // header, flagBits, the body's section kind
	if len(msg) < start+5 || binary.LittleEndian.Uint32(msg[12:16]) != opMsg ||
		binary.LittleEndian.Uint32(msg[16:20])&1 != 0 || msg[20] != 0 ||
		start+int(binary.LittleEndian.Uint32(msg[start:])) != len(msg) {
		return msg
	}
	errmsg, _ := bson.Raw(msg[start:]).Lookup("errmsg").StringValueOK()
	if !strings.Contains(errmsg, "$text") {
		return msg
	}
	body, err := bson.Marshal(bson.D{{Key: "ok", Value: 0.0}, {Key: "errmsg", Value: "text index required for $text query"},
		{Key: "code", Value: int32(27)}, {Key: "codeName", Value: "IndexNotFound"}})
	if err != nil {
		return msg
	}
	out := append(append([]byte{}, msg[:start]...), body...)
	binary.LittleEndian.PutUint32(out[:4], uint32(len(out)))
	return out
}

// TestSearchWithoutTheTextIndexItFound: a store that found the text index
// at Open searches on when the index is gone (another instance replacing
// it, see ensureTextIndex): the server refuses the $text query with
// IndexNotFound, and the search runs again without it.
func TestSearchWithoutTheTextIndexItFound(t *testing.T) {
	t.Parallel()
	ctx, e := newEnvWith(t, mongo.Options{}, func(uri string) string {
		u, err := url.Parse(uri)
		if err != nil {
			t.Fatalf("FerretDB's URI %q: %v", uri, err)
		}
		u.Host = startRewriter(t, u.Host, asNoTextIndex).addr()
		return u.String()
	})
	s := e.store
	mongo.SetTextIndex(s, true)
	u := mustUser(ctx, t, s, "a@x")
	c := mustConversation(ctx, t, s, u.ID, "quokkas")
	mustMessage(ctx, t, s, c, persistence.RoleUser, "say the quokka is here")
	mustConversation(ctx, t, s, u.ID, "other")
	for _, term := range []string{"the quokka is", "y the quokka is h"} {
		page, err := s.ListConversations(ctx, u.ID, persistence.ListQuery{Search: term})
		if err != nil {
			t.Fatalf("search %q: %v", term, err)
		}
		if got := titles(page.Conversations); got != "[quokkas]" {
			t.Errorf("search %q: got %s, want [quokkas]", term, got)
		}
	}
}
