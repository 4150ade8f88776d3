package lint

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// ban is a package (and everything below it) that must not be linked, with
// the reason the rule exists.
type ban struct {
	path string // import path prefix; "internal/..." is relative to the module
	why  string
}

const (
	whyBoundary     = "process boundaries are trust boundaries (DESIGN.md, style-anchors §6.1)"
	whySQL          = whyBoundary + ": the CLI ships to developer laptops and the webhook runs in every cluster, so neither carries SQL drivers or the store"
	whyPKCS11       = whyBoundary + ": Notary's threat model rests on a compromised server not yielding signing keys, so HSM custody (cgo PKCS#11: internal/keys/pkcs11, and the custody core's token internal/custody/hsm) lives only in signet-signer, behind //go:build pkcs11"
	whySignerPKCS11 = "the default signet-signer build stays cgo-free and PKCS#11-free (ADR 0007); HSM custody (--pkcs11) needs a signet-signer built with -tags pkcs11, which may link it"
	whyCLIPKCS11    = "the default signet build stays cgo-free and PKCS#11-free; a user's root key on a token (DCT's YubiKey workflow) needs a signet built with -tags pkcs11, the only build that may link PKCS#11 (DESIGN.md: `signet` holds keys in files or on a PKCS#11 token)"
)

// refused are libraries no binary may link (style-anchors §6.3 deny list).
var refused = []ban{
	{"github.com/docker/go", "it is a test-only oracle for canonical JSON (the cjson differential test); signed bytes come only from internal/tuf/cjson (STYLE rules 3 and 15, §6.3)"},
	{"github.com/theupdateframework/notary", "it is a test-only oracle (internal/tuf/tuftest/notarytest: the differential tests against notary 0.7's builder and client library); verification is internal/tuf/trust's alone (STYLE rules 9 and 18)"},
	{"github.com/sirupsen/logrus", "logging is log/slog only, injected (STYLE rule 12, §6.3 deny list)"},
	{"github.com/gorilla/mux", "routing uses net/http ServeMux patterns (§6.3 deny list)"},
	{"github.com/spf13/viper", "configuration is a strict decode with no global config (STYLE rule 7, §6.3 deny list)"},
	{"github.com/jinzhu/gorm", "storage is database/sql behind a Dialect in internal/store/sqlstore (§6.2, §6.3 deny list)"},
	{"github.com/stretchr/testify", "tests use plain testing and go-cmp (§6.4); testify in a binary means test code leaked into it"},
}

var (
	sqlBans = []ban{
		{"database/sql", whySQL},
		{"modernc.org/sqlite", whySQL},
		{"github.com/mattn/go-sqlite3", whySQL},
		{"github.com/jackc/pgx", whySQL},
		{"github.com/lib/pq", whySQL},
		{"internal/store/sqlstore", whySQL},
	}
	pkcs11Bans = []ban{ // the cgo libraries first
		{"github.com/miekg/pkcs11", whyPKCS11},
		{"github.com/ThalesGroup/crypto11", whyPKCS11},
		{"internal/keys/pkcs11", whyPKCS11},
		{"internal/custody/hsm", whyPKCS11},
	}
)

// defaultBuildOnly are bans on top of binaries that apply to the default
// build only: with -tags pkcs11 the binary may link them.
var defaultBuildOnly = map[string][]ban{
	"signet":        withWhy(pkcs11Bans[:3], whyCLIPKCS11),    // the cgo libraries and keys/pkcs11 (custody is banned in every build)
	"signet-signer": withWhy(pkcs11Bans[:2], whySignerPKCS11), // the cgo libraries; its URI parser is pure Go
}

func withWhy(bans []ban, why string) []ban {
	out := make([]ban, len(bans))
	for i, b := range bans {
		out[i] = ban{b.path, why}
	}
	return out
}

