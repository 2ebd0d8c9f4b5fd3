// Package uriredact hides what in a URI could be a credential (a user, a
// password, a token in its query), for configuration errors, logs and
// banners that show a URI.
package uriredact

import (
	"net/url"
	"regexp"
	"strings"
)

// schemeRE is a URI scheme as RFC 3986 writes it; "u:pw" is not one.
var schemeRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*$`)

// credentialsSpan returns where the credentials of uri may start (after
// "scheme://", else at 0) and the index of its last '@' (-1 when there is
// none). The last '@', because a password may hold an unencoded '@', '/' or
// '?', and a value without "://" (a mistyped scheme) may still carry one.
func credentialsSpan(uri string) (start, at int) {
	at = strings.LastIndexByte(uri, '@')
	if start = afterScheme(uri); at >= 0 && start > at {
		start = 0
	}
	return start, at
}

// afterScheme is the index after "scheme://" in uri, 0 when there is none.
func afterScheme(uri string) int {
	if scheme, _, ok := strings.Cut(uri, "://"); ok && schemeRE.MatchString(scheme) {
		return len(scheme) + 3
	}
	return 0
}

// URI hides whatever in a URI could be a user, password or token:
// everything between "scheme://" (or the start) and the last '@' becomes
// "xxxxx" ("mongodb://u:pw@h/db" becomes "mongodb://xxxxx@h/db"), and so
// does the value of each query parameter that may hold a secret (see
// secretParam). A query holding an '@' is hidden too, which is the safe
// side.
func URI(uri string) string {
	start, at := credentialsSpan(uri)
	if at >= 0 {
		uri = uri[:start] + "xxxxx" + uri[at:]
	}
	for _, p := range querySecrets(uri) {
		uri = uri[:p.start] + "xxxxx" + uri[p.end:]
	}
	return uri
}

// span is where a secret lies in a URI: uri[start:end].
type span struct{ start, end int }

// querySecrets returns where the values of uri's secret query parameters
// lie, the last first (so each can be replaced without moving the
// others). The query is what follows the first '?' after the last '@'.
func querySecrets(uri string) []span {
	from := strings.LastIndexByte(uri, '@') + 1
	q := strings.IndexByte(uri[from:], '?')
	if q < 0 {
		return nil
	}
	pos := from + q + 1
	end := len(uri)
	if h := strings.IndexByte(uri[pos:], '#'); h >= 0 {
		end = pos + h
	}
	var out []span
	for _, pair := range strings.Split(uri[pos:end], "&") {
		name, value, ok := strings.Cut(pair, "=")
		if ok && value != "" && secretParam(name) {
			vstart := pos + len(name) + 1
			out = append([]span{{vstart, vstart + len(value)}}, out...)
		}
		pos += len(pair) + 1
	}
	return out
}

// secretParam reports whether a query parameter may hold a secret: its
// name speaks of a password, secret, token, key, signature or credential
// (MongoDB's tlsCertificateKeyFilePassword, an upstream's api-key), or it
// is MongoDB's authMechanismProperties (AWS_SESSION_TOKEN:...). A path
// hidden as well (tlsCertificateKeyFile) is the safe side.
func secretParam(name string) bool {
	if dec, err := url.QueryUnescape(name); err == nil {
		name = dec
	}
	name = strings.ToLower(name)
	for _, w := range []string{"password", "passwd", "secret", "token", "key", "sig", "credential", "authmechanismproperties"} {
		if strings.Contains(name, w) {
			return true
		}
	}
	return false
}

// Hosts returns the host list of a URI ("h1:27017,h2"): what follows
// the last '@' (or "://") up to a '/' or '?'.
func Hosts(uri string) string {
	rest := uri[afterScheme(uri):]
	if at := strings.LastIndexByte(uri, '@'); at >= 0 {
		rest = uri[at+1:]
	}
	if end := strings.IndexAny(rest, "/?"); end >= 0 {
		rest = rest[:end]
	}
	return rest
}

// Scrub removes from text (an error that might echo the URI) the
// URI itself, its credentials and its password, and the values of its
// secret query parameters, as written and percent-decoded.
func Scrub(text, uri string) string {
	start, at := credentialsSpan(uri)
	text = strings.ReplaceAll(text, uri, URI(uri))
	var secrets []string
	if at >= 0 {
		creds := uri[start:at]
		secrets = append(secrets, creds)
		if _, pw, ok := strings.Cut(creds, ":"); ok {
			secrets = append(secrets, pw)
		}
	}
	// A query value is looked for in text only from 4 characters: a short
	// one ("1", "yes") would garble the error and is no secret to hide.
	for _, p := range querySecrets(uri) {
		v := uri[p.start:p.end]
		if _, after, ok := strings.Cut(v, ":"); ok && len(after) >= 4 { // authMechanismProperties: NAME:value
			secrets = append(secrets, after)
		}
		if len(v) >= 4 {
			secrets = append(secrets, v)
		}
	}
	for _, s := range secrets {
		for _, form := range []string{s, unescape(url.PathUnescape, s), unescape(url.QueryUnescape, s)} {
			if form != "" {
				text = strings.ReplaceAll(text, form, "xxxxx")
			}
		}
	}
	return text
}

func unescape(f func(string) (string, error), s string) string {
	if dec, err := f(s); err == nil {
		return dec
	}
	return ""
}
