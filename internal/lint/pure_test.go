package lint

import (
	"go/ast"
	"strconv"
	"strings"
	"testing"
)

// purePackages do no I/O, no logging and never read the clock
// (style-anchors §6.2 and §6.3, STYLE rules 10 and 12).
var purePackages = []string{
	"internal/tuf",
	"internal/tuf/cjson",
	"internal/tuf/trust",
	"internal/keys",
	"internal/policy",
	"internal/notaryapi",
	"internal/jose",
	"internal/printable", // quoting for the terminal: a function of its input only
}

const (
	whyPure  = "parsing and signature checks are pure functions on values, shared by server, client and webhook; they do no I/O so every caller gets the same answer (style-anchors §6.2, §6.3)"
	whyNoLog = "pure packages never log; errors carry the detail and the caller decides what to log (STYLE rule 12, §6.3)"
	whyClock = "time is an argument (STYLE rule 10): verification takes `now time.Time`, like x509.VerifyOptions.CurrentTime, so expiry checks are deterministic, testable, and the same on server, client and webhook"
	whyInit  = "dependencies are constructor parameters, never init() side effects, and pure packages hold no globals (STYLE rule 7, §6.2)"
)

// pureForbiddenImports are import path prefixes pure packages never import.
var pureForbiddenImports = []ban{
	{"net/http", whyPure},
	{"database/sql", whyPure},
	{"os/exec", whyPure},
	{"log", whyNoLog}, // log and log/slog, log/syslog
}

// pureAllowedThirdParty are the only non-standard, non-module imports pure
// packages may have (§6.3: keys may use x/crypto).
var pureAllowedThirdParty = []string{"golang.org/x/crypto"}

// purePackage returns the listed package for a module-relative path, or
// skips if it does not exist.
func purePackage(t *testing.T, relPath string) *goPackage {
	t.Helper()
	p := mustList(t, defaultList())[modulePath(t)+"/"+relPath]
	if p == nil {
		t.Skipf("%s does not exist", relPath)
	}
	return p
}

// forEachImport calls fn for every import spec in the files.
func forEachImport(files []*parsedFile, fn func(pf *parsedFile, spec *ast.ImportSpec, path string)) {
	for _, pf := range files {
		for _, is := range pf.file.Imports {
			if p, err := strconv.Unquote(is.Path.Value); err == nil {
				fn(pf, is, p)
			}
		}
	}
}

func isStandard(importPath string) bool {
	first, _, _ := strings.Cut(importPath, "/")
	return !strings.Contains(first, ".")
}

// TestPurePackageImports keeps I/O, logging and non-pure module packages out
// of the pure packages. Because a pure package may only import other pure
// packages from the module, checking direct imports covers the module part
// of the transitive closure.
func TestPurePackageImports(t *testing.T) {
	t.Parallel()
	mod := modulePath(t)
	for _, relPath := range purePackages {
		t.Run(strings.ReplaceAll(relPath, "/", "_"), func(t *testing.T) {
			p := purePackage(t, relPath)
			forEachImport(parse(t, p), func(pf *parsedFile, spec *ast.ImportSpec, imp string) {
				for _, b := range pureForbiddenImports {
					if under(imp, b.path) {
						t.Error(violation(pf.pos(spec), relPath+" imports "+imp,
							"pure package "+relPath+" must not import "+b.path, b.why))
					}
				}
				switch {
				case isStandard(imp):
				case under(imp, mod):
					r := rel(t, imp)
					pure := false
					for _, q := range purePackages {
						pure = pure || r == q
					}
					if !pure {
						t.Error(violation(pf.pos(spec), relPath+" imports "+r+", which is not a pure package",
							"pure packages import only stdlib and other pure packages ("+strings.Join(purePackages, ", ")+")", whyPure))
					}
				default:
					ok := false
					for _, a := range pureAllowedThirdParty {
						ok = ok || under(imp, a)
					}
					if !ok {
						t.Error(violation(pf.pos(spec), relPath+" imports "+imp,
							"pure packages import only stdlib, "+strings.Join(pureAllowedThirdParty, ", ")+" and other pure packages", whyPure))
					}
				}
			})
		})
	}
}