// binaries maps each command under cmd/ to what it must not link, on top of
// the refused libraries (style-anchors §6.1 table).
var binaries = map[string][]ban{
	"signet": concat(sqlBans, []ban{
		{"internal/server", whyBoundary + ": the CLI holds offline root/targets keys and must not contain server code"},
		{"internal/servercmd", whyBoundary + ": the CLI must not contain server code"},
		{"internal/auth", whyBoundary + ": token verification and the token service (password hashes, signing key) are server-side only"},
		{"internal/custody", whyBoundary + ": the custody core holds online and service keys, only in signet-server and signet-signer"},
		{"internal/signer", whyBoundary + ": signet-signer's custody service and its protocol are server-side"},
		{"internal/service", whyBoundary + ": the signing service (its store, custody of project keys, the signing worker) runs in signet-server; `signet request` and `signet admin` speak its HTTP API through internal/service/serviceapi only"},
	}),
	"signet-server": concat(pkcs11Bans, []ban{
		{"internal/signer", whyBoundary + ": the server holds keys through the custody core in process, or reaches signet-signer only through the protocol package; signet-signer's service (its own database, rekey, token) never runs in the server, so a compromised server cannot open it"},
		{"internal/signercmd", whyBoundary + ": the server must not contain signet-signer's command"},
	}),
	"signet-signer": {
		{"internal/server", whyBoundary + ": the signer must not contain the Notary v1 API handlers"},
		{"internal/service", whyBoundary + ": the signing service (policies, CI origin verification, notifications, the signing worker) runs in signet-server; the signer links only its records (internal/service/record), through the store it shares"},
		{"internal/servercmd", whyBoundary + ": the signer must not contain the Notary v1 API server"},
		{"internal/registry", whyBoundary + ": the signer must not contain the registry client"},
	},
	"signet-admission": concat(sqlBans, pkcs11Bans, []ban{
		{"internal/store", whyBoundary + ": the webhook keeps nothing but bounded caches in memory; storage contracts and their implementations are the server's"},
		{"internal/servercmd", whyBoundary + ": the webhook must not contain the server's command"},
		{"internal/signercmd", whyBoundary + ": the webhook must not contain signet-signer's command"},
		{"internal/cli", whyBoundary + ": the webhook decides through internal/client and internal/policy, not through the CLI"},
		{"internal/custody", whyBoundary + ": the webhook verifies and holds no private keys"},
		{"internal/signer", whyBoundary + ": the webhook verifies and holds no private keys"},
		{"internal/server", whyBoundary + ": the webhook must not contain server code"},
		{"internal/auth", whyBoundary + ": the webhook must not contain the server's token service"},
	}),
}

// exempt are packages a binary may link although a ban covers them: the
// server reaches signet-signer through the protocol package
// internal/signer/signerapi (its client), never signet-signer's service
// under internal/signer (style-anchors §6.3: the server depends on the
// "signerapi client", never on "signer internals"). signerapi must
// therefore never import the rest of internal/signer; the ban on
// internal/signer catches it if it does. (Both sides share the custody
// core, internal/custody, which the server links anyway.)
// The CLI reaches keys held by signet-signer the same way (`signet cosign
// sign --key signet-signer://…`): a crypto.Signer over the client.
//
// The CLI speaks the signing service's API through its wire package
// internal/service/serviceapi, which imports nothing of the service; the
// signer links the service's records (internal/service/record) because
// its store, internal/store/sqlstore, keeps them, and nothing else of it.
var exempt = map[string][]string{
	"signet-server": {"internal/signer/signerapi"},
	"signet":        {"internal/signer/signerapi", "internal/service/serviceapi"},
	"signet-signer": {"internal/service/record"},
}

// onlyThrough are banned packages a binary may link only because an
// exempt package imports them, and through nothing else: signerapi's
// client speaks custody's vocabulary (custody.Key, custody.Spec, its
// errors), so the CLI links the custody package with it, but no package of
// the CLI may import internal/custody itself. The core cannot hold a key
// there anyway: its storage is internal/store/sqlstore, which the CLI's
// budget bans with every SQL driver.
var onlyThrough = map[string]map[string]string{
	"signet": {"internal/custody": "internal/signer/signerapi"},
}

// isExempt reports whether the binary at root may link dep.
func isExempt(t *testing.T, root, dep string) bool {
	name := strings.TrimPrefix(rel(t, root), "cmd/")
	for _, e := range exempt[name] {
		if rel(t, dep) == e {
			return true
		}
	}
	_, ok := onlyThrough[name][rel(t, dep)]
	return ok
}

// checkOnlyThrough reports packages of the binary at root that import an
// onlyThrough package other than through its one permitted importer.
func checkOnlyThrough(t *testing.T, pkgs map[string]*goPackage, root, config string) {
	t.Helper()
	mod := modulePath(t)
	name := strings.TrimPrefix(rel(t, root), "cmd/")
	for dep, via := range onlyThrough[name] {
		for _, d := range append([]string{root}, pkgs[root].Deps...) {
			p := pkgs[d]
			if p == nil || rel(t, d) == via || under(d, mod+"/"+dep) {
				continue
			}
			for _, imp := range p.Imports {
				if imp == mod+"/"+dep {
					t.Error(violation(rel(t, root)+config, rel(t, d)+" imports "+dep,
						"dependency budget of cmd/"+name+": "+dep+" only through "+via, whyBoundary+": the CLI must not use the custody core itself"))
				}
			}
		}
	}
}

