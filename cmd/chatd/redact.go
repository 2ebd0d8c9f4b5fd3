package main

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

// redactURI hides whatever in a URI could be a user, password or token:
// everything between "scheme://" (or the start) and the last '@' becomes
// "xxxxx" ("mongodb://u:pw@h/db" becomes "mongodb://xxxxx@h/db"). A query
// holding an '@' is hidden too, which is the safe side. A value without
// '@' is returned as it is.
func redactURI(uri string) string {
	start, at := credentialsSpan(uri)
	if at < 0 {
		return uri
	}
	return uri[:start] + "xxxxx" + uri[at:]
}

// uriHosts returns the host list of a URI ("h1:27017,h2"): what follows
// the last '@' (or "://") up to a '/' or '?'.
func uriHosts(uri string) string {
	rest := uri[afterScheme(uri):]
	if at := strings.LastIndexByte(uri, '@'); at >= 0 {
		rest = uri[at+1:]
	}
	if end := strings.IndexAny(rest, "/?"); end >= 0 {
		rest = rest[:end]
	}
	return rest
}

// scrubPassword removes from text (an error that might echo the URI) the
// URI itself, its credentials and its password, as written and
// percent-decoded.
func scrubPassword(text, uri string) string {
	start, at := credentialsSpan(uri)
	if at < 0 {
		return text
	}
	text = strings.ReplaceAll(text, uri, redactURI(uri))
	creds := uri[start:at]
	secrets := []string{creds}
	if _, pw, ok := strings.Cut(creds, ":"); ok {
		secrets = append(secrets, pw)
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
