package llm_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"chatd/llm"
	"chatd/llm/demo"
	"chatd/llm/fakeai"
)

func TestTitleFromModel(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{})
	up := client(srv.URL)
	tests := []struct{ prompt, want string }{
		{"Plan a trip [[fake tokens=4]]", "Hello héllo world wörld"},
		{"Plan a trip [[fake tokens=3 mode=markdown]]", "Streaming answer"},
		// The fake ignores the title length asked for: the title is cut.
		{"Plan a trip [[fake tokens=40]]", "Hello héllo world wörld 中文 字符 emoji 🙂 naïve café €uro data…"},
		// A model thinking inline: the title follows </think>.
		{"Plan a trip [[fake tokens=4 reasoning=100 reasoning_key=think]]", "Hello héllo world wörld"},
	}
	for _, tc := range tests {
		got := llm.Title(testCtx(t), up, "fake-mini", tc.prompt, "an answer")
		if got != tc.want {
			t.Errorf("Title(%q) = %q, want %q", tc.prompt, got, tc.want)
		}
	}
	last, _ := srv.LastRequest()
	if last.Model != "fake-mini" || last.MaxTokens != llm.DefaultTitleTokens || last.ReasoningEffort != "" || last.Messages[0].Role != "system" ||
		!strings.Contains(last.Messages[0].Content, "3 to 6 words") || !strings.Contains(last.Messages[1].Content, "an answer") {
		t.Fatalf("title request %+v", last)
	}
}

// TestTitleFromReasoningModel: a model that reasons before it answers,
// its reasoning counted against the title's token budget (as the fake
// counts it), still names the conversation: the budget leaves room for
// the reasoning, and OpenAI's reasoning models are asked for low effort.
// A model that refuses the effort is asked again without it.
func TestTitleFromReasoningModel(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{})
	up := client(srv.URL)
	tests := []struct {
		name, model, marker string
		wantEffort          []string // the efforts of the requests, in order
	}{
		{"o-series", "o4-mini", "reasoning=300", []string{"low"}},
		{"gpt-5", "gpt-5-mini", "reasoning=300 reasoning_key=reasoning", []string{"low"}},
		{"unknown by name", "deepseek-reasoner", "reasoning=300", []string{""}},
		{"thinking inline", "qwq", "reasoning=300 reasoning_key=think", []string{""}},
		{"effort refused", "o1-mini", "fault=400 times=1", []string{"low", ""}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			prompt := "Plan a trip " + tc.name + " [[fake tokens=4 " + tc.marker + "]]"
			if got := llm.Title(testCtx(t), up, tc.model, prompt, "an answer"); got != "Hello héllo world wörld" {
				t.Fatalf("title %q", got)
			}
			var efforts []string
			for _, rec := range srv.Recorded() {
				if rec.Model == tc.model {
					efforts = append(efforts, rec.ReasoningEffort)
				}
			}
			if !slices.Equal(efforts, tc.wantEffort) {
				t.Fatalf("requests with efforts %q, want %q", efforts, tc.wantEffort)
			}
		})
	}
}

