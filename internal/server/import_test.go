package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/notaryapi"
	"github.com/signet-trust/signet/internal/server"
	"github.com/signet-trust/signet/internal/tuf"
	"github.com/signet-trust/signet/internal/tuf/tuftest"
)

// source is a repository as another Notary server holds it: its whole
// root chain and its current state, every key (the server's timestamp key
// included) in the test's hands.
type source struct {
	t     *testing.T
	now   func() time.Time // the source server's clock
	r     *tuftest.Repo
	roots [][]byte
}

// newSource builds a repository with a delegation and a root key rotation
// (root versions 1 and 2).
func newSource(t *testing.T, clock func() time.Time) *source {
	t.Helper()
	now := clock()
	r := tuftest.NewRepo(t, gun, now)
	r.Delegate("targets/releases", []string{""})
	r.AddTarget("targets/releases", "v1", []byte("one"))
	r.SignAll()
	s := &source{t: t, now: clock, r: r, roots: [][]byte{r.Signed[tuf.RoleRoot]}}
	old := r.Keys[tuf.RoleRoot][0]
	next := tuftest.NewRootKey(t, gun, now)
	r.SetRoleKeys(tuf.RoleRoot, next)
	r.Bump(tuf.RoleRoot)
	s.roots = append(s.roots, r.Sign(tuf.RoleRoot, old, next))
	s.resign()
	return s
}

// resign signs a new snapshot and timestamp over the current files.
func (s *source) resign() {
	s.r.Bump(tuf.RoleSnapshot)
	s.r.SignSnapshot()
	s.resignTimestamp()
}

// resignTimestamp is what the source server does when its timestamp
// expires.
func (s *source) resignTimestamp() {
	s.r.Bump(tuf.RoleTimestamp)
	s.r.Timestamp.Expires = s.now().AddDate(0, 0, 14)
	s.r.SignTimestamp()
}

// release publishes a new target in targets/releases.
func (s *source) release(name string) {
	s.r.AddTarget("targets/releases", name, []byte(name))
	s.r.Bump("targets/releases")
	s.r.Sign("targets/releases")
	s.resign()
}

// files is what signet mirror sends: every root, the current rest.
func (s *source) files() []notaryapi.ImportFile {
	var out []notaryapi.ImportFile
	for _, b := range s.roots {
		out = append(out, notaryapi.ImportFile{Role: tuf.RoleRoot, Data: b})
	}
	for _, role := range []string{tuf.RoleTimestamp, tuf.RoleSnapshot, tuf.RoleTargets, "targets/releases"} {
		out = append(out, notaryapi.ImportFile{Role: role, Data: s.r.Signed[role]})
	}
	return out
}

func (e *env) importFiles(files []notaryapi.ImportFile) resp {
	e.t.Helper()
	b, err := json.Marshal(notaryapi.ImportRequest{Files: files})
	if err != nil {
		e.t.Fatal(err)
	}
	return e.do(http.MethodPost, notaryapi.ImportPath(gun), bytes.NewReader(b), "application/json")
}

func mustImport(t *testing.T, e *env, files []notaryapi.ImportFile, outcome string) notaryapi.ImportResult {
	t.Helper()
	r := e.importFiles(files)
	if r.status != http.StatusOK {
		t.Fatalf("import: %d %s", r.status, r.body)
	}
	var res notaryapi.ImportResult
	if err := json.Unmarshal(r.body, &res); err != nil {
		t.Fatalf("import answer %s: %v", r.body, err)
	}
	if res.Outcome != outcome || res.GUN != gun {
		t.Fatalf("import outcome %q for %q, want %q: %s", res.Outcome, res.GUN, outcome, r.body)
	}
	return res
}

// everything is what the server serves of the repository: every root
// version, the current files, and the changefeed.
func (e *env) everything() map[string]string {
	out := map[string]string{}
	base := notaryapi.TUFPath(gun)
	for _, p := range []string{"1.root", "2.root", "3.root", "root", "targets", "targets/releases", "snapshot", "timestamp"} {
		got := e.get(base + p + ".json")
		out[p] = fmt.Sprintf("%d %x", got.status, got.body)
	}
	out["changefeed"] = string(e.get(notaryapi.ChangefeedPath(gun) + "?records=100").body)
	return out
}

func sameState(t *testing.T, what string, before, after map[string]string) {
	t.Helper()
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s changed %s", what, k)
		}
	}
}

