package main

import (
	"net/url"
	"strings"
)

// uriParts splits "scheme://user:pass@h1,h2/path?query" by hand, because
// MongoDB URIs may list several hosts, which net/url refuses.
type uriParts struct {
	scheme, user, password, hosts, tail string
	hasPassword                         bool
}

func splitURI(uri string) (uriParts, bool) {
	var p uriParts
	scheme, rest, ok := strings.Cut(uri, "://")
	if !ok {
		return p, false
	}
	p.scheme = scheme
	end := strings.IndexAny(rest, "/?")
	if end < 0 {
		end = len(rest)
	}
	authority := rest[:end]
	p.tail = rest[end:]
	p.hosts = authority
	if at := strings.LastIndexByte(authority, '@'); at >= 0 {
		p.hosts = authority[at+1:]
		p.user, p.password, p.hasPassword = strings.Cut(authority[:at], ":")
	}
	return p, true
}

// redactURI hides the password of a URI ("user:pass@host" becomes
// "user:xxxxx@host"); anything else is kept.
func redactURI(uri string) string {
	p, ok := splitURI(uri)
	if !ok || !p.hasPassword {
		return uri
	}
	return p.scheme + "://" + p.user + ":xxxxx@" + p.hosts + p.tail
}

// uriHosts returns the host list of a URI ("h1:27017,h2").
func uriHosts(uri string) string {
	p, _ := splitURI(uri)
	return p.hosts
}

// scrubPassword removes a URI's password (as written and percent-decoded)
// from text, for error messages that might echo it.
func scrubPassword(text, uri string) string {
	p, ok := splitURI(uri)
	if !ok || p.password == "" {
		return text
	}
	text = strings.ReplaceAll(text, p.password, "xxxxx")
	if dec, err := url.PathUnescape(p.password); err == nil && dec != "" {
		text = strings.ReplaceAll(text, dec, "xxxxx")
	}
	return text
}
