package docs

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// readmeNode is the oldest Node.js README.md asks for.
const readmeNode = "20.19.0"

// TestNodePackagesRunOnREADMENode: every package npm ci installs (web
// client and deployment kit) accepts the Node.js README.md names, so npm
// ci prints no EBADENGINE warning on it.
func TestNodePackagesRunOnREADMENode(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "Node.js 20 (20.19 or later)") {
		t.Fatalf("README.md no longer says Node.js 20 (20.19 or later); update readmeNode (%s) with it", readmeNode)
	}
	for _, lock := range []string{"../frontend/package-lock.json", "../deploy/package-lock.json"} {
		data, err := os.ReadFile(lock)
		if err != nil {
			t.Fatal(err)
		}
		var l struct {
			Packages map[string]struct {
				Version string          `json:"version"`
				Engines json.RawMessage `json:"engines"`
			} `json:"packages"`
		}
		if err := json.Unmarshal(data, &l); err != nil {
			t.Fatalf("%s: %v", lock, err)
		}
		checked := 0
		for path, p := range l.Packages {
			var engines struct {
				Node string `json:"node"`
			}
			if len(p.Engines) == 0 || json.Unmarshal(p.Engines, &engines) != nil || engines.Node == "" {
				continue // none, or the old array form npm ignores
			}
			checked++
			if !satisfies(readmeNode, engines.Node) {
				t.Errorf("%s: %s@%s needs Node %q, README.md says %s: pin a version that runs on it", lock, path, p.Version, engines.Node, readmeNode)
			}
		}
		if checked < 10 {
			t.Fatalf("%s: only %d packages name a Node engine; is this a package-lock v3?", lock, checked)
		}
	}
}

func TestSatisfies(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		rng  string
		want bool
	}{
		{">=22.12.0", false}, {"^20.19.0 || >=22.12.0", true}, {">= 12.0.0", true}, {">=20", true},
		{"20 || >=22", true}, {">=v12.22.7", true}, {"^18.0.0", false}, {"^20.20.0", false},
		{"~20.19.0", true}, {"~20.18.0", false}, {"<20", false}, {">=18 <21", true}, {"*", true}, {"", true},
		{"^10 || ^12 || >=14", true}, {">20.19.0", false}, {"<=20.19.0", true}, {"20.x", true}, {"21.x", false},
	} {
		if got := satisfies("20.19.0", tt.rng); got != tt.want {
			t.Errorf("satisfies(20.19.0, %q) = %v, want %v", tt.rng, got, tt.want)
		}
	}
}

var opSpaceRe = regexp.MustCompile(`(>=|<=|>|<|=|\^|~)\s+`)

// satisfies reports whether version (x.y.z) is in an npm semver range of
// the forms package engines use: comparators (>=, >, <=, <, =, ^, ~, a
// bare or x-version) joined by spaces, alternatives by "||".
func satisfies(version, rng string) bool {
	v := parseVersion(version)
	for _, alt := range strings.Split(rng, "||") {
		ok := true
		for _, c := range strings.Fields(opSpaceRe.ReplaceAllString(alt, "$1")) {
			ok = ok && comparator(v, c)
		}
		if ok {
			return true
		}
	}
	return false
}

func comparator(v [3]int, c string) bool {
	op := c[:len(c)-len(strings.TrimLeft(c, "<>=^~"))]
	want, parts := parseVersion(strings.TrimPrefix(c[len(op):], "v")), countParts(c[len(op):])
	cmp := compare(v, want)
	switch op {
	case ">=":
		return cmp >= 0
	case ">":
		return cmp > 0
	case "<=":
		return cmp <= 0
	case "<":
		return cmp < 0
	case "^":
		return cmp >= 0 && v[0] == want[0]
	case "~":
		return cmp >= 0 && v[0] == want[0] && (parts < 2 || v[1] == want[1])
	default: // "=", or a bare, partial or x version: those parts equal
		for i := 0; i < parts; i++ {
			if v[i] != want[i] {
				return false
			}
		}
		return true
	}
}

// parseVersion reads "x.y.z" ("x", "x.y", "x.x" too); missing or x parts are 0.
func parseVersion(s string) [3]int {
	var v [3]int
	for i, p := range strings.SplitN(s, ".", 3) {
		v[i], _ = strconv.Atoi(strings.TrimRight(p, "-+abcdefghijklmnopqrstuvwyz"))
	}
	return v
}

// countParts is how many leading numeric parts a version names ("20.x": 1).
func countParts(s string) int {
	n := 0
	for _, p := range strings.SplitN(strings.TrimPrefix(s, "v"), ".", 3) {
		if _, err := strconv.Atoi(p); err != nil {
			break
		}
		n++
	}
	return n
}

func compare(a, b [3]int) int {
	for i := range a {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}
