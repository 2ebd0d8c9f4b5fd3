package storetest

import (
	"fmt"
	"strings"
	"testing"

	"chatd/persistence"
)

func searchTests() []storeTest {
	return []storeTest{
		{"TitlesAndMessages", testSearchTitlesAndMessages},
		{"AppendedText", testSearchAppendedText},
		{"SpecialCharacters", testSearchSpecialCharacters},
		{"OwnerScoped", testSearchOwnerScoped},
		{"Pagination", testSearchPagination},
		{"UnicodeCase", testSearchUnicodeCase},
		{"NormalForms", testSearchNormalForms},
		{"CanonicalEquivalents", testSearchCanonicalEquivalents},
		{"ManyWords", testSearchManyWords},
		{"AcrossLongCut", testSearchAcrossLongCut},
		{"WhiteSpaceAcrossCut", testSearchWhiteSpaceAcrossCut},
	}
}

// searchCase is one query and the titles (keys of the fixture) it must find.
type searchCase struct {
	q    string
	want []string
}

// runSearchCases checks every case against the fixture titles->conversation.
func runSearchCases(t *testing.T, s persistence.Store, owner string, convs map[string]persistence.Conversation, cases []searchCase) {
	t.Helper()
	for _, tc := range cases {
		var want []string
		for _, title := range tc.want {
			c, ok := convs[title]
			if !ok {
				t.Fatalf("fixture has no conversation %q", title)
			}
			want = append(want, c.ID)
		}
		for _, limit := range []int{100, 1} {
			got := listAll(t, s, owner, tc.q, limit)
			sameIDSet(t, fmt.Sprintf("search %q (limit %d)", tc.q, limit), convIDs(got), want)
		}
	}
}

func testSearchTitlesAndMessages(t *testing.T, s persistence.Store) {
	u := mkUser(t, s, "searcher")
	convs := map[string]persistence.Conversation{}
	add := func(title string, msgs ...string) {
		c := mkConv(t, s, u.ID, title)
		parent := ""
		for _, text := range msgs {
			parent = mkMsg(t, s, c, parent, persistence.RoleUser, text).ID
		}
		convs[title] = c
	}
	add("Planning the Berlin Trip", "what should I pack?")
	add("Recipes", "How do I make a sourdough starter?", "Also: the QUOKKA is my favourite animal.")
	add("Untitled", "nothing to see", "really nothing")
	add("Русский разговор", "Привет, как дела?")
	add("Café notes", "Émile ordered a crème brûlée")
	add("Many matches", "quokka one", "quokka two", "quokka three")
	add("", "", "") // empty title and texts never match a non-empty query

	runSearchCases(t, s, u.ID, convs, []searchCase{
		{"berlin", []string{"Planning the Berlin Trip"}},
		{"BERLIN", []string{"Planning the Berlin Trip"}},
		{"ng the b", []string{"Planning the Berlin Trip"}},
		{"sourdough", []string{"Recipes"}},
		{"quokka", []string{"Recipes", "Many matches"}},
		{"Quokka Is", []string{"Recipes"}},
		{"okk", []string{"Recipes", "Many matches"}},
		{"pack?", []string{"Planning the Berlin Trip"}},
		{"привет", []string{"Русский разговор"}},
		{"РАЗГОВОР", []string{"Русский разговор"}},
		{"émile", []string{"Café notes"}},
		{"CAFÉ", []string{"Café notes"}},
		{"crème brûlée", []string{"Café notes"}},
		{"absent-word", nil},
		{"", []string{"Planning the Berlin Trip", "Recipes", "Untitled", "Русский разговор", "Café notes", "Many matches", ""}},
	})
}

func testSearchAppendedText(t *testing.T, s persistence.Store) {
	u := mkUser(t, s, "streamer")
	c := mkConv(t, s, u.ID, "plain title")
	q := mkMsg(t, s, c, "", persistence.RoleUser, "tell me something")
	a := mkStreaming(t, s, c, q.ID, "")
	for _, chunk := range []string{"The ", "pango", "lin is ", "scaly."} {
		apply(t, s, persistence.MessageUpdate{ID: a.ID, Append: chunk})
	}
	runSearchCases(t, s, u.ID, map[string]persistence.Conversation{"c": c}, []searchCase{
		{"PANGOLIN", []string{"c"}},
		{"lin is scaly", []string{"c"}},
		{"pangolins", nil},
	})
}

