package docs

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// protocolConsts returns the string and integer constants of hub/protocol
// by name, as the source spells their values.
func protocolConsts(t *testing.T) map[string]string {
	t.Helper()
	consts := map[string]string{}
	for name, v := range packageConsts(t, "../hub/protocol") {
		consts[name] = v
	}
	return consts
}

// packageConsts returns the constants with a literal value (a string
// unquoted, a number as written) of the non-test files of dir.
func packageConsts(t *testing.T, dir string) map[string]string {
	t.Helper()
	consts := map[string]string{}
	for _, f := range parseDir(t, dir) {
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, spec := range g.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if i >= len(vs.Values) {
						continue
					}
					if v, ok := literal(vs.Values[i]); ok {
						consts[name.Name] = v
					}
				}
			}
		}
	}
	return consts
}

func literal(e ast.Expr) (string, bool) {
	lit, ok := e.(*ast.BasicLit)
	if !ok {
		return "", false
	}
	if lit.Kind == token.STRING {
		s, err := strconv.Unquote(lit.Value)
		return s, err == nil
	}
	return lit.Value, lit.Kind == token.INT
}

func parseDir(t *testing.T, dir string) []*ast.File {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	fset := token.NewFileSet()
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	if len(files) == 0 {
		t.Fatalf("no Go files in %s", dir)
	}
	return files
}

// docSection returns the lines of protocol.md's "## " section named title.
func docSection(t *testing.T, title string) []string {
	t.Helper()
	data, err := os.ReadFile("protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	in := false
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "## ") {
			in = strings.TrimPrefix(line, "## ") == title
			continue
		}
		if in {
			out = append(out, line)
		}
	}
	if len(out) == 0 {
		t.Fatalf("protocol.md has no section %q", title)
	}
	return out
}

// tableRows returns the rows of the first table in lines whose first
// cell matches first (its submatch 1 is the key), keyed by it.
func tableRows(lines []string, first *regexp.Regexp) map[string]string {
	rows := map[string]string{}
	for _, l := range lines {
		if !strings.HasPrefix(l, "| ") {
			if len(rows) > 0 {
				break
			}
			continue
		}
		cell, _, _ := strings.Cut(strings.TrimPrefix(l, "| "), " |")
		if m := first.FindStringSubmatch(cell); m != nil {
			rows[m[1]] = l
		}
	}
	return rows
}

// TestErrorCodesTableMatchesConstants: every error code of hub/protocol
// has a row in protocol.md's "Error codes" table (the code of a done frame
// alone, CodeShutdown, is named among the done frame's codes below it),
// and every row is a code the server sends.
func TestErrorCodesTableMatchesConstants(t *testing.T) {
	t.Parallel()
	section := docSection(t, "Error codes")
	rows := tableRows(section, regexp.MustCompile("^`([a-z_]+)`$"))
	doneCodes := strings.Join(section, " ")
	codes := map[string]bool{}
	for name, v := range protocolConsts(t) {
		if !strings.HasPrefix(name, "Code") {
			continue
		}
		codes[v] = true
		switch {
		case name == "CodeShutdown":
			if !strings.Contains(doneCodes, "`"+v+"`") {
				t.Errorf("protocol.md, Error codes: the done frame's code %s (%s) is not named", v, name)
			}
		case rows[v] == "":
			t.Errorf("protocol.md, Error codes: no row for %s (hub/protocol %s)", v, name)
		}
	}
	if len(codes) < 10 {
		t.Fatalf("found only %d error codes in hub/protocol: has their spelling changed?", len(codes))
	}
	for code := range rows {
		if !codes[code] {
			t.Errorf("protocol.md, Error codes: row %s is no error code of hub/protocol", code)
		}
	}
}

// closeRowRe is the first cell of a row of the close codes table.
var closeRowRe = regexp.MustCompile(`^(\d{4})$`)

