package load

import (
	"fmt"
	"time"

	"chatd/llm/fakeai"
)

// Targets.
const (
	TargetChatd    = "chatd"    // chatd's WebSocket live channel
	TargetRelay    = "relay"    // the minimal relay (bench/relay)
	TargetUpstream = "upstream" // the fake OpenAI server's SSE, read directly
)

// User is a registered chatd account.
type User struct {
	ID    string `json:"id"`
	Token string `json:"token"`
}

// Spec describes one load run.
type Spec struct {
	// Target is TargetChatd, TargetRelay or TargetUpstream.
	Target string
	// URL is chatd's base URL (http://host:port), the relay's WebSocket URL
	// (ws://host:port/ws) or the fake upstream's API root (http://host:port/v1).
	URL string
	// FollowURL, when set, is where a chatd stream's tabs after the first
	// connect: another instance of a cluster, so what they receive crossed
	// the bus between instances. Empty: URL.
	FollowURL string
	// Users are chatd accounts; stream i uses Users[i % len(Users)].
	Users []User
	// Model is the model asked for; it defaults to "fake-mini".
	Model string
	// Streams is how many streams run concurrently.
	Streams int
	// Answers is how many answers each stream asks for, one after the
	// other; it defaults to 1.
	Answers int
	// Tokens and Delay shape every answer: Tokens tokens, Delay apart.
	Tokens int
	Delay  time.Duration
	// Spread staggers the streams' starts evenly over this duration
	// (0: all start at once).
	Spread time.Duration
	// Tabs is the number of WebSocket connections of a chatd stream's user
	// that follow its generation; the first sends, the others subscribe.
	// It defaults to 1 (chatd only).
	Tabs int
	// StallTab makes the last tab of every chatd stream stop reading once
	// it is subscribed, with a 4 KiB socket receive buffer, so the server's
	// writes to it back up. Its frames count in no statistic.
	StallTab bool
	// Timeout bounds the whole run; it defaults to the streams' expected
	// duration times three plus a minute.
	Timeout time.Duration
	// OnStart, when set, is called once every connection is open, just
	// before the first prompt; OnEnd once every stream has ended, before
	// the connections close. A caller measuring the server's CPU samples it
	// there, leaving out the setup.
	OnStart, OnEnd func()
}

func (s *Spec) setDefaults() {
	if s.Model == "" {
		s.Model = "fake-mini"
	}
	if s.Answers <= 0 {
		s.Answers = 1
	}
	if s.Tabs <= 0 || s.Target != TargetChatd {
		s.Tabs = 1
	}
	if s.Timeout <= 0 {
		s.Timeout = s.Spread + 3*time.Duration(s.Answers)*s.answerDuration() + time.Minute
	}
}

// answerDuration is how long the fake upstream takes to stream one answer.
func (s *Spec) answerDuration() time.Duration {
	return time.Duration(max(s.Tokens-1, 0)) * s.Delay
}

// prompt is the prompt of answer a of stream i: a marker tells the fake
// upstream how to answer and to stamp every token.
func (s *Spec) prompt(i, a int) string {
	return fmt.Sprintf("bench stream %d answer %d [[fake tokens=%d delay=%s stamp=all]]", i, a, s.Tokens, s.Delay)
}

// expectedText is what every answer must read once its stamps are removed.
func (s *Spec) expectedText() string {
	return fakeai.ExpectedText(fakeai.Config{Tokens: s.Tokens})
}

// Result is what a run measured.
type Result struct {
	Target  string `json:"target"`
	Streams int    `json:"streams"`
	Tabs    int    `json:"tabs"`
	// Answers is how many answers ended complete, with the expected text,
	// on the sending tab; Expected is how many were asked for.
	Answers  int `json:"answers"`
	Expected int `json:"expected"`
	// Tokens, Frames and Bytes count what the reading tabs received
	// (stamped tokens, delta frames or SSE chunks, payload bytes);
	// ExpectedTokens is how many tokens they were to receive: every
	// answer's, once per reading tab.
	Tokens         int64 `json:"tokens"`
	ExpectedTokens int64 `json:"expectedTokens"`
	Frames         int64 `json:"frames"`
	Bytes          int64 `json:"bytes"`
	// TTFT is the time from writing a prompt to its first token; Lateness
	// is, per token, its arrival minus the fake upstream's stamp.
	TTFT     Summary `json:"ttftMs"`
	Lateness Summary `json:"latenessMs"`
	// FollowerLateness is Lateness of the follower tabs alone (chatd with
	// more than one tab).
	FollowerLateness Summary `json:"followerLatenessMs"`
	// SenderLateness is Lateness of the sending tabs alone (chatd with
	// more than one tab): beside FollowerLateness, what a tab on another
	// instance gets later than one on the answer's own, in the same run.
	SenderLateness Summary `json:"senderLatenessMs"`
	// LatenessByTime is Lateness by when the fake upstream stamped the
	// token, from the run's first prompt: the answers' start, their
	// steady state and their end apart.
	LatenessByTime []Window `json:"latenessByTimeMs,omitempty"`
	// Wall is the time from the first prompt to the last answer's end, in seconds.
	Wall float64 `json:"wallSeconds"`
	// Mismatched counts follower tabs whose delta sequence differed from
	// the sending tab's (for tabs on another instance: whose text was not
	// whole and exact).
	Mismatched int `json:"mismatched"`
	// MergedByBus counts follower tabs on another instance that got the
	// exact text in a different delta sequence: deltas merged while they
	// waited for the bus (not an error, see hub/publishmerge.go).
	MergedByBus int `json:"mergedByBus"`
	// StalledTabs counts tabs that stopped reading. Once they read again,
	// StalledClosed of them found their connection closed by the server
	// (StalledCodes counts the close codes, -1 for none) and
	// StalledCaughtUp were still open and received the whole answer late.
	StalledTabs     int         `json:"stalledTabs"`
	StalledClosed   int         `json:"stalledClosed"`
	StalledCodes    map[int]int `json:"stalledCodes,omitempty"`
	StalledCaughtUp int         `json:"stalledCaughtUp"`
	// Errors counts failures (refused sends, broken or wrong answers,
	// timeouts); FirstErrors keeps a few of them.
	Errors      int      `json:"errors"`
	FirstErrors []string `json:"firstErrors,omitempty"`
}

// OK reports whether every answer arrived whole, every reading tab
// received every token (stamped: a token without its stamp gives no
// lateness sample, and a run of such tokens a p99 of 0) and nothing failed.
func (r Result) OK() bool {
	return r.Errors == 0 && r.Answers == r.Expected && r.Mismatched == 0 && r.Tokens >= r.ExpectedTokens
}

// readingTabs is how many tabs of a stream receive its tokens: every tab
// but the one that stops reading.
func (s *Spec) readingTabs() int {
	if s.StallTab && s.Tabs > 1 {
		return s.Tabs - 1
	}
	return s.Tabs
}
