package lint

import (
	"go/ast"
	"path"
	"testing"
)

// isTestImport reports whether an import path is test-only code: the
// module's helper packages and e2e harness (isTestOnly), the standard
// library's testing packages (testing, testing/fstest, net/http/httptest,
// log/slog/slogtest, …) and any other package named …test.
func isTestImport(t *testing.T, importPath string) bool {
	if under(importPath, modulePath(t)) {
		return isTestOnly(t, importPath)
	}
	base := path.Base(importPath)
	return under(importPath, "testing") || len(base) > len("test") && base[len(base)-len("test"):] == "test"
}

// TestTestHelpersOnlyInTests: test-helper packages are imported only from
// _test.go files (style-anchors §6.4). The helpers themselves may import one
// another and the testing packages.
func TestTestHelpersOnlyInTests(t *testing.T) {
	t.Parallel()
	const why = "test helpers (fixture builders, swizzlers, fake custodians, conformance suites) exist to break things on purpose; imported from non-test code they link into binaries, drag in package testing and its flags, and let test-only shortcuts reach production (style-anchors §6.4)"
	for _, p := range modulePackages(t) {
		if isTestOnly(t, p.ImportPath) {
			continue
		}
		forEachImport(parse(t, p), func(pf *parsedFile, spec *ast.ImportSpec, imp string) {
			if isTestImport(t, imp) {
				t.Error(violation(pf.pos(spec), "non-test file imports "+rel(t, imp),
					"test-helper packages are imported only from _test.go files", why))
			}
		})
	}
}