// TestTitleStopsReading: a model that goes on past its title line is not
// read (nor paid) to the end of its budget: once the title is known, the
// stream is closed. The fake sends 60 tokens, then holds the stream open.
func TestTitleStopsReading(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{})
	titler := &llm.Titler{Streamer: client(srv.URL), Timeout: 5 * time.Second}
	tests := []struct{ name, marker, want string }{
		{"one long line", "tokens=200", "Hello héllo world wörld 中文 字符 emoji 🙂 naïve café €uro data…"},
		{"title, then more lines", "tokens=200 mode=markdown", "Streaming answer"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := titler.Title(testCtx(t), "fake-mini", "Plan a trip [[fake fault=hang_mid after=60 "+tc.marker+"]]", "")
			if got != tc.want {
				t.Fatalf("title %q, want %q", got, tc.want)
			}
			if err := srv.WaitAborts(testCtx(t), int64(i+1)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestTitleFallback(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{})
	up := client(srv.URL)
	router := llm.NewRouter(llm.RouterOptions{Routes: []llm.Route{{Info: demo.Info(), Streamer: demo.New(demo.Options{Delay: -1})}}})
	tests := []struct {
		name   string
		titler *llm.Titler
		prompt string
		want   string
	}{
		{"upstream error", &llm.Titler{Streamer: up}, "Explain quantum computing to a ten year old [[fake fault=500]]", "Explain quantum computing to a ten…"},
		{"bad request", &llm.Titler{Streamer: up}, "Why is the sky blue [[fake fault=400]]", "Why is the sky blue [[fake…"},
		{"timeout", &llm.Titler{Streamer: up, Timeout: 200 * time.Millisecond}, "Sort a slice [[fake fault=hang_first]]", "Sort a slice [[fake fault=hang_first]]"},
		{"empty answer", &llm.Titler{Streamer: up}, "Hi [[fake tokens=1 mode=markdown]]", "Hi [[fake tokens=1 mode=markdown]]"},
		// Thinking inline, cut by the title's token limit before </think>.
		{"only thinking", &llm.Titler{Streamer: thinkingCut{}}, "How do I bake sourdough bread?", "How do I bake sourdough bread?"},
		{"demo model", &llm.Titler{Streamer: router}, "How do I\nsort a slice in Go?", "How do I sort a slice…"},
		{"no streamer", &llm.Titler{}, "", "New chat"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			model := "fake-mini"
			if tc.name == "demo model" {
				model = demo.ModelID
			}
			if got := tc.titler.Title(testCtx(t), model, tc.prompt, "answer"); got != tc.want {
				t.Fatalf("title %q, want %q", got, tc.want)
			}
			if time.Since(start) > 10*time.Second {
				t.Fatalf("took %v", time.Since(start))
			}
		})
	}
}

func TestTitleCancelledContext(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if got := llm.Title(ctx, client(srv.URL), "m", "Hello there", ""); got != "Hello there" {
		t.Fatalf("title %q", got)
	}
}

func TestCleanTitle(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{`Title: "Trip to Paris".`, "Trip to Paris"},
		{"**Go Slices Explained**", "Go Slices Explained"},
		{"\n\n  Hello   world!\nsecond line", "Hello world"},
		{"「東京旅行の計画」。", "東京旅行の計画"},
		{"# Heading", "Heading"},
		{"'Why?'", "Why"},
		{strings.Repeat("abcdefghi ", 8), strings.TrimSpace(strings.Repeat("abcdefghi ", 6)) + "…"},
		{"  ", ""},
		{`""`, ""},
		// Inline thinking (DeepSeek-R1, QwQ without a reasoning parser).
		{"<think>\nThe user asks about bread.\n</think>\n\nBaking Sourdough Bread", "Baking Sourdough Bread"},
		{"\n<think>Okay</think>Title: Bread", "Bread"},
		{"<think>\nOkay, the user is asking about", ""},
		{"<think>", ""},
		{"<think></think>", ""},
		{"About <think> tags", "About <think> tags"},
		// A label on a line of its own: the title is on the next one.
		{"Title:\nGo Slices Explained", "Go Slices Explained"},
		{"**Title:**\n\n**Go Slices Explained**\nmore", "Go Slices Explained"},
		{"<think>hm</think>\n## Title:\n\"Bread\"", "Bread"},
		{"Title:\n", ""},
		// Control and bidirectional formatting characters, invalid UTF-8.
		{"\x1b[1mBold\x1b[0m Move", "[1mBold[0m Move"},
		{"Nul\x00Byte\tTab", "NulByte Tab"},
		{"\u202eevil\u202c title", "evil title"},
		{"Isolate \u2066x\u2069 \u200fmark", "Isolate x mark"},
		{"Bad \xff\xfe bytes", "Bad bytes"},
		{"Family 👨\u200d👩\u200d👧 trip", "Family 👨\u200d👩\u200d👧 trip"},
		// The other format characters a title may not hold (llm.TitleProblem:
		// the API refuses them in a title a user gives), and those it may.
		{"Zero\u200bwidth \ufeffBOM soft\u00adhyphen", "Zerowidth BOM softhyphen"},
		{"Line\u2028separated\u2029title", "Line separated title"},
		{"Stray \U000E0041tag", "Stray tag"},
		{"Flag \U0001F3F4\U000E0067\U000E0062\U000E0065\U000E006E\U000E0067\U000E007F match", "Flag \U0001F3F4\U000E0067\U000E0062\U000E0065\U000E006E\U000E0067\U000E007F match"},
		{"Persian \u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645", "Persian \u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"},
		{"Year \u0600\u0661\u0669", "Year \u0600\u0661\u0669"},
	}
	for _, tc := range tests {
		got := llm.CleanTitle(tc.in)
		if r, bad := llm.TitleProblem(got); bad {
			t.Errorf("CleanTitle(%q) = %q holds %U, which the API refuses in a title", tc.in, got, r)
		}
		if got != tc.want {
			t.Errorf("CleanTitle(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if utf8.RuneCountInString(got) > 60 {
			t.Errorf("CleanTitle(%q) is %d characters", tc.in, utf8.RuneCountInString(got))
		}
	}
}

func TestFallbackTitle(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"", "New chat"},
		{"  \n ", "New chat"},
		{"  hi  ", "hi"},
		{"line one\nline two", "line one line two"},
		{"one two three four five six seven eight", "one two three four five six…"},
		{strings.Repeat("x", 100), strings.Repeat("x", 49) + "…"},
		{"# Heading question?", "Heading question?"},
		{"\u202eright to left\x07", "right to left"},
		{"\xffhi", "hi"},
		{"Supercalifragilistic expialidocious antidisestablishmentarianism words", "Supercalifragilistic expialidocious…"},
		{"你好，世界", "你好，世界"},
		{"zero\u200bwidth \u2066isolate\u2069 word\u2060joiner", "zerowidth isolate wordjoiner"},
	}
	for _, tc := range tests {
		got := llm.FallbackTitle(tc.in)
		if r, bad := llm.TitleProblem(got); bad {
			t.Errorf("FallbackTitle(%q) = %q holds %U, which the API refuses in a title", tc.in, got, r)
		}
		if got != tc.want {
			t.Errorf("FallbackTitle(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if utf8.RuneCountInString(got) > 50 || strings.Contains(got, "\n") {
			t.Errorf("FallbackTitle(%q) = %q: too long or not one line", tc.in, got)
		}
	}
}

