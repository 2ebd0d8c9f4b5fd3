package main

import (
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
)

// ownPrefixes are the prefixes of chatd's variables: a variable set with
// one of them that chatd does not read is most likely a misspelt setting.
var ownPrefixes = []string{"CHATD_", "OPENAI_", "MONGODB_", "JWT_"}

// kitVariables are variables with chatd's prefix that chatd does not read
// but that reach its environment on purpose: the pm2 kit's paths
// (deploy/ecosystem.config.js, deploy/pm2-setup.sh, exported in the shell
// that starts pm2) and the deployment tests' settings (deploy/e2e, passed
// on to the chatd they start).
var kitVariables = []string{
	"CHATD_BIN", "CHATD_ENV_FILE", "CHATD_LOG_DIR", "CHATD_WORKDIR",
	"CHATD_E2E_ARTIFACTS", "CHATD_E2E_FRONTEND",
}

// recordReads returns a getenv over getenv that adds every name asked for
// to read: the names chatd reads are those loadConfig asks for (an
// upstreams file's apiKeyEnv names included), not a list kept beside it.
func recordReads(getenv func(string) string, read map[string]bool) func(string) string {
	return func(name string) string {
		read[name] = true
		return getenv(name)
	}
}

// unknownVariable is a variable set with one of chatd's prefixes that
// chatd does not read, and the name it may have meant ("" if none is
// close).
type unknownVariable struct {
	name, closest string
}

// unknownVariables finds, in environ (KEY=VALUE entries), the variables
// with a value and one of ownPrefixes that are neither read (the names
// loadConfig asked for) nor kitVariables, sorted by name.
func unknownVariables(environ []string, read map[string]bool) []unknownVariable {
	known := make([]string, 0, len(read))
	for name := range read {
		known = append(known, name)
	}
	slices.Sort(known)
	var out []unknownVariable
	for _, kv := range environ {
		name, value, _ := strings.Cut(kv, "=")
		if read[name] || slices.Contains(kitVariables, name) || strings.TrimSpace(value) == "" ||
			!slices.ContainsFunc(ownPrefixes, func(p string) bool { return strings.HasPrefix(name, p) }) {
			continue
		}
		out = append(out, unknownVariable{name: name, closest: closestName(name, known)})
	}
	slices.SortFunc(out, func(a, b unknownVariable) int { return strings.Compare(a.name, b.name) })
	return slices.CompactFunc(out, func(a, b unknownVariable) bool { return a.name == b.name })
}

// closestName is the name of known nearest to name, when it is close
// enough to be a misspelling of it: at most 2 edits away (a fifth of the
// name for a long one: CHATD_TRUSTED_PROXY), one of the two the other and
// more words (CHATD_MAX_ANSWER, CHATD_MAX_ANSWER_BYTES), or the same words
// but one, left out or added after the prefix (OPENAI_KEY,
// OPENAI_API_KEY). "" otherwise: a word of its own (MONGODB_FOO) is no
// misspelling of another.
func closestName(name string, known []string) string {
	best, bestDist := "", -1
	for _, k := range known {
		d := editDistance(name, k)
		near := d <= max(2, len(name)/5) || strings.HasPrefix(k, name+"_") || strings.HasPrefix(name, k+"_") ||
			oneWordMore(name, k) || oneWordMore(k, name)
		if near && (bestDist < 0 || d < bestDist) {
			best, bestDist = k, d
		}
	}
	return best
}

// oneWordMore reports whether long is short with one more word (words
// are split at '_') anywhere after their first, which they share.
func oneWordMore(long, short string) bool {
	l, s := strings.Split(long, "_"), strings.Split(short, "_")
	if len(l) != len(s)+1 || l[0] != s[0] {
		return false
	}
	for i := 1; i < len(l); i++ {
		if slices.Equal(s, slices.Concat(l[:i], l[i+1:])) {
			return true
		}
	}
	return false
}

// editDistance is the Levenshtein distance between a and b (bytes: the
// names are ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// warnUnknownVariables says, for each unknown variable, that chatd
// ignores it and which name it may have meant: a misspelt setting
// (CHATD_REGISTRATIONS=closed) would otherwise leave its default in force
// unnoticed. A warning, not a refusal: another program's variable may
// share a prefix.
func warnUnknownVariables(w io.Writer, terminal bool, unknown []unknownVariable, logger *slog.Logger) {
	for _, u := range unknown {
		msg := u.name + " is set, but chatd reads no such variable: it is ignored"
		attrs := []any{slog.String("variable", u.name)}
		if u.closest != "" {
			msg += fmt.Sprintf(" (did you mean %s?)", u.closest)
			attrs = append(attrs, slog.String("closest", u.closest))
		}
		startWarning(w, terminal, logger, msg, attrs...)
	}
}

// startWarning says msg, a warning about the settings, at start: a
// person at a terminal reads it as a plain line, as the banner; programs
// (systemd, pm2, a file) get a JSON log line with attrs.
func startWarning(w io.Writer, terminal bool, logger *slog.Logger, msg string, attrs ...any) {
	if terminal {
		fmt.Fprintf(w, "warning: %s\n", msg)
		return
	}
	logger.Warn(msg, attrs...)
}
