package openai

import (
	"cmp"
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// secrets are the configured values upstream text must not show: the API
// key, and every header and query value (Options.Headers, Options.Query,
// the base URL's query and password), since an Azure key may be set as an
// api-key header or a query parameter, and a careless upstream repeats
// what it was sent. Longest first, so that a value holding another is
// redacted whole.
type secrets []string

// Values shorter than minSecret are not redacted (a "1" would blank every
// digit of a message); nor are words of a value shorter than
// minSecretWord (the "Bearer" of "Bearer <token>", whose token is).
const (
	minSecret     = 4
	minSecretWord = 8
)

// publicHeaders are headers whose values say who chatd is, not what
// grants it access: OpenRouter's app attribution (HTTP-Referer, X-Title)
// and the user agent. Their values are words an upstream's text may well
// hold (the app's name, its site), which redacting would blank.
var publicHeaders = []string{"HTTP-Referer", "Referer", "X-Title", "User-Agent"}

// newSecrets collects o's secrets. The api-version query parameter is
// left out: a date, which an upstream's refusal may name usefully; so are
// the publicHeaders.
func newSecrets(o Options) secrets {
	var s secrets
	if o.APIKey != "" {
		s = append(s, o.APIKey)
	}
	for k, v := range o.Headers {
		if !slices.ContainsFunc(publicHeaders, func(p string) bool { return strings.EqualFold(p, k) }) {
			s = s.add(v)
		}
	}
	for k, v := range o.Query {
		if !strings.EqualFold(k, "api-version") {
			s = s.add(v)
		}
	}
	if u, err := url.Parse(o.BaseURL); err == nil {
		for k, vs := range u.Query() {
			for _, v := range vs {
				if !strings.EqualFold(k, "api-version") {
					s = s.add(v)
				}
			}
		}
		if p, ok := u.User.Password(); ok {
			s = s.add(p)
		}
	}
	slices.SortFunc(s, func(a, b string) int { return cmp.Or(cmp.Compare(len(b), len(a)), strings.Compare(a, b)) })
	return slices.Compact(s)
}

// add adds value, as it is and URL-encoded, and each of its long words.
func (s secrets) add(value string) secrets {
	value = strings.TrimSpace(value)
	if len(value) >= minSecret {
		s = append(s, value)
		if q := url.QueryEscape(value); q != value {
			s = append(s, q)
		}
	}
	if words := strings.Fields(value); len(words) > 1 {
		for _, w := range words {
			if len(w) >= minSecretWord {
				s = append(s, w)
			}
		}
	}
	return s
}

// redact replaces every secret in text with "[redacted]", in one pass (a
// short secret is not looked for inside the replacement of a longer one).
// An API key shorter than minSecret (the "x" or "none" a keyless local
// server is given) is replaced only where it stands as a word of its own:
// replaced everywhere, it took every x out of an upstream's "max_tokens".
func (s secrets) redact(text string) string {
	if len(s) == 0 {
		return text
	}
	pairs := make([]string, 0, 2*len(s))
	var short []string
	for _, v := range s {
		if len(v) < minSecret {
			short = append(short, v)
			continue
		}
		pairs = append(pairs, v, "[redacted]")
	}
	if len(pairs) > 0 {
		text = strings.NewReplacer(pairs...).Replace(text)
	}
	for _, v := range short {
		text = redactWord(text, v)
	}
	return text
}

// redactWord replaces the occurrences of v in text that neither follow nor
// precede a letter or digit.
func redactWord(text, v string) string {
	var b strings.Builder
	before := utf8.RuneError // the rune before text's rest
	for {
		i := strings.Index(text, v)
		if i < 0 {
			b.WriteString(text)
			return b.String()
		}
		if i > 0 {
			before, _ = utf8.DecodeLastRuneInString(text[:i])
		}
		after, _ := utf8.DecodeRuneInString(text[i+len(v):])
		b.WriteString(text[:i])
		if wordRune(before) || wordRune(after) {
			b.WriteString(v)
		} else {
			b.WriteString("[redacted]")
		}
		before, _ = utf8.DecodeLastRuneInString(v)
		text = text[i+len(v):]
	}
}

// wordRune reports whether r is a letter or digit (utf8.RuneError, the
// rune before the start or after the end of a text, is not).
func wordRune(r rune) bool {
	return r != utf8.RuneError && (unicode.IsLetter(r) || unicode.IsDigit(r))
}
