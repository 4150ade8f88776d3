package service

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/audit"
	"github.com/signet-trust/signet/internal/e2e/e2etest"
	"github.com/signet-trust/signet/internal/e2e/inproc"
	"github.com/signet-trust/signet/internal/registry"
	"github.com/signet-trust/signet/internal/service/serviceapi"
)

// cosignVerify runs the real cosign verify with key on ref, offline (no
// transparency log), in the bundle form or the legacy one, and returns
// the manifest digests it vouches for; ok is false when cosign refused.
func cosignVerify(t *testing.T, dir, key, ref string, legacy bool) (digests []string, ok bool, r *e2etest.Result) {
	t.Helper()
	args := []string{e2etest.CosignBin(t), "verify", "--key", key, "--insecure-ignore-tlog=true", "--allow-http-registry"}
	if legacy {
		args = append(args, "--new-bundle-format=false")
	}
	c := e2etest.CosignCommand(dir, "")
	c.Timeout = 2 * time.Minute
	r = c.Run(t, append(args, ref)...)
	if r.Err != nil {
		t.Fatalf("cosign did not run:\n%s", r)
	}
	if r.Code != 0 {
		return nil, false, r
	}
	var out []struct {
		Critical struct {
			Image struct {
				Digest string `json:"docker-manifest-digest"`
			} `json:"image"`
		} `json:"critical"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &out); err != nil {
		t.Fatalf("cosign verify's output: %v\n%s", err, r)
	}
	for _, o := range out {
		digests = append(digests, o.Critical.Image.Digest)
	}
	return digests, true, r
}

// TestDockerTrustAndCosign: a policy with both formats. One approval signs
// the tag in Docker Content Trust with the project's delegation key and in
// cosign's formats with the project's cosign key: `docker trust inspect`
// shows the signer; the real cosign verifies the bundle referrer and the
// legacy .sig image on docker-registry (no Referrers API) with the
// project's cosign_public_key, and refuses another key; `signet verify
// --require-signer ci --cosign-key` accepts; the audit log holds one
// approval and one sign event naming both formats.
func TestDockerTrustAndCosign(t *testing.T) {
	e2etest.Need(t, "docker", "docker-registry")
	e2etest.CosignBin(t)
	admin := randomToken(t)
	reg := e2etest.StartRegistry(t, "")
	srv := inproc.StartServer(t, inproc.ServerOptions{Env: map[string]string{"SIGNET_ADMIN_TOKEN": admin}})
	tl := newTools(t, srv.URL, srv.Host, srv.CAFile)
	gun := reg.Host + "/org/app"

	aliceTok := lastLine(tl.signetOK(admin, "admin", "user", "create", "alice").Stdout)
	bobTok := lastLine(tl.signetOK(admin, "admin", "user", "create", "bob").Stdout)
	pub, cosignPub := filepath.Join(tl.dir, "ci.pub"), filepath.Join(tl.dir, "cosign.pub")
	tl.signetOK(admin, "admin", "project", "create", "app", "--repository", gun, "--signer", "ci", "--public-key-out", pub, "--cosign-key-out", cosignPub)
	var proj serviceapi.Project
	if err := json.Unmarshal([]byte(tl.signetOK(admin, "-o", "json", "admin", "project", "show", "app").Stdout), &proj); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(cosignPub); err != nil || string(b) != proj.CosignPublicKey || !strings.Contains(proj.CosignPublicKey, "BEGIN PUBLIC KEY") {
		t.Fatalf("--cosign-key-out wrote %q (%v); the project's cosign_public_key is %q", b, err, proj.CosignPublicKey)
	}
	tl.docker.OK(t, "docker", "trust", "signer", "add", "--key", pub, "ci", gun)
	tl.signetOK(admin, "admin", "policy", "create", "app", "release", "--required", "1", "--approvers", "alice", "--submitters", "bob", "--formats", "dct,cosign")
	digest := push(t, registry.Anonymous, reg.Host, "org/app", "v1.0")

	done := make(chan *e2etest.Result, 1)
	go func() {
		c := tl.signet(bobTok)
		c.Timeout = 2 * time.Minute
		done <- c.Run(t, tl.signetArgs("request", "submit", "--project", "app", "--policy", "release", gun+":v1.0", "--wait", "--timeout", "90s")...)
	}()
	id := waitForRequest(t, tl, admin, "app")
	tl.signetOK(aliceTok, "request", "approve", id)
	res := <-done
	if !res.Succeeded() {
		t.Fatalf("submit --wait:\n%s", res)
	}
	e2etest.WantOutput(t, res, "signed "+gun+":v1.0 as "+digest, "cosign signature of "+digest+" (bundle): sha256:", "cosign signature of "+digest+" (legacy): sha256-")
	var req serviceapi.Request
	if err := json.Unmarshal([]byte(tl.signetOK(admin, "-o", "json", "request", "status", id).Stdout), &req); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(req.Done, []string{"dct", "cosign"}) || len(req.Cosign) != 2 || len(req.Approvals) != 1 {
		t.Fatalf("the signed request: %+v", req)
	}

	// Docker Content Trust.
	in := tl.inspect(gun)
	if len(in.SignedTags) != 1 || in.SignedTags[0].SignedTag != "v1.0" || "sha256:"+in.SignedTags[0].Digest != digest || strings.Join(in.SignedTags[0].Signers, ",") != "ci" {
		t.Errorf("docker trust inspect signed tags: %+v, want v1.0 %s by ci", in.SignedTags, digest)
	}
	// cosign, both forms, by tag and by digest; another key is refused.
	for _, ref := range []string{gun + ":v1.0", gun + "@" + digest} {
		for _, legacy := range []bool{false, true} {
			ds, ok, r := cosignVerify(t, tl.dir, cosignPub, ref, legacy)
			if !ok || len(ds) != 1 || ds[0] != digest {
				t.Errorf("cosign verify %s (legacy form %v): %v\n%s", ref, legacy, ds, r)
			}
		}
	}
	for _, legacy := range []bool{false, true} {
		// (cosign's words for a signature that does not verify: "no
		// matching signatures" in the legacy form, "no matching
		// attestations" in the bundle form.)
		if _, ok, r := cosignVerify(t, tl.dir, pub, gun+":v1.0", legacy); ok || !strings.Contains(r.Stderr, "no matching") {
			t.Errorf("cosign verify with the delegation key (legacy form %v) accepted, or failed for another reason:\n%s", legacy, r)
		}
	}
	// signet verify: the DCT signer and the cosign key agree on the digest.
	hex := strings.TrimPrefix(digest, "sha256:")
	if r := tl.verify("--require-signer", "ci", "--cosign-key", cosignPub, gun+":v1.0"); !r.Succeeded() || !strings.Contains(r.Output(), hex) {
		t.Errorf("signet verify --require-signer ci --cosign-key:\n%s", r)
	}
	if r := tl.verify("--cosign-key", cosignPub, gun+":v1.0"); !r.Succeeded() || !strings.Contains(r.Output(), hex) {
		t.Errorf("signet verify --cosign-key:\n%s", r)
	}

	// One audit trail: one approval, one sign event with both formats.
	var types []audit.EventType
	var sign audit.Event
	for _, e := range auditEvents(t, srv.DataDir) {
		if e.Subject.RequestID == id {
			types = append(types, e.Type)
			if e.Type == audit.RequestSign {
				sign = e
			}
		}
	}
	if !slices.Equal(types, []audit.EventType{audit.RequestSubmit, audit.RequestApprove, audit.RequestSign}) {
		t.Errorf("audit events of the request: %v", types)
	}
	if !slices.Equal(sign.Formats, []string{"dct", "cosign"}) || sign.Subject.Digest != digest || sign.Subject.Role != "targets/ci" || len(sign.Roles) == 0 || len(sign.Cosign) != 2 {
		t.Errorf("sign event: %+v", sign)
	}
	for _, c := range sign.Cosign {
		if c.Digest != digest || c.KeyID != proj.CosignKeyID || c.Existing {
			t.Errorf("sign event's cosign signature: %+v", c)
		}
	}
}
