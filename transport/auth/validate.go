package auth

import (
	"net/mail"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"chatd/internal/emailform"
	"chatd/persistence"
	"chatd/transport/httperr"
)

// Field limits.
const (
	maxEmailBytes = 254 // RFC 5321 path limit
	maxNameChars  = 100
)

// normalizeEmail is the form an email is stored and looked up in
// (emailform.Normalize): trimmed, NFKC-normalised, in lower case and
// case-folded, so look-alike spellings of one address, and spellings
// strings.EqualFold takes for one, are one account.
func normalizeEmail(s string) string { return emailform.Normalize(s) }

// emailForms are the forms an email is looked up in at sign-in:
// normalizeEmail's, then the forms accounts were stored in before (NFKC
// and lower case without case folding; lower case alone, before NFKC),
// each once.
func emailForms(s string) []string {
	forms := []string{normalizeEmail(s)}
	for _, f := range []string{norm.NFKC.String(strings.ToLower(norm.NFKC.String(strings.TrimSpace(s)))), strings.ToLower(strings.TrimSpace(s))} {
		if !slices.Contains(forms, f) {
			forms = append(forms, f)
		}
	}
	return forms
}

// validEmail reports whether s (normalised) is a bare address: no display
// name, no angle brackets, no comments, a dot in the domain, and letters of
// one script in the local part and in each label of the domain.
func validEmail(s string) bool {
	if s == "" || len(s) > maxEmailBytes {
		return false
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		return false
	}
	at := strings.LastIndexByte(s, '@')
	domain := s[at+1:]
	if !strings.Contains(domain, ".") || mixedScript(s[:at]) {
		return false
	}
	for _, label := range strings.Split(domain, ".") {
		if mixedScript(label) {
			return false
		}
	}
	return true
}

// textProblem names what makes s unacceptable as an email or a name, or
// returns "": invalid UTF-8 (which JSON decoding turns into U+FFFD),
// control characters, line and paragraph separators, and bidirectional
// formatting characters (overrides, embeddings, isolates and marks, which
// can make a name display as something else).
func textProblem(s string) string {
	if !utf8.ValidString(s) || strings.ContainsRune(s, utf8.RuneError) {
		return "must be valid UTF-8 text"
	}
	bad := func(r rune) bool {
		return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) ||
			unicode.In(r, unicode.Zl, unicode.Zp)
	}
	if strings.IndexFunc(s, bad) >= 0 {
		return "must not contain control or bidirectional formatting characters"
	}
	return ""
}

// invisible reports whether s holds a character that shows as nothing:
// Unicode's default-ignorable code points, that is format characters (the
// zero-width space and joiners, the soft hyphen, the byte order mark, the
// word joiner), variation selectors and the Hangul fillers. NFKC keeps
// them, so "ada\u200b@example.com" would be a second account that reads
// exactly like ada@example.com. The zero-width non-joiner and joiner are
// allowed between two letters of a script whose writing uses them (Persian
// words, Indic conjuncts: IDNA's CONTEXTJ rule, simplified), where they
// change how the word is drawn and belong to its spelling.
func invisible(s string) bool {
	rs := []rune(s)
	for i, r := range rs {
		if !unicode.In(r, unicode.Cf, unicode.Variation_Selector, unicode.Other_Default_Ignorable_Code_Point) {
			continue
		}
		joiner := r == '\u200c' || r == '\u200d'
		if joiner && i > 0 && i+1 < len(rs) && unicode.In(rs[i-1], joiningScripts...) && unicode.In(rs[i+1], joiningScripts...) {
			continue
		}
		return true
	}
	return false
}

// joiningScripts are the scripts whose words take a zero-width non-joiner
// or joiner between letters (see invisible).
var joiningScripts = []*unicode.RangeTable{unicode.Arabic, unicode.Syriac, unicode.Nko, unicode.Mongolian,
	unicode.Devanagari, unicode.Bengali, unicode.Gurmukhi, unicode.Gujarati, unicode.Oriya, unicode.Tamil,
	unicode.Telugu, unicode.Kannada, unicode.Malayalam, unicode.Sinhala}

// cjk are the scripts written together in Chinese, Japanese and Korean
// text; they count as one script for mixedScript.
var cjk = []*unicode.RangeTable{unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul, unicode.Bopomofo}

// mixedScript reports whether the letters of s belong to more than one
// script (Chinese, Japanese and Korean scripts counting as one). Digits,
// punctuation and other characters common to every script are ignored. A
// Cyrillic "а" among Latin letters is mixed: it would make a look-alike of
// another address.
func mixedScript(s string) bool {
	seen := ""
	for _, r := range s {
		if !unicode.IsLetter(r) {
			continue
		}
		script := scriptOf(r)
		if seen == "" {
			seen = script
		} else if script != seen {
			return true
		}
	}
	return false
}

// scriptOf names the script of letter r.
func scriptOf(r rune) string {
	if r < utf8.RuneSelf || unicode.Is(unicode.Latin, r) {
		return "Latin"
	}
	if unicode.In(r, cjk...) {
		return "CJK"
	}
	for name, table := range unicode.Scripts {
		if name != "Common" && name != "Inherited" && unicode.Is(table, r) {
			return name
		}
	}
	return "Unknown"
}

// passwordProblem applies the byte rules of a password (registration and
// login alike): bcrypt reads at most 72 bytes, so longer passwords are
// refused rather than cut, and a NUL is refused because a password padded
// with NULs up to 72 bytes would hash like the unpadded one.
func passwordProblem(pw string) string {
	switch {
	case len(pw) > MaxPasswordBytes:
		return "must be at most 72 bytes"
	case strings.IndexByte(pw, 0) >= 0:
		return "must not contain NUL characters"
	}
	return ""
}

// newPasswordProblem is what is wrong with a password chosen at
// registration or at a password change, or "".
func newPasswordProblem(pw string) string {
	if utf8.RuneCountInString(pw) < MinPasswordChars {
		return "must be at least 8 characters"
	}
	return passwordProblem(pw)
}

// newUser validates a registration and returns the user to store (without
// its password hash).
func newUser(req registerRequest) (persistence.User, error) {
	if p := textProblem(req.Email); p != "" {
		return persistence.User{}, httperr.InvalidField("email", p)
	}
	if p := textProblem(req.Name); p != "" {
		return persistence.User{}, httperr.InvalidField("name", p)
	}
	email := normalizeEmail(req.Email)
	name := norm.NFC.String(strings.TrimSpace(req.Name))
	switch {
	case invisible(email):
		return persistence.User{}, httperr.InvalidField("email", "must not contain invisible characters")
	case !validEmail(email):
		return persistence.User{}, httperr.InvalidField("email", "must be an email address like name@example.com, its letters in one script")
	case newPasswordProblem(normalizePassword(req.Password)) != "":
		return persistence.User{}, httperr.InvalidField("password", newPasswordProblem(normalizePassword(req.Password)))
	case name == "":
		return persistence.User{}, httperr.InvalidField("name", "is required")
	case utf8.RuneCountInString(name) > maxNameChars:
		return persistence.User{}, httperr.InvalidField("name", "must be at most 100 characters")
	}
	return persistence.User{Email: email, Name: name}, nil
}
