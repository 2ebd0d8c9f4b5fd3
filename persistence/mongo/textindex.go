package mongo

import (
	"context"
	"errors"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"golang.org/x/text/unicode/norm"
)

// textIndexName is the text index on message chunks, created when the
// server supports text indexes. legacyTextIndexName is the one releases
// before it created, on the chunks alone: see textIndexKeys.
const (
	textIndexName       = "owner_content_text"
	legacyTextIndexName = "content_text"
)

// textIndexKeys are the text index's keys: owner_id first, as an equality
// prefix, then the chunks and split words. With keys before its text keys,
// MongoDB keeps the index's entries per value of those keys and a $text
// query must give each of them by equality ("Limit the Number of Entries
// Scanned" in the MongoDB manual), so a search reads the entries of its
// user's messages holding the word only. The index before this one
// (legacyTextIndexName) had no prefix: a search read the entries of every
// user's messages holding the word and dropped the other users' after
// fetching each. This follows MongoDB's documented rules; it has not been
// run against a real mongod (the tests run on FerretDB, which has no text
// indexes, and none could be installed where this was written).
var textIndexKeys = bson.D{
	{Key: "owner_id", Value: 1},
	{Key: "content", Value: "text"},
	{Key: "split_words", Value: "text"},
}

// ensureTextIndex creates the text index on the messages' chunks and split
// words (language "none": no stemming or stop words) and reports whether
// searches may use it. MongoDB has text indexes; FerretDB v1 (the test
// server) has none: there, and on any server that refuses the index,
// searches go without it, matching every chunk of the user's messages.
//
// A collection has at most one text index, so the one older releases
// created (legacyTextIndexName, see staleTextIndexes) is dropped first.
// A cut between the drop and the creation leaves no text index: searches
// then go without one (this process's, as the creation failed; another
// instance's, through textIndexMissing) until the next Open creates it.
// Older instances still running keep working on the new index: their
// $text queries give owner_id by equality too.
func (s *Store) ensureTextIndex(ctx context.Context) bool {
	specs, err := s.messages.Indexes().ListSpecifications(ctx)
	if err != nil {
		s.log.Info("mongodb: could not list the indexes of messages; searches read every message of the user", "err", err)
		return false
	}
	for _, name := range staleTextIndexes(specs) {
		if err := s.messages.Indexes().DropOne(ctx, name); err != nil && !indexNotFound(err) {
			s.log.Info("mongodb: could not drop the old text index on messages; searches read every message of the user",
				"index", name, "err", err)
			return false
		}
		s.log.Info("mongodb: dropped the old text index on messages, to replace it", "index", name, "new", textIndexName)
	}
	_, err = s.messages.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys: textIndexKeys,
		Options: options.Index().SetName(textIndexName).SetDefaultLanguage("none").
			SetLanguageOverride("chatd_language"), // no field of ours may pick a language
	})
	if err != nil {
		s.log.Info("mongodb: no text index on messages (the server refused it); searches read every message of the user",
			"err", err)
		return false
	}
	return true
}

// textIndexNow settles the text index at Open and reports whether it is
// left for cleanUp to build (later). In its current shape it is used at
// once. Missing, or in an older release's shape, it is built here only
// where that is quick: on FerretDB (which refuses it at once) or on a
// messages collection that holds nothing. Elsewhere the build reads every
// message, which can outlast the connect timeout Open fits in, so it runs
// in the background (buildTextIndex) and searches go without it until it
// is built.
func (s *Store) textIndexNow(ctx context.Context) (later bool) {
	specs, err := s.messages.Indexes().ListSpecifications(ctx)
	if err != nil {
		s.log.Info("mongodb: could not list the indexes of messages; searches read every message of the user", "err", err)
		return false
	}
	if hasTextIndex(specs) {
		s.textIndex.Store(true)
		return false
	}
	if !s.ferretDB {
		if n, err := s.messages.EstimatedDocumentCount(ctx); err != nil || n > 0 {
			s.log.Info("mongodb: the text index on messages is built in the background; until it is, searches read every message of the user",
				"index", textIndexName)
			return true
		}
	}
	s.textIndex.Store(s.ensureTextIndex(ctx))
	return false
}

// buildTextIndex is ensureTextIndex run by cleanUp: searches use the
// index from the moment it is built.
func (s *Store) buildTextIndex(ctx context.Context) {
	start := time.Now()
	if s.ensureTextIndex(ctx) {
		s.textIndex.Store(true)
		s.log.Info("mongodb: built the text index on messages; searches use it", "index", textIndexName,
			"took", time.Since(start).Round(time.Millisecond).String())
	}
}

// hasTextIndex reports whether specs (the messages' indexes) hold the
// text index in its current shape and no stale one.
func hasTextIndex(specs []mongo.IndexSpecification) bool {
	if len(staleTextIndexes(specs)) > 0 {
		return false
	}
	for _, sp := range specs {
		if sp.Name == textIndexName {
			return true
		}
	}
	return false
}

