package docs

import (
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestSingleHostReplicaSetMatchesURI: the replica set deploy.md
// initiates (its uncommented rs.initiate, the single-host one) names as
// its member the address the single-host MONGODB_URI of deploy.md and of
// chatd.env.example connects to. It named db1.internal:27017 while the
// URI said 127.0.0.1 and mongod bound 127.0.0.1 only: mongod refuses such
// a member ("No host ... maps to this node"), and the driver connects to
// the members the set announces, not to the URI's seed.
func TestSingleHostReplicaSetMatchesURI(t *testing.T) {
	t.Parallel()
	var member string
	for _, b := range readBlocks(t, "deploy.md") {
		for _, l := range b.lines {
			if m := regexp.MustCompile(`^rs\.initiate\(.*host: "([^"]+)"`).FindStringSubmatch(l); m != nil && member == "" {
				member = m[1]
			}
		}
	}
	if member == "" {
		t.Fatal("deploy.md: no rs.initiate found")
	}
	for _, s := range []struct{ file, pattern string }{
		{"deploy.md", `# single-node replica set on the same host[^\n]*\nMONGODB_URI=(\S+)`},
		{"../deploy/chatd.env.example", `(?m)^#MONGODB_URI=(\S+)`},
	} {
		data, err := os.ReadFile(s.file)
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(s.pattern).FindSubmatch(data)
		if m == nil {
			t.Errorf("%s: no single-host MONGODB_URI found (pattern %q)", s.file, s.pattern)
			continue
		}
		u, err := url.Parse(string(m[1]))
		if err != nil {
			t.Fatalf("%s: %v", s.file, err)
		}
		if u.Host != member || !strings.Contains(u.RawQuery, "replicaSet=rs0") {
			t.Errorf("%s: the single-host URI connects to %s (%s), the set deploy.md initiates has the member %s",
				s.file, u.Host, u.RawQuery, member)
		}
	}
}
