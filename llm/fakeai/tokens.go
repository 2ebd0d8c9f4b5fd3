package fakeai

import (
	"regexp"
	"strconv"
	"strings"
	"unicode"
)

// textWords is the vocabulary of ModeText. It mixes ASCII with two-, three-
// and four-byte UTF-8 characters so clients are tested on all of them.
var textWords = []string{
	"Hello", "héllo", "world", "wörld", "中文", "字符", "emoji", "🙂",
	"naïve", "café", "€uro", "data", "stream", "日本語", "token", "ok",
}

// naturalTextTokens is the length of a ModeText stream with Tokens == 0.
const naturalTextTokens = 20

const markdownDoc = "# Streaming answer\n\n" +
	"Here is a **bold** claim, an *emphasis*, some `inline code` and a [link](https://example.com).\n\n" +
	"## Steps\n\n" +
	"1. Open the file.\n" +
	"2. Change the *value*.\n" +
	"3. Save — and rerun ✅.\n\n" +
	"- first item\n" +
	"- second item with `code`\n" +
	"  - nested item\n\n" +
	"```go\n" +
	"package main\n\n" +
	"import \"fmt\"\n\n" +
	"func main() {\n" +
	"\tfor i := 0; i < 3; i++ {\n" +
	"\t\tfmt.Println(\"héllo\", i) // a <b>comment</b>\n" +
	"\t}\n" +
	"}\n" +
	"```\n\n" +
	"| Name | Value |\n" +
	"|------|-------|\n" +
	"| a    | 1     |\n" +
	"| 中文 | 2     |\n\n" +
	"> A quoted line.\n\n" +
	"```python\n" +
	"def greet(name):\n" +
	"    return f\"Hello, {name}!\"\n" +
	"```\n\n" +
	"That is all.\n"

const xssDoc = "# Payload test\n\n" +
	"The renderer must show each payload below as text, never run it.\n\n" +
	"<script>alert(1)</script>\n\n" +
	"An image: <img src=x onerror=alert(1)>\n\n" +
	"A [harmless link](javascript:alert(1)) and <a href=\"javascript:alert(1)\">an anchor</a>.\n\n" +
	"Inline `<script>alert(1)</script>` is code.\n\n" +
	"```html\n" +
	"<script>alert(\"in a code block\")</script>\n" +
	"<img src=x onerror=alert(1)>\n" +
	"```\n\n" +
	"<iframe src=\"javascript:alert(1)\"></iframe> <svg onload=alert(1)>\n\n" +
	"End of payloads.\n"

var (
	markdownTokens = splitTokens(markdownDoc)
	xssTokens      = splitTokens(xssDoc)
)

// splitTokens cuts s into tokens: a run of non-space characters followed by
// the whitespace after it. Joining the tokens gives s back.
func splitTokens(s string) []string {
	var out []string
	start, inSpace := 0, false
	for i, r := range s {
		space := unicode.IsSpace(r)
		if !space && inSpace && i > 0 {
			out = append(out, s[start:i])
			start = i
		}
		inSpace = space
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

// Tokens returns the content tokens a response with config c sends (before
// max_tokens is applied), without "[ts:...]" stamps.
func Tokens(c Config) []string {
	doc := modeTokens(c.Mode)
	n := c.Tokens
	if n <= 0 {
		n = len(doc)
		if doc == nil {
			n = naturalTextTokens
		}
	}
	out := make([]string, n)
	for i := range out {
		out[i] = tokenAt(doc, i)
	}
	if c.Tag != "" && n > 0 {
		out[0] = c.Tag + " " + out[0]
	}
	return out
}

// modeTokens returns the document of a mode, or nil for ModeText.
func modeTokens(m Mode) []string {
	switch m {
	case ModeMarkdown:
		return markdownTokens
	case ModeXSS:
		return xssTokens
	}
	return nil
}

// tokenAt returns token i; documents repeat when more tokens are asked for.
func tokenAt(doc []string, i int) string {
	if doc == nil {
		return textWords[i%len(textWords)] + " "
	}
	t := doc[i%len(doc)]
	if i > 0 && i%len(doc) == 0 {
		t = "\n" + t
	}
	return t
}

// ExpectedText returns the exact text a complete response with config c
// streams (without stamps), so tests can compare byte for byte.
func ExpectedText(c Config) string {
	return strings.Join(Tokens(c), "")
}

// ExpectedPrefix returns the text of the first n tokens of config c.
func ExpectedPrefix(c Config, n int) string {
	t := Tokens(c)
	return strings.Join(t[:min(n, len(t))], "")
}

var stampRE = regexp.MustCompile(`\[ts:(\d+)\] `)

// StripStamps removes the "[ts:<ns>] " stamps from streamed text.
func StripStamps(s string) string {
	return stampRE.ReplaceAllString(s, "")
}

// ParseStamps returns the MonotonicNanos values of the stamps in s, in order.
func ParseStamps(s string) []int64 {
	var out []int64
	for _, m := range stampRE.FindAllStringSubmatch(s, -1) {
		if n, err := strconv.ParseInt(m[1], 10, 64); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// stamp returns the stamp prefix for the current instant.
func stampNow() string {
	return "[ts:" + strconv.FormatInt(MonotonicNanos(), 10) + "] "
}
