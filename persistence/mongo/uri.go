package mongo

import (
	"errors"
	"net/url"
	"regexp"
	"strings"
)

// uriParts is what Open needs to know about a connection string before the
// driver parses it: where it points (for error messages and logs), the
// database in its path, and the secrets to keep out of error messages.
type uriParts struct {
	hosts    string   // as written, e.g. "db1:27017,db2:27017" or an SRV name
	database string   // "" when the path names none
	secrets  []string // the password and *password options, raw and decoded
}

// splitURI reads scheme://[user[:password]@]hosts[/database][?options]. It
// never fails: a malformed string gives what could be read, and the driver
// reports the error (which redact then cleans).
//
// The user info is cut off first, at its last '@' (see userInfoEnd), and
// the query only after it: a password may hold an unescaped '@', '/', '?'
// or '#' (the spec wants them escaped, but the driver accepts a '?' or '#'),
// and cutting at the first '?' first left such a password in hosts.
func splitURI(uri string) uriParts {
	var p uriParts
	rest := uri
	if i := strings.Index(rest, "://"); i >= 0 {
		rest = rest[i+3:]
	}
	if at := userInfoEnd(rest); at >= 0 {
		if _, pass, ok := strings.Cut(rest[:at], ":"); ok {
			p.addSecret(pass)
		}
		rest = rest[at+1:]
	}
	rest, query, _ := strings.Cut(rest, "?")
	p.hosts, p.database, _ = strings.Cut(rest, "/")
	if db, err := url.PathUnescape(p.database); err == nil {
		p.database = db
	}
	for _, kv := range strings.Split(query, "&") {
		k, v, _ := strings.Cut(kv, "=")
		if strings.Contains(strings.ToLower(k), "password") {
			p.addSecret(v)
		}
	}
	if p.hosts == "" {
		p.hosts = "(no host)"
	}
	return p
}

// userInfoEnd returns the index of the '@' that ends the user info of rest
// (a URI after its "scheme://"), or -1 when it has none: the last '@' that
// is not in the query. An '@' counts as the query's (appName=me@home) when
// the text before it reads as a host list, a path and an option
// (queryBefore); a password that reads so too ("h:1/b?c=d@") is taken for
// hosts and a query, which only a password written unescaped can do.
func userInfoEnd(rest string) int {
	at := strings.LastIndexByte(rest, '@')
	for at >= 0 && queryBefore.MatchString(rest[:at]) {
		at = strings.LastIndexByte(rest[:at], '@')
	}
	return at
}

// queryBefore matches text that ends inside a URI's query: after the start
// or an '@', hosts (names or [IPv6] addresses, each with an optional
// numeric port), a '/' with the database, a '?' and an option's '='.
var queryBefore = regexp.MustCompile(
	`(?:^|@)` + hostRE + `(?:,` + hostRE + `)*/[^/?@]*\?.*=.*$`)

// hostRE is one host of a connection string, with its optional port.
const hostRE = `(?:[A-Za-z0-9._%~-]+|\[[0-9A-Fa-f:.%]+\])(?::[0-9]+)?`

// addSecret remembers s and its unescaped form.
func (p *uriParts) addSecret(s string) {
	if s == "" {
		return
	}
	p.secrets = append(p.secrets, s)
	if u, err := url.QueryUnescape(s); err == nil && u != s && u != "" {
		p.secrets = append(p.secrets, u)
	}
	if u, err := url.PathUnescape(s); err == nil && u != s && u != "" {
		p.secrets = append(p.secrets, u)
	}
}

// redact returns err with every secret of the URI replaced by "*****" in its
// message. The result still unwraps to err, so errors.Is keeps working on
// context errors; only its Error text is cleaned.
func (p uriParts) redact(err error) error {
	if err == nil || len(p.secrets) == 0 {
		return err
	}
	msg := err.Error()
	for _, s := range p.secrets {
		msg = strings.ReplaceAll(msg, s, "*****")
	}
	return &redactedError{msg: msg, cause: err}
}

// redactedError is an error whose text had secrets removed.
type redactedError struct {
	msg   string
	cause error
}

func (e *redactedError) Error() string { return e.msg }

// Is reports context errors of the cause (timeouts, cancellation) without
// exposing the cause itself through Unwrap, whose text may hold a secret.
func (e *redactedError) Is(target error) bool {
	return errors.Is(e.cause, target)
}
