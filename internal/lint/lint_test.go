package lint

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// goPackage is the subset of `go list -json` output the rules read.
type goPackage struct {
	Dir            string
	ImportPath     string
	Name           string
	Standard       bool
	GoFiles        []string
	CgoFiles       []string
	IgnoredGoFiles []string
	TestGoFiles    []string
	XTestGoFiles   []string
	Imports        []string
	Deps           []string
	Module         *struct{ Path string }
	Error          *struct{ Err string }
	DepsErrors     []*struct{ Err string }
}

// listing is the result of one `go list -e -deps -json` run: every package
// reachable from the patterns, keyed by import path.
type listing struct {
	pkgs map[string]*goPackage
	err  error
}

// modInfo is the module under test, found once.
var modInfo = sync.OnceValues(func() (struct{ Path, Dir string }, error) {
	var m struct{ Path, Dir string }
	// Run in the test's directory (internal/lint): the main module is ours.
	out, err := exec.Command("go", "list", "-m", "-json").Output()
	if err != nil {
		return m, fmt.Errorf("go list -m -json: %v", err)
	}
	if err := json.Unmarshal(out, &m); err != nil {
		return m, fmt.Errorf("decoding go list -m: %v", err)
	}
	return m, nil
})

// goCmd runs the go command in the module root with extra environment
// variables.
func goCmd(env []string, args ...string) ([]byte, error) {
	cmd := exec.Command("go", args...)
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	m, err := modInfo()
	if err != nil {
		return nil, err
	}
	cmd.Dir = m.Dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return out, nil
}

func goList(env []string, args ...string) (map[string]*goPackage, error) {
	out, err := goCmd(env, append([]string{"list", "-e", "-deps", "-json"}, args...)...)
	if err != nil {
		return nil, err
	}
	pkgs := make(map[string]*goPackage)
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		p := new(goPackage)
		if err := dec.Decode(p); err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("decoding go list output: %v", err)
		}
		pkgs[p.ImportPath] = p
	}
	return pkgs, nil
}

// The go command runs once per configuration; every test shares the result.
var (
	defaultList = sync.OnceValue(func() listing {
		trackInputs()
		p, err := goList(nil, "./...")
		return listing{p, err}
	})
	pkcs11List = sync.OnceValue(func() listing {
		p, err := goList(nil, "-tags", "pkcs11", "./cmd/...")
		return listing{p, err}
	})
	noCgoList = sync.OnceValue(func() listing {
		p, err := goList([]string{"CGO_ENABLED=0"}, "./cmd/...")
		return listing{p, err}
	})
)

// trackInputs opens go.mod, go.sum and every directory under cmd/ and
// internal/ from the test process itself. The go command hashes the files
// and directories a test opens into its test-cache key, but not those a child
// `go list` reads; without this, adding a package or a dependency could
// leave a stale cached PASS. (Source files are opened by the parse step.)
func trackInputs() {
	m, err := modInfo()
	if err != nil {
		return
	}
	for _, f := range []string{"go.mod", "go.sum"} {
		os.ReadFile(filepath.Join(m.Dir, f)) // absent go.sum is fine
	}
	for _, top := range []string{"cmd", "internal"} {
		filepath.WalkDir(filepath.Join(m.Dir, top), func(_ string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
				return filepath.SkipDir
			}
			return nil
		})
	}
}

func mustList(t *testing.T, l listing) map[string]*goPackage {
	t.Helper()
	if l.err != nil {
		t.Fatalf("go list: %v", l.err)
	}
	return l.pkgs
}

// modulePath returns the module path, failing the test if it is unknown.
func modulePath(t *testing.T) string {
	t.Helper()
	m, err := modInfo()
	if err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	return m.Path
}

// modulePackages returns the module's own packages from the default listing,
// sorted by import path.
func modulePackages(t *testing.T) []*goPackage {
	t.Helper()
	mod := modulePath(t)
	var out []*goPackage
	for _, p := range mustList(t, defaultList()) {
		if p.Module != nil && p.Module.Path == mod && !p.Standard {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b *goPackage) int { return strings.Compare(a.ImportPath, b.ImportPath) })
	return out
}

// rel returns the module-relative form of an import path ("internal/tuf").
func rel(t *testing.T, importPath string) string {
	mod := modulePath(t)
	if importPath == mod {
		return "."
	}
	return strings.TrimPrefix(importPath, mod+"/")
}

