package storetest

import (
	"strings"
	"testing"
	"unicode/utf8"

	"chatd/persistence"
)

// maxQueryRunes is the longest query the API accepts (api.MaxQueryChars):
// every substring of a message's text up to this long must be found.
const maxQueryRunes = 200

// testSearchAcrossLongCut streams answers as the batching writer stores
// them when a run without whitespace (a line of CJK text, a long URL) is
// longer than its hold-back limit (256 bytes): the checkpoint writes the
// run whole, so the next piece continues the same run, and a phrase of the
// text may lie across the cut with many characters on both sides. Every
// such phrase up to the API's longest query is found, with words or
// without, while the answer streams and once it is complete; a phrase not
// in the text is not, though its first and last characters are.
func testSearchAcrossLongCut(t *testing.T, s persistence.Store) {
	u := mkUser(t, s, "cutter")
	cs := newCutStreams(t, s, u.ID)
	stream := cs.stream
	head := strings.Repeat("東", 80) + "京都大学の研究者たちは新しい" // 94 characters, 282 bytes
	tail := "発見を発表しました。詳しくは" + strings.Repeat("西", 92) + " 次の報告で説明します。"
	stream("cut", head, tail)
	// The same characters around a cut, not in this order.
	stream("decoy", "東東東京都大学の研究者たちは新しい 東京都大学の研究者たちは新しい", "発見を発表しなかった")
	// A run cut twice, in upper case (full-width letters, 3 bytes each): a
	// query in lower case crosses the middle piece whole.
	stream("twice", "see "+strings.Repeat("Ａ", 90), strings.Repeat("Ｂ", 90), strings.Repeat("Ｃ", 90)+" end")

	longest := head + tail[:strings.Index(tail, " ")]
	if n := utf8.RuneCountInString(longest); n != maxQueryRunes {
		t.Fatalf("the longest query has %d characters, want %d", n, maxQueryRunes)
	}
	cases := []searchCase{
		{"東東東京都大学の研究者たちは新しい発見", []string{"cut"}},                                                 // 17 characters before the cut
		{strings.Repeat("東", 40) + "京都大学の研究者たちは新しい発見を発表しました。", []string{"cut"}},                  // 54 before, 10 after
		{"東東東京都大学の研究者たちは新しい発見を発表しました。詳しくは" + strings.Repeat("西", 92) + " 次の報告", []string{"cut"}}, // words
		{"東京都大学の研究者たちは新しい 東京都大学の研究者たちは新しい発見", []string{"decoy"}},
		{longest, []string{"cut"}},
		{strings.Repeat("ａ", 20) + strings.Repeat("ｂ", 90) + strings.Repeat("ｃ", 20), []string{"twice"}},
		{"東京都大学の研究者たちは新しい発見を発表しなかった", []string{"decoy"}},
		{"東東東京都大学の研究者たちは新しい発見を発表しなかった", nil},
		{longest[:len(longest)-len("西")] + "東", nil},
	}
	cs.search(cases)
}

// testSearchWhiteSpaceAcrossCut: a query made only of white space is
// found where it lies across a checkpoint's cut (spaces ending one piece
// and starting the next, a tab then a newline), streaming and complete,
// and not where its characters are only apart.
func testSearchWhiteSpaceAcrossCut(t *testing.T, s persistence.Store) {
	u := mkUser(t, s, "spacer")
	cs := newCutStreams(t, s, u.ID)
	stream := cs.stream
	stream("spaces", "one two  ", "  three")
	stream("tabs", "line one\t", "\nline two")
	stream("apart", "a\tb  c", "\nd  e")
	cases := []searchCase{
		{"    ", []string{"spaces"}},
		{"   ", []string{"spaces"}},
		{"     ", nil},
		{"\t\n", []string{"tabs"}},
		{"\n\t", nil},
		{"  ", []string{"spaces", "apart"}},
	}
	cs.search(cases)
}

// cutStreams are answers of one user, each streamed in pieces (one
// checkpoint each: a cut between every two), titled for the search cases.
type cutStreams struct {
	t       *testing.T
	s       persistence.Store
	userID  string
	convs   map[string]persistence.Conversation
	answers []string
}

func newCutStreams(t *testing.T, s persistence.Store, userID string) *cutStreams {
	return &cutStreams{t: t, s: s, userID: userID, convs: map[string]persistence.Conversation{}}
}

// stream stores, in a new conversation titled title, a question and an
// answer streaming pieces, one checkpoint each.
func (cs *cutStreams) stream(title string, pieces ...string) {
	c := mkConv(cs.t, cs.s, cs.userID, title)
	a := mkStreaming(cs.t, cs.s, c, mkMsg(cs.t, cs.s, c, "", persistence.RoleUser, "tell me").ID, "")
	for _, p := range pieces {
		apply(cs.t, cs.s, persistence.MessageUpdate{ID: a.ID, Append: p})
	}
	cs.convs[title] = c
	cs.answers = append(cs.answers, a.ID)
}

// search runs cases while the answers stream, then once they are complete.
func (cs *cutStreams) search(cases []searchCase) {
	runSearchCases(cs.t, cs.s, cs.userID, cs.convs, cases)
	for _, id := range cs.answers {
		apply(cs.t, cs.s, persistence.MessageUpdate{ID: id, Status: persistence.StatusComplete})
	}
	runSearchCases(cs.t, cs.s, cs.userID, cs.convs, cases)
}
