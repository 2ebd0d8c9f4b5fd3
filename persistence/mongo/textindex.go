package mongo

import (
	"context"
	"strings"
	"unicode"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// textIndexName is the text index on message chunks, created when the
// server supports text indexes.
const textIndexName = "content_text"

// ensureTextIndex creates the text index on the messages' chunks and split
// words (language "none": no stemming or stop words) and reports whether
// searches may use it. MongoDB has text indexes; FerretDB v1 (the test
// server) has none: there, and on any server that refuses the index,
// searches go without it, matching every chunk of the user's messages.
func (s *Store) ensureTextIndex(ctx context.Context) bool {
	_, err := s.messages.Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys: bson.D{{Key: "content", Value: "text"}, {Key: "split_words", Value: "text"}},
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

// textFilter is the $text clause that narrows a search for term to the
// messages holding one of its whole words, or nil when term has none that
// every match must hold. The index finds whole words, but a search finds
// any substring: only a word with a space before and after it inside term
// is whole in every text containing term ("the quokka is" holds "quokka";
// "quokka" alone may be part of "quokkas"). The regex check that follows
// keeps the search exact; the index only makes it read fewer messages.
func textFilter(term string) bson.D {
	word := interiorWord(term)
	if word == "" {
		return nil
	}
	return bson.D{{Key: "$text", Value: bson.D{{Key: "$search", Value: `"` + word + `"`},
		{Key: "$caseSensitive", Value: false}, {Key: "$diacriticSensitive", Value: false}}}}
}

// interiorWord returns the longest word of term that has whitespace on
// both sides within term and consists of letters and digits only (so the
// text index holds it as one token), or "".
func interiorWord(term string) string {
	fields := strings.FieldsFunc(term, unicode.IsSpace)
	best := ""
	for i, f := range fields {
		if i == 0 && !startsWithSpace(term) || i == len(fields)-1 && !endsWithSpace(term) {
			continue // may be part of a longer word in the text
		}
		if isWord(f) && utf8.RuneCountInString(f) > utf8.RuneCountInString(best) {
			best = f
		}
	}
	return best
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