func TestImportHistory(t *testing.T) {
	e := newEnv(t)
	src := newSource(t, e.clock.Now)

	res := mustImport(t, e, src.files(), notaryapi.ImportAdded)
	want := []notaryapi.ImportedFile{{Role: "root", Version: 1}, {Role: "root", Version: 2}, {Role: "snapshot", Version: 2},
		{Role: "targets", Version: 1}, {Role: "targets/releases", Version: 1}, {Role: "timestamp", Version: 2}}
	if !slices.Equal(res.Added, want) {
		t.Errorf("added %v, want %v", res.Added, want)
	}
	if res.Current["root"] != 2 || res.Current["timestamp"] != 2 {
		t.Errorf("current %v", res.Current)
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "notary key rotate "+gun+" timestamp -r") {
		t.Errorf("warnings %q: want the timestamp key to move", res.Warnings)
	}

	// Byte for byte, by every route a client uses.
	base := notaryapi.TUFPath(gun)
	for i, b := range src.roots {
		if got := e.get(fmt.Sprintf("%s%d.root.json", base, i+1)); got.status != 200 || !bytes.Equal(got.body, b) {
			t.Errorf("root version %d: %d, identical %v", i+1, got.status, bytes.Equal(got.body, b))
		}
	}
	for role, b := range src.r.Files() {
		for _, p := range []string{base + role + ".json", notaryapi.ChecksumPath(gun, role, tuf.NewFileMeta(b).Hashes["sha256"])} {
			if got := e.get(p); got.status != 200 || !bytes.Equal(got.body, b) {
				t.Errorf("%s: %d, identical %v", p, got.status, bytes.Equal(got.body, b))
			}
		}
	}
	v := e.verifyRepo(gun)
	if _, ok := v.RoleTarget("targets/releases", "v1"); !ok {
		t.Error("v1 not readable after the import")
	}
	// The server holds no timestamp key: it says so, and the refresher
	// leaves the imported timestamp alone even when it expires.
	if got := e.get(notaryapi.KeyPath(gun, tuf.RoleTimestamp)); got.status != 404 || !strings.Contains(string(got.body), "timestamp -r") {
		t.Errorf("GET timestamp.key: %d %s", got.status, got.body)
	}
	e.clock.Add(15 * 24 * time.Hour)
	if n := server.RefreshDue(e.srv, context.Background()); n != 0 {
		t.Errorf("the refresher re-signed %d repositories without their key", n)
	}
	if got := e.get(base + "timestamp.json"); !bytes.Equal(got.body, src.r.Signed[tuf.RoleTimestamp]) {
		t.Errorf("the imported timestamp is no longer served: %d", got.status)
	}

	// Again: nothing new, nothing stored.
	before := e.everything()
	res = mustImport(t, e, src.files(), notaryapi.ImportUpToDate)
	if len(res.Added) != 0 {
		t.Errorf("second import added %v", res.Added)
	}
	if !strings.Contains(strings.Join(res.Warnings, "\n"), "timestamp version 2 expired") {
		t.Errorf("an expired timestamp is not reported: %q", res.Warnings)
	}
	sameState(t, "an import of the same history", before, e.everything())

	// The source moved on (a release, then its server re-signed the
	// timestamp): only the newer versions are added.
	src.release("v2")
	res = mustImport(t, e, src.files(), notaryapi.ImportAdded)
	want = []notaryapi.ImportedFile{{Role: "snapshot", Version: 3}, {Role: "targets/releases", Version: 2}, {Role: "timestamp", Version: 3}}
	if !slices.Equal(res.Added, want) {
		t.Errorf("added %v, want %v", res.Added, want)
	}
	src.resignTimestamp()
	res = mustImport(t, e, src.files(), notaryapi.ImportAdded)
	if want := []notaryapi.ImportedFile{{Role: "timestamp", Version: 4}}; !slices.Equal(res.Added, want) {
		t.Errorf("added %v, want %v", res.Added, want)
	}
	if _, ok := e.verifyRepo(gun).RoleTarget("targets/releases", "v2"); !ok {
		t.Error("v2 not readable after the second import")
	}
}