// labelFirst is a model that puts its title's label on a line of its own
// ("**Title:**"), then the title, then goes on until the request ends.
type labelFirst struct{}

func (labelFirst) Stream(ctx context.Context, _ llm.Request, onDelta func(string)) (llm.Result, error) {
	for _, s := range []string{"**Title", ":**", "\n", "\n", "Go Slices", " Explained", "\n", "Hope this helps"} {
		onDelta(s)
	}
	<-ctx.Done()
	return llm.Result{}, ctx.Err()
}

// TestTitleAfterALabelLine: a reply whose first line is only a "Title:"
// label is read on to the title on the next line, where reading stopped
// at the label's line break and the conversation fell back to the
// prompt's first words; the reply is read no further than the title's
// line.
func TestTitleAfterALabelLine(t *testing.T) {
	t.Parallel()
	titler := &llm.Titler{Streamer: labelFirst{}, Timeout: time.Minute}
	if got := titler.Title(testCtx(t), "m", "how do slices grow", ""); got != "Go Slices Explained" {
		t.Fatalf("title %q", got)
	}
}

// thinkingCut is a model that thinks inline (DeepSeek-R1, QwQ served
// without a reasoning parser) and reaches the title's token limit before
// it stops thinking.
type thinkingCut struct{}

func (thinkingCut) Stream(_ context.Context, _ llm.Request, onDelta func(string)) (llm.Result, error) {
	for _, s := range []string{"<think>", "\n", "Okay", ", the", " user", " is", " asking", " about"} {
		onDelta(s)
	}
	return llm.Result{FinishReason: "length"}, nil
}

// TestTitleAsksAgainOnlyWhenEffortSent: a title request refused as a bad
// request is asked again without reasoning_effort only when the effort
// was sent (a reasoning model), directly or through the Router; a model
// never sent the field is asked once, and its title falls back.
func TestTitleAsksAgainOnlyWhenEffortSent(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{})
	up := client(srv.URL)
	router := llm.NewRouter(llm.RouterOptions{Logger: quiet, Upstreams: []llm.Upstream{{Name: "fake", Streamer: up,
		Models: []llm.ModelInfo{{ID: "gpt-4o"}, {ID: "o1-mini"}}}}})
	t.Cleanup(router.Close)
	tests := []struct {
		name, tag  string // the tag tells the cases' requests apart
		streamer   llm.Streamer
		model      string // as the upstream knows it
		id         string // as the title is asked for it
		want       string
		wantEffort []string
	}{
		{"effort not sent", "A", up, "gpt-4o", "gpt-4o", "Name this [[fake tokens=4 fault=400 times=1…", []string{""}},
		{"effort not sent, routed", "B", router, "gpt-4o", "fake/gpt-4o", "Name this [[fake tokens=4 fault=400 times=1…", []string{""}},
		{"effort sent", "C", up, "o1-mini", "o1-mini", "C Hello héllo world wörld", []string{"low", ""}},
		{"effort sent, routed", "D", router, "o1-mini", "fake/o1-mini", "D Hello héllo world wörld", []string{"low", ""}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			prompt := "Name this [[fake tokens=4 fault=400 times=1 tag=" + tc.tag + "]]"
			if got := (&llm.Titler{Streamer: tc.streamer, Logger: quiet}).Title(testCtx(t), tc.id, prompt, "an answer"); got != tc.want {
				t.Fatalf("title %q, want %q", got, tc.want)
			}
			var efforts []string
			for _, rec := range srv.Recorded() {
				if rec.Model == tc.model && rec.Config.Tag == tc.tag {
					efforts = append(efforts, rec.ReasoningEffort)
				}
			}
			if !slices.Equal(efforts, tc.wantEffort) {
				t.Fatalf("requests with efforts %q, want %q", efforts, tc.wantEffort)
			}
		})
	}
}

