package docs

import (
	"go/ast"
	"go/token"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"chatd/hub/protocol"
	"chatd/persistence"
	"chatd/transport/auth"
)

// flatDoc is a document with every run of white space made one space, so
// that a phrase is found whatever its line breaks.
func flatDoc(t *testing.T, file string) string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(strings.Fields(string(data)), " ")
}

// durationExpr evaluates a duration as the source writes it: time.Unit,
// N * time.Unit or N*time.Unit; ok is false for anything else.
func durationExpr(e ast.Expr) (d time.Duration, ok bool) {
	units := map[string]time.Duration{"Nanosecond": time.Nanosecond, "Millisecond": time.Millisecond,
		"Second": time.Second, "Minute": time.Minute, "Hour": time.Hour}
	switch e := e.(type) {
	case *ast.SelectorExpr:
		if x, isIdent := e.X.(*ast.Ident); isIdent && x.Name == "time" {
			d, ok = units[e.Sel.Name]
		}
		return d, ok
	case *ast.BinaryExpr:
		n, isLit := e.X.(*ast.BasicLit)
		unit, unitOK := durationExpr(e.Y)
		if e.Op != token.MUL || !isLit || !unitOK {
			return 0, false
		}
		v, err := strconv.Atoi(n.Value)
		return time.Duration(v) * unit, err == nil
	}
	return 0, false
}

// durationConst is the duration constant name of the package in dir.
func durationConst(t *testing.T, dir, name string) time.Duration {
	t.Helper()
	for _, f := range parseDir(t, dir) {
		for _, d := range f.Decls {
			g, isGen := d.(*ast.GenDecl)
			if !isGen || g.Tok != token.CONST {
				continue
			}
			for _, spec := range g.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if n.Name != name || i >= len(vs.Values) {
						continue
					}
					if d, ok := durationExpr(vs.Values[i]); ok {
						return d
					}
					t.Fatalf("%s.%s is no duration written as N * time.Unit", dir, name)
				}
			}
		}
	}
	t.Fatalf("no constant %s in %s", name, dir)
	return 0
}

// variableDefault is the default duration cmd/chatd's configuration
// gives the variable name (r.duration(name, default, ...)).
func variableDefault(t *testing.T, name string) time.Duration {
	t.Helper()
	var found time.Duration
	for _, f := range parseDir(t, "../cmd/chatd") {
		ast.Inspect(f, func(n ast.Node) bool {
			call, isCall := n.(*ast.CallExpr)
			if !isCall || len(call.Args) < 2 {
				return true
			}
			if lit, isLit := call.Args[0].(*ast.BasicLit); isLit && lit.Value == strconv.Quote(name) {
				if d, ok := durationExpr(call.Args[1]); ok {
					found = d
				}
			}
			return true
		})
	}
	if found == 0 {
		t.Fatalf("no duration default of %s in cmd/chatd", name)
	}
	return found
}

// inWords says d as the documents do: "an hour", "7 days", "15 minutes".
func inWords(d time.Duration) string {
	switch {
	case d == time.Hour:
		return "an hour"
	case d%(24*time.Hour) == 0:
		return strconv.Itoa(int(d/(24*time.Hour))) + " days"
	case d%time.Hour == 0:
		return strconv.Itoa(int(d/time.Hour)) + " hours"
	default:
		return strconv.Itoa(int(d/time.Minute)) + " minutes"
	}
}

// TestDeletionLeftovers: what docs/deploy.md ("What a deletion leaves
// behind"), scale.md and api.md say survives a deletion in NATS and
// after a restore holds of the code: how long the answer and events
// streams keep what they hold (the stream's age is the longest answer
// plus cmd/chatd's catch-up time), how long the windows bucket keeps a
// key, the token lifetime a restored account's revoked tokens live
// for, that no stream of answers is purged by chatd, and that a
// deletion's frame is the conversation's id alone.
func TestDeletionLeftovers(t *testing.T) {
	t.Parallel()
	longest := variableDefault(t, "CHATD_MAX_ANSWER_DURATION")
	catchUp := durationConst(t, "../cmd/chatd", "catchUpAfterEnd")
	events := durationConst(t, "../hub/natsbus", "eventsMaxAge")
	windows := durationConst(t, "../hub/natsbus", "DefaultWindowsAge")
	answers := "`CHATD_MAX_ANSWER_DURATION` plus " + inWords(catchUp)
	deploy, scale, api, proto := flatDoc(t, "deploy.md"), flatDoc(t, "scale.md"), flatDoc(t, "api.md"), flatDoc(t, "protocol.md")
	for _, tc := range []struct{ doc, name, phrase string }{
		{deploy, "deploy.md", answers + " (" + inWords(longest+catchUp) + " by default"},
		{deploy, "deploy.md", "`CHATD_EVENTS` keeps each user event"},
		{deploy, "deploy.md", "for " + inWords(events) + ". The bucket `chatd_windows` keeps the login limits' keys " + inWords(windows)},
		{deploy, "deploy.md", "(`JWT_TTL`, " + inWords(auth.DefaultTTL) + " by default). After restoring a backup, replace `JWT_SECRET`"},
		{deploy, "deploy.md", "chatd does not purge them"},
		{scale, "scale.md", "(" + answers + " after each was published), and its events in `CHATD_EVENTS` for their " + inWords(events)},
		{api, "api.md", "keeps its answers' frames (the user's messages and the answers) up to " + answers},
		{api, "api.md", "keeps its answers' frames up to " + answers},
		{proto, "protocol.md", "for `deleted`, `{id}` alone"},
	} {
		if !strings.Contains(tc.doc, tc.phrase) {
			t.Errorf("%s does not say %q", tc.name, tc.phrase)
		}
	}

	// "chatd does not purge them": the only purges of hub/natsbus are of
	// a key-value bucket's keys (kv.Purge), never of a stream.
	purge := regexp.MustCompile(`(\w+)\.Purge\(`)
	for _, f := range goFiles(t, "../hub/natsbus") {
		for _, m := range purge.FindAllStringSubmatch(f, -1) {
			if m[1] != "kv" {
				t.Errorf("hub/natsbus purges with %s.Purge: say what deploy.md and scale.md should now say of a deletion", m[1])
			}
		}
	}

	frame := protocol.Conversation("deleted", persistence.Conversation{ID: "c1", Title: "t", SystemPrompt: "p"})
	if string(frame.Data) != `{"type":"conversation","action":"deleted","conversation":{"id":"c1"}}` {
		t.Errorf("a deletion's frame is %s, not the id alone protocol.md says", frame.Data)
	}
}

// goFiles is the text of the non-test Go files of dir.
func goFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		data, err := os.ReadFile(dir + "/" + e.Name())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(data))
	}
	return out
}