// The owner moves the timestamp key as notary key rotate -r does; the
// repository then lives here, and mirroring the old source again changes
// nothing, or is refused when both sides changed.
func TestImportThenMoveTimestampKey(t *testing.T) {
	e := newEnv(t)
	src := newSource(t, e.clock.Now)
	mustImport(t, e, src.files(), notaryapi.ImportAdded)
	oldFiles := src.files()

	// Publishing needs a timestamp the server cannot sign yet.
	here := cloneRepo(t, src.r)
	here.AddTarget(tuf.RoleTargets, "here", []byte("here"))
	here.Bump(tuf.RoleTargets)
	here.Sign(tuf.RoleTargets)
	here.Bump(tuf.RoleSnapshot)
	here.SignSnapshot()
	wantError(t, up(e, here, "targets", "snapshot"), 400, "INVALID_UPDATE", "no  timestamp keys exist on the server")

	// notary key rotate GUN timestamp -r: a new server key, a root listing it.
	r := e.do(http.MethodPost, notaryapi.KeyPath(gun, tuf.RoleTimestamp), nil, "")
	if r.status != 200 {
		t.Fatalf("rotate: %d %s", r.status, r.body)
	}
	var tsKey keys.PublicKey
	if err := json.Unmarshal(r.body, &tsKey); err != nil {
		t.Fatal(err)
	}
	here.SetRoleKeys(tuf.RoleTimestamp, tuftest.Key{Key: &tsKey})
	here.Bump(tuf.RoleRoot)
	here.Sign(tuf.RoleRoot)
	here.Bump(tuf.RoleSnapshot)
	here.SignSnapshot()
	mustUp(t, e, here, "root", "targets", "snapshot")
	v := e.verifyRepo(gun)
	if _, ok := v.RoleTarget(tuf.RoleTargets, "here"); !ok || v.Timestamp().Signed.Version != 3 {
		t.Fatalf("after the move: target here %v, timestamp version %d", ok, v.Timestamp().Signed.Version)
	}

	before := e.everything()
	res := mustImport(t, e, oldFiles, notaryapi.ImportNewerHere)
	if len(res.Added) != 0 || len(res.Warnings) != 0 {
		t.Errorf("re-import after the move: added %v, warnings %q", res.Added, res.Warnings)
	}
	sameState(t, "a re-import after the move", before, e.everything())

	// The old server re-signed its timestamp at version 3 too: a conflict.
	src.resignTimestamp()
	wantError(t, e.importFiles(src.files()), 400, "INVALID_UPDATE", "timestamp version 3 differs")
	sameState(t, "a conflicting import", before, e.everything())

	// The source also got a new release: it is newer on targets/releases,
	// this server on root and targets.
	src.release("there")
	wantError(t, e.importFiles(src.files()), 400, "INVALID_UPDATE", "the histories diverged")
	sameState(t, "a diverged import", before, e.everything())
}