// TestPurePackagesNoClockNoInit: pure packages never call time.Now,
// time.Since or time.Until (nor take them as function values), never
// dot-import time, and declare no init functions.
func TestPurePackagesNoClockNoInit(t *testing.T) {
	t.Parallel()
	for _, relPath := range purePackages {
		t.Run(strings.ReplaceAll(relPath, "/", "_"), func(t *testing.T) {
			p := purePackage(t, relPath)
			for _, pf := range parse(t, p) {
				for _, is := range pf.file.Imports {
					if is.Path.Value == `"time"` && is.Name != nil && is.Name.Name == "." {
						t.Error(violation(pf.pos(is), "dot-imports time, which hides clock reads from this check",
							"no time.Now/Since/Until in pure package "+relPath, whyClock))
					}
				}
				pf.selectors("time", func(sel *ast.SelectorExpr, _ []ast.Node) {
					switch sel.Sel.Name {
					case "Now", "Since", "Until":
						t.Error(violation(pf.pos(sel), "uses time."+sel.Sel.Name,
							"no time.Now/Since/Until in pure package "+relPath, whyClock))
					}
				})
				for _, d := range pf.file.Decls {
					if fd, ok := d.(*ast.FuncDecl); ok && fd.Recv == nil && fd.Name.Name == "init" {
						t.Error(violation(pf.pos(fd), "declares func init()",
							"no init() in pure package "+relPath, whyInit))
					}
				}
			}
		})
	}
}

// jsonEncoders are the encoding/json functions that produce bytes.
var jsonEncoders = map[string]bool{"Marshal": true, "MarshalIndent": true, "NewEncoder": true}

// TestSignedBytesOnlyFromCJSON approximates "no encoding/json on signed
// payloads outside cjson": in internal/tuf and its subpackages (except cjson
// and the test helpers) nothing calls encoding/json's encoders, and
// internal/keys calls them only inside MarshalJSON methods, whose output
// cjson re-canonicalises. Decoding (Unmarshal, RawMessage) is fine.
func TestSignedBytesOnlyFromCJSON(t *testing.T) {
	t.Parallel()
	const (
		why = "signatures are made and checked over bytes from the one canonical encoder, internal/tuf/cjson (STYLE rule 3); encoding/json's output is not canonical (map vs struct key order, HTML escaping, number forms), so bytes it produces must never be signed, hashed or compared"
	)
	for _, p := range modulePackages(t) {
		r := rel(t, p.ImportPath)
		var rule string
		allowMarshalJSON := false
		switch {
		case under(r, "internal/tuf/cjson"), isTestOnly(t, p.ImportPath):
			continue
		case under(r, "internal/tuf"):
			rule = r + " never calls encoding/json Marshal/MarshalIndent/NewEncoder; use cjson.Marshal"
		case under(r, "internal/keys"):
			rule = r + " calls encoding/json Marshal/MarshalIndent/NewEncoder only inside MarshalJSON methods; use cjson.Marshal for bytes that are signed or hashed"
			allowMarshalJSON = true
		default:
			continue
		}
		for _, pf := range parse(t, p) {
			pf.selectors("encoding/json", func(sel *ast.SelectorExpr, stack []ast.Node) {
				if !jsonEncoders[sel.Sel.Name] {
					return
				}
				if allowMarshalJSON {
					for _, n := range stack {
						if fd, ok := n.(*ast.FuncDecl); ok && fd.Recv != nil && fd.Name.Name == "MarshalJSON" {
							return
						}
					}
				}
				t.Error(violation(pf.pos(sel), "uses json."+sel.Sel.Name, rule, why))
			})
		}
	}
}