// under reports whether p is prefix or a package below it.
func under(p, prefix string) bool {
	return p == prefix || strings.HasPrefix(p, prefix+"/")
}

// isTestOnly reports whether a module package exists only for tests: helper
// packages named …test (tuftest, storetest, keystest) and the internal/e2e
// harness.
func isTestOnly(t *testing.T, importPath string) bool {
	r := rel(t, importPath)
	return strings.HasSuffix(path.Base(r), "test") || under(r, "internal/e2e")
}

// nonTestFiles lists a package's non-test .go files, including files that
// build constraints exclude in this configuration (the pkcs11-tagged ones,
// other platforms), as absolute paths.
func nonTestFiles(p *goPackage) []string {
	var out []string
	for _, list := range [][]string{p.GoFiles, p.CgoFiles, p.IgnoredGoFiles} {
		for _, f := range list {
			if strings.HasSuffix(f, ".go") && !strings.HasSuffix(f, "_test.go") {
				out = append(out, filepath.Join(p.Dir, f))
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// parsedFile is one non-test source file, parsed once for all rules.
type parsedFile struct {
	name string // module-relative, for messages
	fset *token.FileSet
	file *ast.File
	err  error
}

var (
	parseMu    sync.Mutex
	parseCache = map[string]*parsedFile{}
	parseFset  = token.NewFileSet()
)

// parse returns the parsed non-test files of p.
func parse(t *testing.T, p *goPackage) []*parsedFile {
	t.Helper()
	m, _ := modInfo()
	var out []*parsedFile
	for _, name := range nonTestFiles(p) {
		parseMu.Lock()
		pf, ok := parseCache[name]
		if !ok {
			r, err := filepath.Rel(m.Dir, name)
			if err != nil {
				r = name
			}
			f, err := parser.ParseFile(parseFset, name, nil, parser.ParseComments|parser.SkipObjectResolution)
			pf = &parsedFile{name: filepath.ToSlash(r), fset: parseFset, file: f, err: err}
			parseCache[name] = pf
		}
		parseMu.Unlock()
		if pf.err != nil {
			t.Errorf("%s: cannot parse: %v", pf.name, pf.err)
			continue
		}
		out = append(out, pf)
	}
	return out
}

// pos formats a node's position as file:line.
func (pf *parsedFile) pos(n ast.Node) string {
	return fmt.Sprintf("%s:%d", pf.name, pf.fset.Position(n.Pos()).Line)
}

// importNames maps the names a file uses for its imports to import paths.
// Dot imports map "." to the path (the last one wins; rules that care check
// dot imports separately).
func (pf *parsedFile) importNames() map[string]string {
	names := make(map[string]string)
	for _, is := range pf.file.Imports {
		p, err := strconv.Unquote(is.Path.Value)
		if err != nil {
			continue
		}
		name := path.Base(p)
		if strings.HasPrefix(name, "v") && len(name) > 1 && strings.Trim(name[1:], "0123456789") == "" {
			name = path.Base(path.Dir(p)) // gopkg.in/x/v5 style; close enough for the paths we check
		}
		if is.Name != nil {
			name = is.Name.Name
		}
		names[name] = p
	}
	return names
}

// selectorCalls calls fn for every selector expression pkg.Sel in the file
// whose pkg identifier refers to the import path importPath.
func (pf *parsedFile) selectors(importPath string, fn func(sel *ast.SelectorExpr, stack []ast.Node)) {
	var local []string
	for name, p := range pf.importNames() {
		if p == importPath && name != "_" && name != "." {
			local = append(local, name)
		}
	}
	if len(local) == 0 {
		return
	}
	var stack []ast.Node
	ast.Inspect(pf.file, func(n ast.Node) bool {
		if n == nil {
			stack = stack[:len(stack)-1]
			return true
		}
		stack = append(stack, n)
		if sel, ok := n.(*ast.SelectorExpr); ok {
			if id, ok := sel.X.(*ast.Ident); ok && slices.Contains(local, id.Name) {
				fn(sel, stack)
			}
		}
		return true
	})
}

// violation formats a rule failure: where, what, which rule, and why it exists.
func violation(where, what, rule, why string) string {
	return fmt.Sprintf("%s: %s\n\trule: %s\n\twhy: %s", where, what, rule, why)
}
