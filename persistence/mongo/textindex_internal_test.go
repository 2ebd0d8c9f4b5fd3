package mongo

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// textPrefix returns the keys of textIndexKeys before its first text key:
// those a $text query must give by equality.
func textPrefix(t *testing.T) []string {
	t.Helper()
	var prefix []string
	for _, k := range textIndexKeys {
		if k.Value == "text" {
			return prefix
		}
		prefix = append(prefix, k.Key)
	}
	t.Fatalf("text index keys %v hold no text key", textIndexKeys)
	return nil
}

// TestTextIndexHasOwnerPrefix: the text index starts with owner_id, so
// that a search reads its user's index entries only, and every filter a
// search builds with $text gives every key before the text keys by
// equality, as MongoDB requires of a compound text index (else the server
// refuses the query). Checked against the manual's rules, not a mongod.
func TestTextIndexHasOwnerPrefix(t *testing.T) {
	t.Parallel()
	if prefix := textPrefix(t); !slices.Equal(prefix, []string{"owner_id"}) {
		t.Fatalf("text index keys %v: want owner_id, by itself, before the text keys", textIndexKeys)
	}
	if textIndexKeys[0].Value != 1 {
		t.Errorf("owner_id key %v, want 1", textIndexKeys[0].Value)
	}
	owner := bson.NewObjectID()
	found := []bson.ObjectID{bson.NewObjectID()}
	terms := []string{
		"quokka",                     // one word: no $text
		"the quokka is",              // an interior word
		" quokka ",                   // spaces around
		"the quokka",                 // no interior word
		"a b c d e f g h i j quokka", // more words than maxSearchWords
		"数据 库存 储",                    // CJK words
		"well, quokka! yes",          // interior words with punctuation only
		"x  quokka  y",               // two spaces
	}
	withText := 0
	for _, term := range terms {
		for _, index := range []bool{false, true} {
			for name, f := range map[string]bson.D{
				"inChunks":     inChunksFilter(owner, term, index),
				"acrossChunks": acrossChunksFilter(owner, term, index, found),
			} {
				t.Run(fmt.Sprintf("%s/%q/index=%v", name, term, index), func(t *testing.T) {
					if !hasKey(f, "$text") {
						return
					}
					withText++
					if !index {
						t.Fatalf("filter %v has $text without the index", f)
					}
					if !slices.ContainsFunc(f, func(e bson.E) bool { return e.Key == "$text" }) {
						t.Fatalf("filter %v: $text not at its top level", f)
					}
					for _, key := range textPrefix(t) {
						i := slices.IndexFunc(f, func(e bson.E) bool { return e.Key == key })
						if i < 0 || f[i].Value != owner {
							t.Errorf("filter %v: want %s equal to %v beside $text", f, key, owner)
						}
					}
				})
			}
		}
	}
	if withText == 0 {
		t.Fatal("no search shape used the text index: the check above checked nothing")
	}
}

// hasKey reports whether key is a key anywhere in v (documents and arrays,
// nested).
func hasKey(v any, key string) bool {
	switch v := v.(type) {
	case bson.D:
		for _, e := range v {
			if e.Key == key || hasKey(e.Value, key) {
				return true
			}
		}
	case bson.A:
		for _, x := range v {
			if hasKey(x, key) {
				return true
			}
		}
	}
	return false
}

// TestStaleTextIndexes: Open drops the text index older releases created
// (content_text, on the chunks alone) so that the one with the owner_id
// prefix can be created (a collection has one text index at most), and
// leaves every other index alone. FerretDB refuses text indexes, so the
// decision is checked here rather than on a server.
func TestStaleTextIndexes(t *testing.T) {
	t.Parallel()
	keys := func(d bson.D) bson.Raw { return mustRaw(t, d) }
	legacy := mongo.IndexSpecification{Name: "content_text",
		KeysDocument: keys(bson.D{{Key: "_fts", Value: "text"}, {Key: "_ftsx", Value: 1}})}
	current := mongo.IndexSpecification{Name: "owner_content_text",
		KeysDocument: keys(bson.D{{Key: "owner_id", Value: 1}, {Key: "_fts", Value: "text"}, {Key: "_ftsx", Value: 1}})}
	misshapen := mongo.IndexSpecification{Name: "owner_content_text",
		KeysDocument: keys(bson.D{{Key: "_fts", Value: "text"}, {Key: "_ftsx", Value: 1}})}
	id := mongo.IndexSpecification{Name: "_id_", KeysDocument: keys(bson.D{{Key: "_id", Value: 1}})}
	status := mongo.IndexSpecification{Name: "status", KeysDocument: keys(bson.D{{Key: "status", Value: 1}})}
	tests := []struct {
		name  string
		specs []mongo.IndexSpecification
		want  []string
	}{
		{"none", nil, nil},
		{"no text index", []mongo.IndexSpecification{id, status}, nil},
		{"old", []mongo.IndexSpecification{id, legacy, status}, []string{"content_text"}},
		{"current", []mongo.IndexSpecification{id, current, status}, nil},
		{"current misshapen", []mongo.IndexSpecification{id, misshapen}, []string{"owner_content_text"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := staleTextIndexes(tt.specs); !slices.Equal(got, tt.want) {
				t.Errorf("staleTextIndexes = %v, want %v", got, tt.want)
			}
		})
	}
	if textIndexName == legacyTextIndexName {
		t.Errorf("the text index keeps its old name %q: Open would not tell the old shape from the new", textIndexName)
	}
}