// staleTextIndexes returns the names of the text indexes of specs (the
// messages' indexes) that must go before the text index is created: the
// one older releases created (legacyTextIndexName, whatever its keys), and
// one with the current name whose keys do not start with owner_id. Other
// indexes are left alone.
func staleTextIndexes(specs []mongo.IndexSpecification) []string {
	var stale []string
	for _, sp := range specs {
		switch sp.Name {
		case legacyTextIndexName:
			stale = append(stale, sp.Name)
		case textIndexName:
			if first, err := sp.KeysDocument.IndexErr(0); err != nil || first.Key() != "owner_id" {
				stale = append(stale, sp.Name)
			}
		}
	}
	return stale
}

// indexNotFound reports whether err is the server's IndexNotFound (27):
// the answer to dropping an index that is not there (another instance
// dropped it first) and to a $text query on a collection without a text
// index ("text index required for $text query").
func indexNotFound(err error) bool {
	var se mongo.ServerError
	return errors.As(err, &se) && se.HasErrorCode(27)
}

// textFilter is the start of the filter of a search of owner's messages
// for term: owner_id by equality, then, when index says the text index
// may be used and term has a word that every match must hold, the $text
// clause that narrows the search to the messages holding it. Every $text
// clause the store sends comes from here, so it always goes with the
// owner_id equality the text index's prefix requires (textIndexKeys).
//
// The index finds whole words, but a search finds any substring: only a
// word with a space before and after it inside term is whole in every
// text containing term ("the quokka is" holds "quokka"; "quokka" alone
// may be part of "quokkas"). The regex check that follows keeps the search
// exact; the index only makes it read fewer messages.
func textFilter(owner bson.ObjectID, term string, index bool) bson.D {
	filter := bson.D{{Key: "owner_id", Value: owner}}
	word := ""
	if index {
		word = interiorWord(term)
	}
	if word == "" {
		return filter
	}
	return append(filter, bson.E{Key: "$text", Value: bson.D{{Key: "$search", Value: `"` + word + `"`},
		{Key: "$caseSensitive", Value: false}, {Key: "$diacriticSensitive", Value: false}}})
}

// interiorWord returns the longest word of term that has whitespace on
// both sides within term, consists of letters and digits only and has at
// most maxPieceRunes characters (so the text index holds it as one token
// of every message holding it: a longer word that a chunk boundary cut is
// whole in no chunk or split word), or "". A word with a letter that has
// a decomposed form (é: e and a combining accent) is not taken: a message
// may hold it decomposed, and whether the index's tokens and its phrase
// match take the two forms as one has not been checked (no MongoDB in the
// tests); the search then reads the user's messages, as without a word.
// Hangul syllables are the exception (oneFormWord): every one has a
// decomposed form (its jamo), but Korean is typed and sent in syllables,
// and taking no Korean word would make every Korean search of several
// words read all the user's messages. A message holding the word in jamo
// (or a syllable and a final consonant's jamo) is then not found by such
// a search. A word with a character NFC replaces a typed one by (U+02B9,
// for the Greek numeral sign: hasTypedOtherSpelling) is not taken either;
// one with a character that only a compatibility character stands for
// is (不 and 年, which CJK compatibility ideographs stand for, and ι, for
// the Greek prosgegrammeni U+1FBE: rareSpelling), as some 900 common
// Chinese characters and every Greek ι are: a message holding the word
// with the compatibility character is then not found by such a search.
func interiorWord(term string) string {
	fields := strings.FieldsFunc(term, unicode.IsSpace)
	best := ""
	for i, f := range fields {
		if i == 0 && !startsWithSpace(term) || i == len(fields)-1 && !endsWithSpace(term) {
			continue // may be part of a longer word in the text
		}
		n := utf8.RuneCountInString(f)
		if isWord(f) && oneFormWord(f) && n <= maxPieceRunes && n > utf8.RuneCountInString(best) {
			best = f
		}
	}
	return best
}

// oneFormWord reports whether every character of word is one the text
// index may be asked for: one without a decomposed form or a typed
// character standing for it, or a Hangul syllable (see interiorWord).
func oneFormWord(word string) bool {
	for _, r := range word {
		if !isHangulSyllable(r) && (!norm.NFD.IsNormalString(string(r)) || hasTypedOtherSpelling(r)) {
			return false
		}
	}
	return true
}

// isHangulSyllable reports whether r is a precomposed Hangul syllable
// (가 to 힣).
func isHangulSyllable(r rune) bool {
	return 0xAC00 <= r && r <= 0xD7A3
}

func endsWithSpace(s string) bool {
	r, _ := utf8.DecodeLastRuneInString(s)
	return unicode.IsSpace(r)
}

// isWord reports whether s is letters and digits only.
func isWord(s string) bool {
	for _, r := range s {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			return false
		}
	}
	return s != ""
}
