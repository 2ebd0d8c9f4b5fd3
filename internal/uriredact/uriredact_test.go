package uriredact

import (
	"strings"
	"testing"
)

// TestURI: credentials are hidden however the URI is written; Hosts finds
// its hosts.
func TestURI(t *testing.T) {
	t.Parallel()
	cases := []struct{ in, redacted, hosts string }{
		{"mongodb://user:s3cret@db:27017/chatd?authSource=admin", "mongodb://xxxxx@db:27017/chatd?authSource=admin", "db:27017"},
		{"mongodb://u:p%40ss@h1:1,h2:2/?replicaSet=rs", "mongodb://xxxxx@h1:1,h2:2/?replicaSet=rs", "h1:1,h2:2"},
		{"mongodb+srv://u:pw@cluster.example.net", "mongodb+srv://xxxxx@cluster.example.net", "cluster.example.net"},
		{"mongodb://u:p@ss@h", "mongodb://xxxxx@h", "h"},
		{"mongodb://u:pa/ss@h/db", "mongodb://xxxxx@h/db", "h"},
		{"mongodb://u:pa?ss@h/db", "mongodb://xxxxx@h/db", "h"},
		{"mongodb://onlyuser@h/db", "mongodb://xxxxx@h/db", "h"},
		{"mongodb://h:27017", "mongodb://h:27017", "h:27017"},
		{"mongodb://u:pw@h/db?x=a@b", "mongodb://xxxxx@b", "b"}, // over-redacted: the safe side
		{"chatd:pw@db1", "xxxxx@db1", "db1"},
		{"u:p://x@h", "xxxxx@h", "h"}, // "u:p" is no scheme
		{"nats://u:p@h:4222", "nats://xxxxx@h:4222", "h:4222"},
		{"nats//u:p@h:4222", "xxxxx@h:4222", "h:4222"},
		{"tls://h:4222", "tls://h:4222", "h:4222"},
		{"h:4222", "h:4222", "h:4222"},
	}
	for _, c := range cases {
		if got := URI(c.in); got != c.redacted {
			t.Errorf("URI(%q) = %q, want %q", c.in, got, c.redacted)
		}
		if got := Hosts(c.in); got != c.hosts {
			t.Errorf("Hosts(%q) = %q, want %q", c.in, got, c.hosts)
		}
	}
}

// TestScrub: a password is taken out of a text, as written and decoded.
func TestScrub(t *testing.T) {
	t.Parallel()
	cases := []struct{ text, uri, password string }{
		{"auth failed for p@ss and p%40ss", "mongodb://u:p%40ss@h", "p@ss"},
		{"auth failed for p@ss and p%40ss", "mongodb://u:p%40ss@h", "p%40ss"},
		{"error parsing uri mongodb://u:pa/ss@h/db: bad host u:pa", "mongodb://u:pa/ss@h/db", "pa/ss"},
		{"bad token s3cr/et", "mongodb://s3cr/et@h", "s3cr/et"},
	}
	for _, c := range cases {
		if got := Scrub(c.text, c.uri); strings.Contains(got, c.password) {
			t.Errorf("Scrub(%q, %q) = %q: shows %q", c.text, c.uri, got, c.password)
		}
	}
}
