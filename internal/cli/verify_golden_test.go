package cli

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/pem"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/tuf"
	"github.com/signet-trust/signet/internal/tuf/tuftest"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata")

// Repositories of the verify golden test, served as they are by a static
// trust server.
const (
	goldenDockerGUN  = "example.com/verify/docker"
	goldenSignersGUN = "example.com/verify/signers"
	goldenEmptyGUN   = "example.com/verify/empty"
	goldenMissingGUN = "example.com/verify/missing"
)

func goldenDigest(content string) string {
	return "sha256:" + hex.EncodeToString(tuf.NewFileMeta([]byte(content)).Hashes["sha256"])
}

// goldenRepos builds the repositories: docker's resolution (releases over
// targets), named signers that agree and disagree with targets/releases, a
// signer limited to other paths, a delegated signer that never published,
// and a repository with no targets.
func goldenRepos(t *testing.T, now time.Time) map[string]*tuftest.Repo {
	docker := tuftest.NewRepo(t, goldenDockerGUN, now)
	docker.Delegate(releasesRole, []string{""})
	docker.AddTarget(tuf.RoleTargets, "v1", []byte("admin v1"))
	docker.AddTarget(releasesRole, "v1", []byte("released v1"))
	docker.AddTarget(releasesRole, "v2", []byte("released v2"))
	docker.AddTarget(tuf.RoleTargets, "v3", []byte("admin v3"))
	docker.AddTarget(tuf.RoleTargets, "latest", []byte("admin latest"))
	docker.SignAll()

	s := tuftest.NewRepo(t, goldenSignersGUN, now)
	alice, bob := tuftest.NewKey(t), tuftest.NewKey(t)
	s.Delegate(releasesRole, []string{""}, alice, bob)
	s.Delegate("targets/alice", []string{""}, alice)
	s.Delegate("targets/bob", []string{""}, bob)
	s.Delegate("targets/carol", []string{""})
	delete(s.Targets, "targets/carol") // delegated, never published
	s.Delegate("targets/dave", []string{"other/"})
	for _, e := range []struct{ role, tag, content string }{
		{"targets/alice", "v1", "X"}, {"targets/bob", "v1", "X"}, {releasesRole, "v1", "X"},
		{"targets/alice", "v2", "X"}, {"targets/bob", "v2", "Y"}, {releasesRole, "v2", "Y"},
		{"targets/alice", "v3", "X"}, {releasesRole, "v3", "Z"},
		{releasesRole, "v4", "W"},
		{"targets/dave", "v6", "D"},
		{"targets/bob", "v7", "Y"},
	} {
		s.AddTarget(e.role, e.tag, []byte(e.content))
	}
	s.SignAll()

	empty := tuftest.NewRepo(t, goldenEmptyGUN, now)
	empty.SignAll()
	return map[string]*tuftest.Repo{goldenDockerGUN: docker, goldenSignersGUN: s, goldenEmptyGUN: empty}
}

