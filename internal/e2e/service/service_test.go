package service

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/e2e/e2etest"
	"github.com/signet-trust/signet/internal/e2e/inproc"
	"github.com/signet-trust/signet/internal/registry"
	"github.com/signet-trust/signet/internal/service/serviceapi"
)

// TestDockerTrust is the contract with the real clients: an admin sets up
// users, a project and a policy with `signet admin`; the repository owner
// delegates to the project's key with `docker trust signer add`; a
// submission with `signet request submit --wait` is approved with `signet
// request approve`; `docker trust inspect`, `notary list` and `signet
// verify --require-signer` see the signature.
func TestDockerTrust(t *testing.T) {
	e2etest.Need(t, "docker", "notary", "docker-registry")
	admin := randomToken(t)
	reg := e2etest.StartRegistry(t, "")
	srv := inproc.StartServer(t, inproc.ServerOptions{Env: map[string]string{"SIGNET_ADMIN_TOKEN": admin}})
	tl := newTools(t, srv.URL, srv.Host, srv.CAFile)
	gun := reg.Host + "/org/app"

	aliceTok := lastLine(tl.signetOK(admin, "admin", "user", "create", "alice", "--email", "alice@example.com").Stdout)
	bobTok := lastLine(tl.signetOK(admin, "admin", "user", "create", "bob").Stdout)
	if !strings.HasPrefix(aliceTok, "sgn_") || !strings.HasPrefix(bobTok, "sgn_") {
		t.Fatalf("tokens printed: %q %q", aliceTok, bobTok)
	}
	r := tl.signetOK(aliceTok, "admin", "whoami")
	e2etest.WantOutput(t, r, "alice, user")
	r = tl.signetFail(aliceTok, "admin", "user", "create", "mallory")
	e2etest.WantOutput(t, r, "this needs an admin (FORBIDDEN)")

	pub := filepath.Join(tl.dir, "ci.pub")
	tl.signetOK(admin, "admin", "project", "create", "app", "--repository", gun, "--signer", "ci", "--public-key-out", pub)
	pem, err := os.ReadFile(pub)
	if err != nil || !strings.Contains(string(pem), "BEGIN PUBLIC KEY") || !strings.Contains(string(pem), "role: ci") {
		t.Fatalf("the project's public key file:\n%s", pem)
	}
	r = tl.signetOK(admin, "admin", "project", "show", "app")
	e2etest.WantOutput(t, r, "docker trust signer add --key ci.pub ci "+gun)

	// The owner delegates to the project's key exactly as for a person.
	r = tl.docker.OK(t, "docker", "trust", "signer", "add", "--key", pub, "ci", gun)
	e2etest.WantOutput(t, r, "Successfully added signer: ci to "+gun)
	r = tl.signetOK(admin, "-o", "json", "admin", "project", "show", "app")
	var proj serviceapi.Project
	if err := json.Unmarshal([]byte(r.Stdout), &proj); err != nil || proj.State == nil || !proj.State.Ready || !proj.State.ServerManagedSnapshot {
		t.Fatalf("project after docker trust signer add: %v\n%s", err, r)
	}
	if in := tl.inspect(gun); len(in.Signers) != 1 || in.Signers[0].Name != "ci" || in.Signers[0].Keys[0].ID != proj.KeyID[:len(in.Signers[0].Keys[0].ID)] {
		t.Errorf("docker trust inspect signers: %+v, want ci with key %s", in.Signers, proj.KeyID)
	}

	tl.signetOK(admin, "admin", "policy", "create", "app", "release", "--required", "1", "--approvers", "alice", "--submitters", "bob", "--tags", "v[0-9.]+")
	digest := push(t, registry.Anonymous, reg.Host, "org/app", "v1.0")

	// Submit and wait; approve meanwhile.
	done := make(chan *e2etest.Result, 1)
	go func() {
		c := tl.signet(bobTok)
		c.Timeout = 2 * time.Minute
		done <- c.Run(t, tl.signetArgs("request", "submit", "--project", "app", "--policy", "release", gun+":v1.0", "--digest", digest, "--wait", "--timeout", "90s")...)
	}()
	id := waitForRequest(t, tl, admin, "app")
	r = tl.signetFail(bobTok, "request", "approve", id)
	e2etest.WantOutput(t, r, "bob is not an approver of policy app/release")
	tl.signetOK(aliceTok, "request", "approve", id, "--comment", "release 1.0")
	res := <-done
	if !res.Succeeded() {
		t.Fatalf("submit --wait:\n%s", res)
	}
	e2etest.WantOutput(t, res, "awaiting approval (0 of 1)", "signed "+gun+":v1.0 as "+digest)

	in := tl.inspect(gun)
	if len(in.SignedTags) != 1 || in.SignedTags[0].SignedTag != "v1.0" || "sha256:"+in.SignedTags[0].Digest != digest || strings.Join(in.SignedTags[0].Signers, ",") != "ci" {
		t.Errorf("docker trust inspect signed tags: %+v, want v1.0 %s by ci", in.SignedTags, digest)
	}
	hex := strings.TrimPrefix(digest, "sha256:")
	for _, role := range []string{"targets/ci", "targets/releases"} {
		r := tl.notary("list", gun, "--roles", role)
		if !regexp.MustCompile(`(?m)^v1\.0\s+` + hex + `\s+\d+\s+` + regexp.QuoteMeta(role) + `\s*$`).MatchString(r.Stdout) {
			t.Errorf("notary list --roles %s:\n%s", role, r)
		}
	}
	if r := tl.verify("--require-signer", "ci", gun+":v1.0"); !r.Succeeded() || !strings.Contains(r.Output(), hex) {
		t.Errorf("signet verify --require-signer ci:\n%s", r)
	}
	if r := tl.verify("--require-signer", "alice", gun+":v1.0"); r.Code != 2 || !strings.Contains(r.Output(), "not a signer of") {
		t.Errorf("signet verify --require-signer alice (not a signer of the repository): exit %d\n%s", r.Code, r)
	}

	// A denied request: --wait exits non-zero, nothing is signed.
	push(t, registry.Anonymous, reg.Host, "org/app", "v2.0")
	go func() {
		c := tl.signet(bobTok)
		c.Timeout = 2 * time.Minute
		done <- c.Run(t, tl.signetArgs("request", "submit", "--project", "app", "--policy", "release", gun+":v2.0", "--wait", "--timeout", "90s")...)
	}()
	id = waitForRequest(t, tl, admin, "app")
	tl.signetFail(aliceTok, "request", "deny", id) // a denial needs a comment
	tl.signetOK(aliceTok, "request", "deny", id, "--comment", "not this one")
	res = <-done
	if res.Succeeded() || !strings.Contains(res.Output(), "denied by alice: not this one") {
		t.Errorf("submit --wait of a denied request:\n%s", res)
	}
	if r := tl.verify(gun + ":v2.0"); r.Succeeded() {
		t.Errorf("a denied tag verifies:\n%s", r)
	}
	r = tl.signetOK(admin, "request", "list", "--project", "app", "--csv")
	if !strings.Contains(r.Stdout, ",denied,") || !strings.Contains(r.Stdout, ",signed,") {
		t.Errorf("CSV export:\n%s", r)
	}
	r = tl.signetOK(admin, "request", "status", id)
	e2etest.WantOutput(t, r, "denied: denied by alice: not this one")
}

// waitForRequest returns the ID of the request of project awaiting
// approval, once it appears.
func waitForRequest(t *testing.T, tl *tools, token, project string) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		r := tl.signet(token).Run(t, tl.signetArgs("-o", "json", "request", "list", "--project", project, "--status", "awaiting_approval")...)
		var rs []serviceapi.Request
		if r.Succeeded() && json.Unmarshal([]byte(r.Stdout), &rs) == nil && len(rs) == 1 {
			return rs[0].ID
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("no request of %s awaits approval", project)
	return ""
}

var _ = fmt.Sprint