// TestIndexNotFound: the server's answer to a $text query without a text
// index (code 27, IndexNotFound) sends a search again without $text; other
// errors do not.
func TestIndexNotFound(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want bool
	}{
		{mongo.CommandError{Code: 27, Name: "IndexNotFound", Message: "text index required for $text query"}, true},
		{fmt.Errorf("search: %w", mongo.CommandError{Code: 27, Name: "IndexNotFound"}), true},
		{mongo.CommandError{Code: 2, Name: "BadValue"}, false},
		{errors.New("text index required"), false},
		{nil, false},
	}
	for _, tt := range tests {
		if got := indexNotFound(tt.err); got != tt.want {
			t.Errorf("indexNotFound(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

// TestHasTextIndex: Open uses the text index at once only when it is
// there in its current shape and nothing stale is left beside it.
func TestHasTextIndex(t *testing.T) {
	t.Parallel()
	// As the server lists text indexes: their text keys as _fts and _ftsx.
	current := mongo.IndexSpecification{Name: textIndexName,
		KeysDocument: mustRaw(t, bson.D{{Key: "owner_id", Value: 1}, {Key: "_fts", Value: "text"}, {Key: "_ftsx", Value: 1}})}
	noOwner := mongo.IndexSpecification{Name: textIndexName, KeysDocument: mustRaw(t, bson.D{{Key: "_fts", Value: "text"}, {Key: "_ftsx", Value: 1}})}
	legacy := mongo.IndexSpecification{Name: legacyTextIndexName, KeysDocument: mustRaw(t, bson.D{{Key: "_fts", Value: "text"}, {Key: "_ftsx", Value: 1}})}
	other := mongo.IndexSpecification{Name: "owner_client_message_unique", KeysDocument: mustRaw(t, bson.D{{Key: "owner_id", Value: 1}})}
	for _, tc := range []struct {
		name  string
		specs []mongo.IndexSpecification
		want  bool
	}{
		{"none", []mongo.IndexSpecification{other}, false},
		{"current", []mongo.IndexSpecification{other, current}, true},
		{"current beside the legacy one", []mongo.IndexSpecification{legacy, current}, false},
		{"legacy only", []mongo.IndexSpecification{legacy}, false},
		{"current name without owner_id", []mongo.IndexSpecification{noOwner}, false},
	} {
		if got := hasTextIndex(tc.specs); got != tc.want {
			t.Errorf("%s: hasTextIndex %v, want %v", tc.name, got, tc.want)
		}
	}
}

// mustRaw is d marshalled.
func mustRaw(t *testing.T, d bson.D) bson.Raw {
	t.Helper()
	raw, err := bson.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestInteriorWord: the word a search narrows by with the text index is
// one every message holding the term holds as a token: whole, between
// spaces in the term, letters and digits only, and of at most
// maxPieceRunes characters (a longer word that a chunk boundary cut is in
// no chunk or split word whole, so the index would miss its message),
// without a letter that has a decomposed form or that NFC makes of
// another character (U+F91D), Hangul syllables aside (a Korean search of
// several words narrows by one).
func TestInteriorWord(t *testing.T) {
	t.Parallel()
	piece := strings.Repeat("語", maxPieceRunes)
	tests := []struct{ term, want string }{
		{"quokka", ""},
		{"the quokka", ""},
		{"the quokka is", "quokka"},
		{" quokka ", "quokka"},
		{"well, quokka! yes", ""},
		{"a " + piece + " b", piece},
		{"a " + piece + "語 b", ""},
		{"a " + piece + "語 quokka b", "quokka"},
		{"the café is", ""}, // é may be stored decomposed
		{"a café quokka b", "quokka"},
		{"나는 한국어 공부를 합니다", "한국어"},
		{"나는 한국어 공부를요 합니다", "공부를요"},
		{"tôi học tiếng việt nhé", ""}, // accented Latin: may be stored decomposed
		{"tôi học tieng việt nhé", "tieng"},
		{"the \u6b04 is", "\u6b04"},                      // stored as the compatibility ideograph U+F91D, rarely
		{"x \u4e0d y", "\u4e0d"},                         // 不: the ideograph U+F967 too
		{"\u6211 \u4e0d \u77e5\u9053", "\u4e0d"},         // 我 不 知道
		{"η Ελλάδα και η Ευρώπη", "και"},                 // not the one-letter η
		{"a \u03ba\u03b1\u03b9 b", "\u03ba\u03b1\u03b9"}, // ι: the prosgegrammeni U+1FBE too, rarely
		{"the \u03b1\u02b9 is", ""},                      // αʹ: U+02B9 may be typed as the Greek numeral sign U+0374
		{"at 300 kelvin now", "kelvin"},                  // the Kelvin sign is an upper-case k, as before
	}
	for _, tt := range tests {
		if got := interiorWord(tt.term); got != tt.want {
			t.Errorf("interiorWord(%q) = %q, want %q", tt.term, got, tt.want)
		}
	}
}