func testSearchSpecialCharacters(t *testing.T, s persistence.Store) {
	u := mkUser(t, s, "special")
	convs := map[string]persistence.Conversation{}
	add := func(title, msg string) {
		c := mkConv(t, s, u.ID, title)
		mkMsg(t, s, c, "", persistence.RoleUser, msg)
		convs[title] = c
	}
	add("percent", "I am 100% sure")
	add("underscore", "use snake_case names")
	add("regex", "the pattern a.*(b is odd")
	add("brackets", "array[0] and {braces} and ^anchors$")
	add("backslash", `a path C:\temp\new and a|b`)
	add("quotes", `it's "quoted" -- ok; DROP TABLE x;`)
	add("plain", "abc abxc a-b snakeXcase 1000 sure")
	add("control", "a tab\there and a nul \x00 inside")
	add("nul\x00title", "nothing special")

	runSearchCases(t, s, u.ID, convs, []searchCase{
		{"%", []string{"percent"}},
		{"100%", []string{"percent"}},
		{"0% s", []string{"percent"}},
		{"_", []string{"underscore"}},
		{"e_c", []string{"underscore"}},
		{".*(", []string{"regex"}},
		{"a.*(b", []string{"regex"}},
		{".", []string{"regex"}},
		{"a.c", nil},
		{"[0]", []string{"brackets"}},
		{"{braces}", []string{"brackets"}},
		{"^anchors$", []string{"brackets"}},
		{"$", []string{"brackets"}},
		{`\temp\`, []string{"backslash"}},
		{`\`, []string{"backslash"}},
		{"a|b", []string{"backslash"}},
		{`"quoted"`, []string{"quotes"}},
		{"it's", []string{"quotes"}},
		{"; DROP", []string{"quotes"}},
		{"*", []string{"regex"}},
		{"(", []string{"regex"}},
		{"?", nil},
		{"+", nil},
		// Control characters are text too; NUL can be in no BSON regex
		// (the MongoDB store failed on it).
		{"\x00", []string{"control", "nul\x00title"}},
		{"nul \x00 ins", []string{"control"}},
		{"l\x00t", []string{"nul\x00title"}},
		{"\t", []string{"control"}},
	})
}

func testSearchOwnerScoped(t *testing.T, s persistence.Store) {
	a, b := mkUser(t, s, "alice"), mkUser(t, s, "bob")
	ca := mkConv(t, s, a.ID, "alice about zebras")
	mkMsg(t, s, ca, "", persistence.RoleUser, "striped giraffe")
	cb := mkConv(t, s, b.ID, "bob about zebras")
	mkMsg(t, s, cb, "", persistence.RoleUser, "striped giraffe")
	cb2 := mkConv(t, s, b.ID, "bob unrelated")
	// A message of bob's in alice's conversation cannot exist, but a message
	// of alice's that mentions bob's word must not surface bob's conversation.
	mkMsg(t, s, cb2, "", persistence.RoleUser, "okapi")

	runSearchCases(t, s, a.ID, map[string]persistence.Conversation{"a": ca}, []searchCase{
		{"zebra", []string{"a"}},
		{"giraffe", []string{"a"}},
		{"okapi", nil},
		{"bob", nil},
	})
	runSearchCases(t, s, b.ID, map[string]persistence.Conversation{"b": cb, "b2": cb2}, []searchCase{
		{"zebra", []string{"b"}},
		{"okapi", []string{"b2"}},
		{"alice", nil},
	})
}

func testSearchPagination(t *testing.T, s persistence.Store) {
	u := mkUser(t, s, "pagesearch")
	var want []string
	for i := range 25 {
		switch {
		case i%3 == 0: // matches through a message
			c := mkConv(t, s, u.ID, fmt.Sprintf("conversation %d", i))
			mkMsg(t, s, c, "", persistence.RoleUser, fmt.Sprintf("the needle number %d", i))
			mkMsg(t, s, c, "", persistence.RoleAssistant, "filler text")
			want = append(want, c.ID)
		case i%5 == 0: // matches through the title and two messages
			c := mkConv(t, s, u.ID, fmt.Sprintf("Needle in title %d", i))
			mkMsg(t, s, c, "", persistence.RoleUser, "another needle")
			mkMsg(t, s, c, "", persistence.RoleAssistant, "needles everywhere")
			want = append(want, c.ID)
		default:
			c := mkConv(t, s, u.ID, fmt.Sprintf("conversation %d", i))
			mkMsg(t, s, c, "", persistence.RoleUser, "nothing relevant here")
		}
	}
	full := convIDs(listAll(t, s, u.ID, "NEEDLE", 100))
	sameIDSet(t, "search needle", full, want)
	for _, limit := range []int{1, 2, 4, 7, len(want), len(want) + 1} {
		sameIDs(t, fmt.Sprintf("paged search (limit %d)", limit), convIDs(listAll(t, s, u.ID, "needle", limit)), full)
	}
}

// testSearchUnicodeCase pins the case rule down where Unicode's case
// folding and lower-casing part ways: both sides are lower-cased rune by
// rune (Go's strings.ToLower), so the dotted capital İ is an i, the Kelvin
// sign a k, and Σ lowers to σ, never to the final ς (a fold would take
// σ, ς and Σ as one letter, and İ as none of i's).
func testSearchUnicodeCase(t *testing.T, s persistence.Store) {
	u := mkUser(t, s, "unicode")
	convs := map[string]persistence.Conversation{}
	add := func(title, msg string) {
		c := mkConv(t, s, u.ID, title)
		mkMsg(t, s, c, "", persistence.RoleUser, msg)
		convs[title] = c
	}
	add("İstanbul trip", "a road sign: ΟΔΟΣ ΙΣΤΙΚΛΑΛ")
	add("weather", "300 \u212a outside, say the kelvinists")
	add("final sigma", "ο δρόμος μας")
	// An answer streamed in pieces that cut a word: a term across the cut
	// is checked against the joined text, by the same rule.
	streamed := mkConv(t, s, u.ID, "streamed")
	a := mkStreaming(t, s, streamed, "", "")
	for _, chunk := range []string{"Welcome to İstan", "bul, ΟΔΟ", "Σ ΤΈΛΟΣ"} {
		apply(t, s, persistence.MessageUpdate{ID: a.ID, Append: chunk})
	}
	convs["streamed"] = streamed

	runSearchCases(t, s, u.ID, convs, []searchCase{
		{"istanbul", []string{"İstanbul trip", "streamed"}},
		{"İSTANBUL", []string{"İstanbul trip", "streamed"}},
		{"İstanbul", []string{"İstanbul trip", "streamed"}},
		{"οδοσ", []string{"İstanbul trip", "streamed"}},
		{"ΟΔΟΣ", []string{"İstanbul trip", "streamed"}},
		{"οδος", nil},   // ς is not σ
		{"δρόμοσ", nil}, // nor σ ς
		{"ΔΡΌΜΟΣ", nil}, // Σ lowers to σ
		{"δρόμος", []string{"final sigma"}},
		{"300 k", []string{"weather"}},
		{"300 K", []string{"weather"}},
		{"\u212aelvin", []string{"weather"}}, // the Kelvin sign lowers to k
		{"to istanbul, οδοσ", []string{"streamed"}},
		{"TO İSTANBUL, ΟΔΟΣ", []string{"streamed"}},
		{"to istanbul, οδος", nil},
	})
}

// testSearchNormalForms: a title or message stored decomposed (NFD: an
// accent as a character of its own after its letter, as macOS file names
// and some keyboards write it) is found by a query typed composed (NFC),
// and one stored composed by a decomposed query: both sides are compared
// in NFC. Also in an answer streamed in pieces cut between a letter and
// its accent, in capitals, and in mixed forms (a precomposed letter and a
// combining accent, accents out of canonical order).
func testSearchNormalForms(t *testing.T, s persistence.Store) {
	u := mkUser(t, s, "normal-forms")
	convs := map[string]persistence.Conversation{}
	add := func(key, title, msg string) {
		c := mkConv(t, s, u.ID, title)
		mkMsg(t, s, c, "", persistence.RoleUser, msg)
		convs[key] = c
	}
	add("nfd", "Cafe\u0301 de\u0301compose\u0301", "a cre\u0300me bru\u0302le\u0301e for Zoe\u0308")
	add("nfc", "Café composé", "a crème brûlée for Zoë")
	// Mixed forms: a precomposed vowel and a combining tone mark (the
	// Windows Vietnamese keyboard), and NFD with its marks out of
	// canonical order.
	add("mixed", "Vi\u00ea\u0323t notes", "to\u0302i ho\u0323c tie\u0302\u0301ng Vi\u00ea\u0323t")
	add("reordered", "Vie\u0302\u0323t", "ho\u0323c Vie\u0302\u0323t nhe\u0301")
	streamed := mkConv(t, s, u.ID, "streamed")
	a := mkStreaming(t, s, streamed, "", "")
	for _, chunk := range []string{"then A", "\u0300 bientôt, Ame", "\u0301lie, a", "u revoir"} {
		apply(t, s, persistence.MessageUpdate{ID: a.ID, Append: chunk})
	}
	convs["streamed"] = streamed

	runSearchCases(t, s, u.ID, convs, []searchCase{
		{"café", []string{"nfd", "nfc"}},
		{"cafe\u0301", []string{"nfd", "nfc"}},
		{"CAFÉ", []string{"nfd", "nfc"}},
		{"CAFE\u0301", []string{"nfd", "nfc"}},
		{"crème brûlée", []string{"nfd", "nfc"}},
		{"cre\u0300me bru\u0302le\u0301e", []string{"nfd", "nfc"}},
		{"zoë", []string{"nfd", "nfc"}},
		{"ZOE\u0308", []string{"nfd", "nfc"}},
		{"é", []string{"nfd", "nfc", "streamed", "reordered"}},
		{"à bientôt", []string{"streamed"}},
		{"amélie", []string{"streamed"}},
		{"AME\u0301LIE, AU", []string{"streamed"}},
		{"zoé", nil},
		{"việt", []string{"mixed", "reordered"}},
		{"VIỆT", []string{"mixed", "reordered"}},
		{"vie\u0323\u0302t", []string{"mixed", "reordered"}},
		{"học tiếng việt", []string{"mixed"}},
		{"học việt nhé", []string{"reordered"}},
		{"viêt", nil},
	})
}

// testSearchCanonicalEquivalents: a text holding a character that NFC
// replaces by another (a CJK compatibility ideograph, the Greek question
// mark for ';', the ano teleia for '·', an en quad for an en space, the
// oxia accent for the tonos, a Devanagari letter NFC keeps as its letter
// and nukta) or a Hangul syllable and a final consonant's jamo, which NFC
// composes, is found by a query of what NFC makes of it, in every store:
// both sides are compared in NFC.
func testSearchCanonicalEquivalents(t *testing.T, s persistence.Store) {
	u := mkUser(t, s, "equivalents")
	convs := map[string]persistence.Conversation{}
	for key, text := range map[string]string{
		"cjk":    "the \uf91d column",
		"qmark":  "\u03c4\u03b9\u037e",
		"teleia": "a\u0387b",
		"quad":   "x\u2000y",
		"oxia":   "\u1f71\u03bb\u03bb\u03b1",
		"hangul": "\uac00\u11a8 \ud55c",
		"nukta":  "\u0958 ok",
	} {
		c := mkConv(t, s, u.ID, key)
		mkMsg(t, s, c, "", persistence.RoleUser, text)
		convs[key] = c
	}
	convs["title"] = mkConv(t, s, u.ID, "notes \uf91d") // in a title too
	runSearchCases(t, s, u.ID, convs, []searchCase{
		{"\u6b04", []string{"cjk", "title"}},
		{"\uf91d column", []string{"cjk"}},
		{"\u03c4\u03b9;", []string{"qmark"}},
		{"a\u00b7b", []string{"teleia"}},
		{"x\u2002y", []string{"quad"}},
		{"\u03ac\u03bb\u03bb\u03b1", []string{"oxia"}},
		{"\u0386\u039b\u039b\u0391", []string{"oxia"}},
		{"\uac01 \ud55c", []string{"hangul"}},
		{"\uac01", []string{"hangul"}},
		{"\u0915\u093c ok", []string{"nukta"}},
	})
}

// testSearchManyWords searches with queries of many words, as long as the
// API allows (200 characters): found only where the words stand in that
// order, as for any other query.
func testSearchManyWords(t *testing.T, s persistence.Store) {
	u := mkUser(t, s, "wordy")
	words := strings.Fields("one two three four five six seven eight nine ten eleven twelve thirteen fourteen " +
		"fifteen sixteen seventeen eighteen nineteen twenty twentyone twentytwo twentythree twentyfour")
	text := strings.Join(words, " ")
	reversed := make([]string, len(words))
	for i, w := range words {
		reversed[len(words)-1-i] = w
	}
	convs := map[string]persistence.Conversation{}
	for title, msg := range map[string]string{"in order": text, "reversed": strings.Join(reversed, " "),
		"in order, upper case": strings.ToUpper(text)} {
		c := mkConv(t, s, u.ID, title)
		mkMsg(t, s, c, "", persistence.RoleUser, msg)
		convs[title] = c
	}
	runSearchCases(t, s, u.ID, convs, []searchCase{
		{text, []string{"in order", "in order, upper case"}},
		{strings.Join(words[1:20], " "), []string{"in order", "in order, upper case"}},
		{strings.Join(reversed[:20], " "), []string{"reversed"}},
		{strings.Join(words[:10], "  "), nil}, // two spaces between words
		{strings.TrimSpace(strings.Repeat("one ", 50)), nil},
		{strings.TrimSpace(strings.Repeat("a b ", 50)), nil},
		{text + " twentyfive", nil},
	})
}