func TestImportRefusals(t *testing.T) {
	now := time.Now().UTC()
	clock := func() time.Time { return now }
	src := newSource(t, clock)
	other := newSource(t, clock) // another repository of the same name
	files := src.files()
	with := func(edit func(fs []notaryapi.ImportFile) []notaryapi.ImportFile) []notaryapi.ImportFile {
		fs := slices.Clone(files)
		return edit(fs)
	}
	replace := func(role string, data []byte) []notaryapi.ImportFile {
		return with(func(fs []notaryapi.ImportFile) []notaryapi.ImportFile {
			for i := range fs {
				if fs[i].Role == role {
					fs[i].Data = data
				}
			}
			return fs
		})
	}
	// A root version 2 that root version 1's keys did not sign.
	forged := cloneRepo(t, src.r)
	forgedRoot := forged.Sign(tuf.RoleRoot, forged.Keys[tuf.RoleRoot]...)
	brokenChain := with(func(fs []notaryapi.ImportFile) []notaryapi.ImportFile {
		fs[1].Data = forgedRoot
		return fs
	})
	// An extra role, and a listed delegation left out.
	extra := tuftest.NewTargets(now.AddDate(1, 0, 0))
	extraB, err := tuf.Sign(extra, src.r.Keys[tuf.RoleTargets]...)
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name        string
		body        []byte
		contentType string
		status      int
		code        string
		detail      string
	}{
		{"broken root chain", body(t, brokenChain), "", 400, "INVALID_UPDATE", "root version 2 (after version 1): could not rotate trust"},
		{"the newest root version missing", body(t, with(func(fs []notaryapi.ImportFile) []notaryapi.ImportFile { return slices.Delete(fs, 1, 2) })), "", 400, "INVALID_UPDATE", "snapshot does not list the trusted root"},
		{"root versions with a gap", body(t, append(with(func(fs []notaryapi.ImportFile) []notaryapi.ImportFile { return fs }), notaryapi.ImportFile{Role: "root", Data: tuftest.Swizzle(t, src.roots[1], func(m map[string]any) { m["version"] = 4 })})), "", 400, "INVALID_UPDATE", "lacks version 3"},
		{"snapshot not the timestamp's", body(t, replace(tuf.RoleSnapshot, other.r.Signed[tuf.RoleSnapshot])), "", 400, "INVALID_UPDATE", "snapshot does not match the timestamp"},
		{"targets not the snapshot's", body(t, replace(tuf.RoleTargets, other.r.Signed[tuf.RoleTargets])), "", 400, "INVALID_UPDATE", "targets does not match the snapshot"},
		{"timestamp signed by another key", body(t, replace(tuf.RoleTimestamp, other.r.Signed[tuf.RoleTimestamp])), "", 400, "INVALID_UPDATE", "timestamp:"},
		{"a delegation the snapshot lists is missing", body(t, files[:len(files)-1]), "", 400, "INVALID_UPDATE", "does not carry it"},
		{"a role not in the state", body(t, append(slices.Clone(files), notaryapi.ImportFile{Role: "targets/other", Data: extraB})), "", 400, "INVALID_UPDATE", "targets/other is not part of the repository's state"},
		{"no timestamp", body(t, files[:len(files)-4]), "", 400, "INVALID_UPDATE", `"Missing":"timestamp"`},
		{"a role twice", body(t, append(slices.Clone(files), files[2])), "", 400, "MALFORMED_UPLOAD", "appears twice"},
		{"a root version twice", body(t, append(slices.Clone(files), files[0])), "", 400, "MALFORMED_UPLOAD", "root version 1 appears twice"},
		{"an invalid role", body(t, append(slices.Clone(files), notaryapi.ImportFile{Role: "targets/../root", Data: extraB})), "", 400, "INVALID_ROLE", "targets/../root"},
		{"not metadata", body(t, replace(tuf.RoleTargets, []byte("{}"))), "", 400, "MALFORMED_JSON", "targets"},
		{"not JSON", []byte("files=1"), "", 400, "MALFORMED_UPLOAD", "not the JSON"},
		{"unknown field", []byte(`{"files":[],"extra":1}`), "", 400, "MALFORMED_UPLOAD", "unknown field"},
		{"not JSON content", body(t, files), "multipart/form-data", 400, "MALFORMED_UPLOAD", "Content-Type: application/json"},
		{"too large", bytes.Repeat([]byte(" "), 2<<20), "", 400, "MALFORMED_UPLOAD", "larger than the server's limit"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			before := e.everything()
			ct := c.contentType
			if ct == "" {
				ct = "application/json"
			}
			r := e.do(http.MethodPost, notaryapi.ImportPath(gun), bytes.NewReader(c.body), ct)
			wantError(t, r, c.status, c.code, c.detail)
			sameState(t, "a refused import", before, e.everything())
			if got := e.get(notaryapi.CurrentPath(gun, tuf.RoleRoot)); got.status != 404 {
				t.Errorf("root stored after a refused import: %d", got.status)
			}
		})
	}

	t.Run("a repository of the same name here", func(t *testing.T) {
		e := newEnv(t)
		mustImport(t, e, other.files(), notaryapi.ImportAdded)
		before := e.everything()
		wantError(t, e.importFiles(files), 400, "INVALID_UPDATE", "root version 1 differs")
		sameState(t, "a conflicting import", before, e.everything())
	})
	t.Run("invalid GUN", func(t *testing.T) {
		e := newEnv(t)
		r := e.do(http.MethodPost, notaryapi.ImportPrefix+"a*b", bytes.NewReader(body(t, files)), "application/json")
		wantError(t, r, 400, "INVALID_GUN", "")
	})
	t.Run("GET is not an import", func(t *testing.T) {
		e := newEnv(t)
		wantError(t, e.get(notaryapi.ImportPath(gun)), 404, "METADATA_NOT_FOUND", "")
	})
}

func body(t *testing.T, files []notaryapi.ImportFile) []byte {
	t.Helper()
	b, err := json.Marshal(notaryapi.ImportRequest{Files: files})
	if err != nil {
		t.Fatal(err)
	}
	return b
}