// endlessThinking is a model that thinks inline for ever, or until its
// context ends: it reports how many pieces it sent.
type endlessThinking struct{ sent *int }

func (m endlessThinking) Stream(ctx context.Context, _ llm.Request, onDelta func(string)) (llm.Result, error) {
	piece := "<think>" + strings.Repeat("hmm ", 256)
	for *m.sent = 0; *m.sent < 1000; *m.sent++ {
		if ctx.Err() != nil {
			return llm.Result{}, ctx.Err()
		}
		onDelta(piece)
		piece = strings.Repeat("hmm ", 256)
	}
	return llm.Result{FinishReason: "length"}, nil
}

// TestTitleStopsAtReplyBound: a title reply that grows past the bytes a
// title request keeps (inline thinking that never ends) is no longer
// read: the request is stopped there, rather than streamed (and paid
// for) to its end while every piece is dropped, and the title falls back.
func TestTitleStopsAtReplyBound(t *testing.T) {
	t.Parallel()
	sent := 0
	got := (&llm.Titler{Streamer: endlessThinking{&sent}}).Title(testCtx(t), "r1", "Bake sourdough bread", "")
	if got != "Bake sourdough bread" || sent > 20 {
		t.Fatalf("title %q after %d pieces of 1 KiB; want the fallback, the request stopped at 16 KiB", got, sent)
	}
}

// TestTitleWithinTheModelsBounds: the title request asks for no more
// tokens than the model's output bound, nor than its context window
// leaves after the title's prompt, so an upstream enforcing them (OpenAI's
// "max_tokens is too large", vLLM counting max_tokens into the window)
// takes it and the title is the model's, not the prompt's first words;
// a model of which nothing is known is asked for DefaultTitleTokens.
func TestTitleWithinTheModelsBounds(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{})
	titler := &llm.Titler{Streamer: client(srv.URL)}
	tests := []struct {
		name   string
		model  llm.ModelInfo
		marker string
		titled bool // the model's title, not the fallback
		most   int  // the request's max tokens at most
	}{
		{"output bound", llm.ModelInfo{ID: "fake-large", MaxOutputTokens: 500}, "max_output=500", true, 500},
		{"output bound unknown", llm.ModelInfo{ID: "fake-large"}, "max_output=500", false, llm.DefaultTitleTokens},
		{"window", llm.ModelInfo{ID: "fake-large", ContextTokens: 1000}, "context=1000 context_words=vllm", true, 1000},
		{"window unknown", llm.ModelInfo{ID: "fake-large"}, "context=1000 context_words=vllm", false, llm.DefaultTitleTokens},
		{"a window the prompt fills", llm.ModelInfo{ID: "fake-large", ContextTokens: 50}, "", true, llm.DefaultTitleTokens},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			prompt := "Plan a trip (" + tc.name + ") [[fake tokens=4 " + tc.marker + "]]"
			got := titler.TitleFor(testCtx(t), tc.model, prompt, "an answer")
			if titled := got == "Hello héllo world wörld"; titled != tc.titled {
				t.Fatalf("title %q; want the model's: %v", got, tc.titled)
			}
			for _, rec := range srv.Recorded() {
				if strings.Contains(rec.Messages[len(rec.Messages)-1].Content, "("+tc.name+")") &&
					(rec.MaxTokens > tc.most || rec.MaxTokens <= 0) {
					t.Fatalf("asked for %d tokens, want 1 to %d", rec.MaxTokens, tc.most)
				}
			}
		})
	}
}