// TestCloseCodesTableMatchesConstants: every close code of hub/protocol
// has a row in protocol.md's "Close codes" table, and every row is one of
// them.
func TestCloseCodesTableMatchesConstants(t *testing.T) {
	t.Parallel()
	rows := tableRows(docSection(t, "Close codes"), closeRowRe)
	codes := map[string]bool{}
	for name, v := range protocolConsts(t) {
		if !strings.HasPrefix(name, "Close") {
			continue
		}
		codes[v] = true
		if rows[v] == "" {
			t.Errorf("protocol.md, Close codes: no row for %s (hub/protocol %s)", v, name)
		}
	}
	if len(codes) < 8 {
		t.Fatalf("found only %d close codes in hub/protocol: has their spelling changed?", len(codes))
	}
	for code := range rows {
		if !codes[code] {
			t.Errorf("protocol.md, Close codes: row %s is no close code of hub/protocol", code)
		}
	}
}

// closeCall is a close the server sends: its code and reason.
type closeCall struct{ code, reason, where string }

// notSent are closes in the code whose reason no client sees.
var notSent = map[string]string{
	// The WebSocket library has already sent its own 1009 ("read limited
	// at N bytes"); this reason is the close's log line.
	"1009 frame too large": "logged only",
	// An event stream too slow to take its frames ends with no closed
	// event (protocol.md: "A stream ended because its client stopped
	// reading gets none").
	"4408 too slow": "no closed event",
}

// TestCloseReasonsDocumented: every close the server code sends with a
// code of hub/protocol and a reason it spells out (a literal or a
// constant: Close and kick calls, UserClose values, in hub, transport/ws
// and transport/sse) names that reason in the row of its code in
// protocol.md's "Close codes" table, so a client can act on each.
func TestCloseReasonsDocumented(t *testing.T) {
	t.Parallel()
	rows := tableRows(docSection(t, "Close codes"), closeRowRe)
	calls := serverCloses(t)
	if len(calls) < 12 {
		t.Fatalf("found only %d closes in the code: has their spelling changed?", len(calls))
	}
	for _, c := range calls {
		if _, ok := notSent[c.code+" "+c.reason]; ok {
			continue
		}
		if !strings.Contains(rows[c.code], "`"+c.reason+"`") {
			t.Errorf("%s: close %s with reason %q: protocol.md's row of %s does not name it", c.where, c.code, c.reason, c.code)
		}
	}
}

// serverCloses finds the closes of the server's code whose code and
// reason are constants or literals.
func serverCloses(t *testing.T) []closeCall {
	t.Helper()
	pconsts := protocolConsts(t)
	var out []closeCall
	for _, dir := range []string{"../hub", "../transport/ws", "../transport/sse"} {
		local := packageConsts(t, dir)
		resolve := func(e ast.Expr) (string, bool) {
			for {
				call, ok := e.(*ast.CallExpr) // a conversion: websocket.StatusCode(protocol.CloseGoingAway)
				if !ok || len(call.Args) != 1 {
					break
				}
				e = call.Args[0]
			}
			switch e := e.(type) {
			case *ast.BasicLit:
				return literal(e)
			case *ast.Ident:
				v, ok := local[e.Name]
				return v, ok
			case *ast.SelectorExpr:
				if x, ok := e.X.(*ast.Ident); ok && x.Name == "protocol" {
					v, ok := pconsts[e.Sel.Name]
					return v, ok
				}
			}
			return "", false
		}
		add := func(code, reason ast.Expr, where string) {
			c, okc := resolve(code)
			r, okr := resolve(reason)
			if okc && okr && closeRowRe.MatchString(c) {
				out = append(out, closeCall{code: c, reason: r, where: where})
			}
		}
		for _, f := range parseDir(t, dir) {
			where := dir + "/" + f.Name.Name
			ast.Inspect(f, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.CallExpr:
					sel, ok := n.Fun.(*ast.SelectorExpr)
					if ok && len(n.Args) == 2 && slices.Contains([]string{"Close", "kick"}, sel.Sel.Name) {
						add(n.Args[0], n.Args[1], where)
					}
				case *ast.CompositeLit:
					var code, reason ast.Expr
					for _, el := range n.Elts {
						if kv, ok := el.(*ast.KeyValueExpr); ok {
							switch k, _ := kv.Key.(*ast.Ident); {
							case k == nil:
							case k.Name == "Code":
								code = kv.Value
							case k.Name == "Reason":
								reason = kv.Value
							}
						}
					}
					if code != nil && reason != nil {
						add(code, reason, where)
					}
				}
				return true
			})
		}
	}
	return out
}