func concat(lists ...[]ban) []ban {
	var out []ban
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// resolve turns a module-relative ban path into an import path.
func (b ban) resolve(mod string) string {
	if under(b.path, "internal") || under(b.path, "cmd") {
		return mod + "/" + b.path
	}
	return b.path
}

// hasGoFiles reports whether dir holds at least one non-test .go file.
func hasGoFiles(t *testing.T, dir string) bool {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatalf("reading %s: %v", dir, err)
	}
	for _, e := range ents {
		n := e.Name()
		if !e.IsDir() && strings.HasSuffix(n, ".go") && !strings.HasSuffix(n, "_test.go") {
			return true
		}
	}
	return false
}

// chain returns the shortest import chain from root to target within pkgs,
// for messages ("cmd/signet → internal/server → database/sql").
func chain(t *testing.T, pkgs map[string]*goPackage, root, target string) string {
	prev := map[string]string{root: ""}
	queue := []string{root}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		if cur == target {
			var path []string
			for p := cur; p != ""; p = prev[p] {
				path = append(path, rel(t, p))
			}
			slices.Reverse(path)
			return strings.Join(path, " → ")
		}
		if p := pkgs[cur]; p != nil {
			for _, imp := range p.Imports {
				if _, seen := prev[imp]; !seen {
					prev[imp] = cur
					queue = append(queue, imp)
				}
			}
		}
	}
	return rel(t, root) + " → … → " + rel(t, target)
}

// checkBans reports, once per ban, the packages linked into root that the
// ban covers, with the import chain to the first of them. Bans already
// reported (seen) are skipped, so a second build configuration adds only
// what it changes; seen is updated.
func checkBans(t *testing.T, pkgs map[string]*goPackage, root, config, rule string, bans []ban, seen map[string]bool) {
	t.Helper()
	p := pkgs[root]
	if p == nil {
		t.Fatalf("%s: not in go list output%s", rel(t, root), config)
		return
	}
	if p.Error != nil {
		t.Errorf("%s: go list error%s (dependencies cannot be checked): %s", rel(t, root), config, p.Error.Err)
	}
	for _, e := range p.DepsErrors {
		t.Errorf("%s: dependency error%s (the dependency list may be incomplete): %s", rel(t, root), config, e.Err)
	}
	mod := modulePath(t)
	for _, b := range bans {
		if seen[b.path] {
			continue
		}
		var hits []string
		for _, dep := range append([]string{root}, p.Deps...) {
			if under(dep, b.resolve(mod)) && !isExempt(t, root, dep) {
				hits = append(hits, dep)
			}
		}
		if len(hits) == 0 {
			continue
		}
		seen[b.path] = true
		what := "links " + rel(t, hits[0]) + " via " + chain(t, pkgs, root, hits[0])
		if len(hits) > 1 {
			what += fmt.Sprintf(" (and %d more package(s) under %s)", len(hits)-1, b.path)
		}
		t.Error(violation(rel(t, root)+config, what, rule+": must not link "+b.path, b.why))
	}
}

// TestBinaryDependencies checks each binary's dependency budget, in the
// default build and with -tags pkcs11 (the tag that turns HSM custody on).
func TestBinaryDependencies(t *testing.T) {
	t.Parallel()
	mod := modulePath(t)
	m, _ := modInfo()

	// Every main package in the module gets the refused list, even one not
	// in the table yet.
	names := make(map[string]bool)
	for name := range binaries {
		names[name] = true
	}
	for _, p := range modulePackages(t) {
		if p.Name == "main" && strings.HasPrefix(rel(t, p.ImportPath), "cmd/") {
			names[strings.TrimPrefix(rel(t, p.ImportPath), "cmd/")] = true
		}
	}
	sorted := slices.Sorted(func(yield func(string) bool) {
		for n := range names {
			if !yield(n) {
				return
			}
		}
	})

	for _, name := range sorted {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(m.Dir, "cmd", name)
			if !hasGoFiles(t, dir) {
				t.Skipf("cmd/%s has no non-test Go files yet; its budget applies once it does", name)
			}
			root := mod + "/cmd/" + name
			bans := concat(refused, binaries[name])
			seen := make(map[string]bool)
			checkBans(t, mustList(t, defaultList()), root, "", "dependency budget of cmd/"+name, concat(bans, defaultBuildOnly[name]), seen)
			checkBans(t, mustList(t, pkcs11List()), root, " (-tags pkcs11)", "dependency budget of cmd/"+name, bans, seen)
			checkOnlyThrough(t, mustList(t, defaultList()), root, "")
			checkOnlyThrough(t, mustList(t, pkcs11List()), root, " (-tags pkcs11)")
		})
	}
}

