// Package urltoken spots a credential passed in a URL's query string,
// which the live routes refuse: URLs end up in access logs, proxies' logs
// and browser history.
package urltoken

import (
	"net/http"
	"net/url"
	"strings"
)

// names are the query parameters taken for a token, in any case.
var names = []string{"token", "access_token", "jwt", "auth", "authorization", "bearer"}

// InQuery reports whether r's query string has a parameter named as a
// token, in any case (?token=, ?Token=, ?TOKEN=), percent-encoded or not,
// with or without a value, whether pairs are separated by '&' or ';' (a
// pair net/url's parser drops, such as one after a ';', is still seen).
func InQuery(r *http.Request) bool {
	pairs := strings.FieldsFunc(r.URL.RawQuery, func(c rune) bool { return c == '&' || c == ';' })
	for _, pair := range pairs {
		key, _, _ := strings.Cut(pair, "=")
		if k, err := url.QueryUnescape(key); err == nil {
			key = k
		}
		for _, n := range names {
			if strings.EqualFold(strings.TrimSpace(key), n) {
				return true
			}
		}
	}
	return false
}