// TestVerifyGolden runs `signet verify` over every rule it has — docker's
// resolution, required signers and thresholds, targets/releases pointing
// elsewhere, digests, delegated paths, usage errors, missing trust data —
// and compares exit codes, standard output and standard error with
// testdata/verify.golden, which was written by the implementation before
// the verification policy moved into internal/policy: the move must not
// change a byte a pipeline could see. Refresh with -update only for a
// deliberate change.
func TestVerifyGolden(t *testing.T) {
	now := time.Now()
	repos := goldenRepos(t, now)
	mux := http.NewServeMux()
	for _, gun := range []string{goldenDockerGUN, goldenSignersGUN, goldenEmptyGUN, goldenMissingGUN} {
		srv := tuftest.NewServer(gun)
		if r := repos[gun]; r != nil {
			srv.Publish(r)
		}
		mux.Handle("/v2/"+gun+"/", srv)
	}
	hs := httptest.NewTLSServer(mux)
	defer hs.Close()
	host := strings.TrimPrefix(hs.URL, "https://")

	home := t.TempDir()
	cfg := filepath.Join(home, "docker")
	tlsDir := filepath.Join(cfg, "tls", host)
	if err := os.MkdirAll(tlsDir, 0o700); err != nil {
		t.Fatal(err)
	}
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: hs.Certificate().Raw})
	if err := os.WriteFile(filepath.Join(tlsDir, "ca.crt"), ca, 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"HOME": home, "DOCKER_CONFIG": cfg, "DOCKER_CONTENT_TRUST_SERVER": hs.URL}

	x, y := goldenDigest("X"), goldenDigest("Y")
	cases := [][]string{
		// Docker's resolution: targets/releases, then targets.
		{"verify", goldenDockerGUN + ":v1"},
		{"verify", goldenDockerGUN + ":v2"},
		{"verify", goldenDockerGUN + ":v3"},
		{"verify", goldenDockerGUN},
		{"verify", goldenDockerGUN + ":nope"},
		{"-o", "json", "verify", goldenDockerGUN + ":v1"},
		{"verify", goldenDockerGUN + "@" + goldenDigest("released v2")},
		{"verify", goldenDockerGUN + "@" + goldenDigest("admin v1")},
		{"-o", "json", "verify", goldenDockerGUN + "@" + goldenDigest("admin v3")},
		{"verify", goldenDockerGUN + ":v1@" + goldenDigest("released v1")},
		{"verify", goldenDockerGUN + ":v1@" + goldenDigest("admin v1")},
		// Required signers.
		{"verify", "--require-signer", "alice,bob", goldenSignersGUN + ":v1"},
		{"-o", "json", "verify", "--require-signer", "alice,bob", goldenSignersGUN + ":v1"},
		{"verify", "--require-signer", "alice,bob", goldenSignersGUN + ":v2"},
		{"verify", "--require-signer", "alice,bob", "--threshold", "1", goldenSignersGUN + ":v2"},
		{"verify", "--require-signer", "alice", goldenSignersGUN + ":v2"},
		{"-o", "json", "verify", "--require-signer", "alice", goldenSignersGUN + ":v2"},
		{"verify", "--require-signer", "alice,bob", "--threshold", "1", goldenSignersGUN + ":v3"},
		{"verify", "--require-signer", "alice,bob", goldenSignersGUN + ":v3"},
		{"verify", "--require-signer", "alice", goldenSignersGUN + ":v4"},
		{"verify", "--require-signer", "alice", goldenSignersGUN + ":nope"},
		{"verify", "--require-signer", "carol", goldenSignersGUN + ":v1"},
		{"verify", "--require-signer", "alice,mallory", goldenSignersGUN + ":v1"},
		{"verify", "--require-signer", "dave", goldenSignersGUN + ":v6"},
		{"verify", "--require-signer", "bob", goldenSignersGUN + ":v7"},
		{"verify", goldenSignersGUN + ":v7"},
		{"verify", "--require-signer", "targets/alice", "--require-signer", "alice", goldenSignersGUN + ":v1"},
		{"verify", "--require-signer", " bob , alice ", "--threshold", "2", goldenSignersGUN + ":v1"},
		{"verify", "--require-signer", "alice", goldenSignersGUN + "@" + x},
		{"-o", "json", "verify", "--require-signer", "alice", goldenSignersGUN + "@" + x},
		{"verify", "--require-signer", "alice,bob", goldenSignersGUN + "@" + y},
		{"verify", "--require-signer", "bob", goldenSignersGUN + "@" + y},
		{"verify", goldenSignersGUN + "@" + y},
		{"verify", "--require-signer", "alice", goldenSignersGUN + ":v1@" + x},
		{"verify", "--require-signer", "alice", goldenSignersGUN + ":v2@" + y},
		// Bad command lines.
		{"verify", "--threshold", "1", goldenSignersGUN + ":v1"},
		{"verify", "--require-signer", "releases", goldenSignersGUN + ":v1"},
		{"verify", "--require-signer", "targets/releases", goldenSignersGUN + ":v1"},
		{"verify", "--require-signer", "Alice", goldenSignersGUN + ":v1"},
		{"verify", "--require-signer", "alice,bob", "--threshold", "3", goldenSignersGUN + ":v1"},
		{"verify", "--require-signer", "alice", "--threshold", "-1", goldenSignersGUN + ":v1"},
		{"verify", "--require-signer", "alice", "--threshold", "0", goldenSignersGUN + ":v1"},
		{"verify", "--require-signer", "alice,mallory", goldenSignersGUN + ":v1"},
		{"-o", "json", "verify", "--require-signer", "alice", "--threshold", "3", goldenSignersGUN + ":v1"},
		{"verify", "--require-signer", ",", goldenSignersGUN + ":v1"},
		{"verify", "not a reference"},
		// No trust data.
		{"verify", goldenEmptyGUN + ":v1"},
		{"verify", goldenEmptyGUN + "@" + x},
		{"verify", "--require-signer", "alice", goldenEmptyGUN + ":v1"},
		{"verify", goldenMissingGUN + ":v1"},
		{"verify", goldenMissingGUN + "@" + x},
		{"-o", "json", "verify", "--require-signer", "alice", goldenMissingGUN + ":v1"},
	}
	var got bytes.Buffer
	for _, args := range cases {
		var out, errOut bytes.Buffer
		code := Main(context.Background(), args, Env{Getenv: func(k string) string { return env[k] }, Stdout: &out, Stderr: &errOut})
		// Root keys are made afresh for each run: their IDs are masked.
		stderr := rootKeyID.ReplaceAllString(errOut.String(), "${1}<root key ID>")
		fmt.Fprintf(&got, "=== signet %s\nexit %d\n--- stdout\n%s--- stderr\n%s\n", strings.Join(args, " "), code, out.String(), stderr)
	}
	golden := filepath.Join("testdata", "verify.golden")
	if *updateGolden {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(want, got.Bytes()) {
		t.Errorf("signet verify differs from %s:\n%s", golden, lineDiff(string(want), got.String()))
	}
}

var rootKeyID = regexp.MustCompile(`(root key )[0-9a-f]{64}`)

// lineDiff lists the lines that differ, by position.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "line %d:\n  want %q\n  got  %q\n", i+1, wl, gl)
		}
	}
	return b.String()
}