// TestNoRefusedLibraries keeps the refused libraries out of every non-test
// package, so a library picks nothing up that a binary would later inherit.
// Test-helper packages may use them (the cjson differential test imports
// github.com/docker/go; tuftest/notarytest imports the notary library and
// with it logrus); they are kept out of binaries by
// TestTestHelpersOnlyInTests.
func TestNoRefusedLibraries(t *testing.T) {
	t.Parallel()
	pkgs := mustList(t, defaultList())
	for _, p := range modulePackages(t) {
		if isTestOnly(t, p.ImportPath) || p.Name == "main" {
			continue // helpers are test code; binaries are TestBinaryDependencies
		}
		for _, b := range refused {
			for _, dep := range p.Deps {
				if under(dep, b.path) {
					t.Error(violation(rel(t, p.ImportPath),
						"links "+dep+" via "+chain(t, pkgs, p.ImportPath, dep),
						"refused library: "+b.path, b.why))
					break
				}
			}
		}
	}
}

// TestServerBuildsWithoutCgo checks that signet-server needs no cgo: with
// CGO_ENABLED=0 every dependency still resolves, and no non-standard
// dependency has cgo files it would quietly use when cgo is available (a cgo
// SQL driver with a stub fallback, say).
func TestServerBuildsWithoutCgo(t *testing.T) {
	t.Parallel()
	const why = "the server must build with CGO_ENABLED=0 (static, distroless images); cgo is confined to PKCS#11 in signet-signer, hence the pure-Go sqlite driver (style-anchors §6.2 Storage)"
	mod := modulePath(t)
	root := mod + "/cmd/signet-server"

	noCgo := mustList(t, noCgoList())
	p := noCgo[root]
	if p == nil {
		t.Fatalf("cmd/signet-server: not in CGO_ENABLED=0 go list output")
	}
	for _, dep := range append([]string{root}, p.Deps...) {
		if d := noCgo[dep]; d != nil && d.Error != nil {
			t.Error(violation(rel(t, dep)+" (CGO_ENABLED=0)", "does not build: "+d.Error.Err,
				"cmd/signet-server builds with CGO_ENABLED=0", why))
		}
	}

	pkgs := mustList(t, defaultList())
	if pkgs[root] == nil {
		t.Fatalf("cmd/signet-server: not in go list output")
	}
	for _, dep := range pkgs[root].Deps {
		d := pkgs[dep]
		if d == nil || d.Standard || len(d.CgoFiles) == 0 {
			continue // the standard library has pure-Go fallbacks (net, os/user)
		}
		t.Error(violation(rel(t, dep), "has cgo files "+strings.Join(d.CgoFiles, ", ")+" and is linked via "+chain(t, pkgs, root, dep),
			"cmd/signet-server builds with CGO_ENABLED=0", why))
	}
}

// TestServerLinksWithoutCgo is the direct form of the check above: it
// compiles and links the server with CGO_ENABLED=0. It takes a while on a
// cold build cache, so -short skips it.
func TestServerLinksWithoutCgo(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the CGO_ENABLED=0 build of cmd/signet-server")
	}
	t.Parallel()
	out := t.TempDir()
	if _, err := goCmd([]string{"CGO_ENABLED=0"}, "build", "-o", out+string(filepath.Separator), "./cmd/signet-server"); err != nil {
		t.Error(violation("cmd/signet-server", "does not build with CGO_ENABLED=0: "+err.Error(),
			"cmd/signet-server builds with CGO_ENABLED=0",
			"the server ships as a static binary; cgo is confined to PKCS#11 in signet-signer (style-anchors §6.2 Storage)"))
	}
}

// libraryBans are packages a library package must not link, on top of the
// refused list: internal/ui, the web dashboard, reads storage through
// interfaces (the metadata store, the service's store, the audit log's
// store) that signet-server's command fills in; keys stay behind the
// signing service.
var libraryBans = map[string][]ban{
	"internal/ui": concat(sqlBans, pkcs11Bans, []ban{
		{"internal/servercmd", "the server's command wires the dashboard, not the other way round"},
	}),
}

// TestLibraryDependencies checks the budgets of libraryBans.
func TestLibraryDependencies(t *testing.T) {
	t.Parallel()
	mod := modulePath(t)
	for name, bans := range libraryBans {
		t.Run(name, func(t *testing.T) {
			root := mod + "/" + name
			seen := make(map[string]bool)
			checkBans(t, mustList(t, defaultList()), root, "", "dependency budget of "+name, bans, seen)
			if pk := mustList(t, pkcs11List()); pk[root] != nil { // listed once a binary links it
				checkBans(t, pk, root, " (-tags pkcs11)", "dependency budget of "+name, bans, seen)
			}
		})
	}
}
