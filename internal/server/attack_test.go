package server_test

// Server-side attack suite: uploads that carry an attack of the TUF
// specification or of Notary's threat model (docs/design/threat-model.md
// maps each to its test). The server must refuse each with the reference's
// error code and validation Name, and what it stores and serves must not
// change.

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/tuf"
	"github.com/signet-trust/signet/internal/tuf/tuftest"
)

// delegates are the signers of the attack repository: alice and bob both
// sign targets/releases (as docker trust sets it up) and each has a role of
// their own; team may sign only under "team/".
type delegates struct{ alice, bob, team tuftest.Key }

// attackRoles are the roles the attack repository stores.
var attackRoles = []string{"root", "targets", "snapshot", "timestamp", "targets/releases", "targets/alice", "targets/bob", "targets/team"}

// attackRepo publishes the attack repository; setup, if not nil, changes
// it before it is signed.
func attackRepo(t *testing.T, e *env, serverSnapshot bool, setup func(t *testing.T, r *tuftest.Repo, d delegates)) (*tuftest.Repo, delegates) {
	t.Helper()
	r := e.newClientRepo(gun, serverSnapshot)
	d := delegates{tuftest.NewKey(t), tuftest.NewKey(t), tuftest.NewKey(t)}
	r.Delegate("targets/releases", []string{""}, d.alice, d.bob)
	r.Delegate("targets/alice", []string{""}, d.alice)
	r.Delegate("targets/bob", []string{""}, d.bob)
	r.Delegate("targets/team", []string{"team/"}, d.team)
	r.AddTarget("targets/releases", "v1", []byte("alice's image"))
	r.AddTarget("targets/alice", "v1", []byte("alice's image"))
	r.AddTarget("targets/team", "team/app", []byte("team app"))
	if setup != nil {
		setup(t, r, d)
	}
	r.SignAll()
	names := []string{"root", "targets", "targets/releases", "targets/alice", "targets/bob", "targets/team"}
	if !serverSnapshot {
		names = append(names, "snapshot")
	}
	if got := e.publish(gun, roles(r, names...)...); got.status != 200 {
		t.Fatalf("publishing the attack repository: %d %s", got.status, got.body)
	}
	return r, d
}

// stored returns what the server serves for every role of the repository,
// and its changefeed.
func (e *env) stored() map[string]string {
	out := map[string]string{}
	for _, role := range attackRoles {
		got := e.get("/v2/" + gun + "/_trust/tuf/" + role + ".json")
		out[role] = fmt.Sprintf("%d %x", got.status, got.body)
	}
	out["changefeed"] = string(e.get("/v2/" + gun + "/_trust/changefeed?records=100").body)
	return out
}

// resignSnapshot re-signs a client-held snapshot over the repository.
func resignSnapshot(r *tuftest.Repo) {
	r.Bump(tuf.RoleSnapshot)
	r.SignSnapshot()
}

// newVersion bumps role, adds a target to it and signs it with the keys
// given (the role's own when none).
func newVersion(r *tuftest.Repo, role, target, content string, with ...tuftest.Key) {
	r.AddTarget(role, target, []byte(content))
	r.Bump(role)
	r.Sign(role, with...)
}

// stream uploads an endless body (no Content-Length).
func (e *env) stream(body io.Reader, contentType string) resp {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.ts.URL+"/v2/"+gun+"/_trust/tuf/", body)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	r, err := e.ts.Client().Do(req)
	if err != nil {
		e.t.Fatalf("the server hung up without answering: %v", err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return resp{r.StatusCode, r.Header, b}
}

// endless reads as an endless stream of 'x'.
type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}

const (
	badRoot     = `"Name":"ErrBadRoot"`
	badTargets  = `"Name":"ErrBadTargets"`
	badSnapshot = `"Name":"ErrBadSnapshot"`
)

// uploadAttack is one attack carried by an upload.
type uploadAttack struct {
	name           string
	serverSnapshot bool                                                     // docker's setup; else notary's (client-held snapshot)
	setup          func(t *testing.T, r *tuftest.Repo, d delegates)         // before the repository is first published
	prepare        func(t *testing.T, e *env, r *tuftest.Repo, d delegates) // honest publishes before the attack
	send           func(t *testing.T, e *env, r *tuftest.Repo, d delegates) resp
	code           string
	details        []string
}

func up(e *env, r *tuftest.Repo, names ...string) resp { return e.publish(gun, roles(r, names...)...) }

func mustUp(t *testing.T, e *env, r *tuftest.Repo, names ...string) {
	t.Helper()
	if got := up(e, r, names...); got.status != 200 {
		t.Fatalf("honest upload of %v: %d %s", names, got.status, got.body)
	}
}

// thresholdTwo gives role a second key and a threshold of 2.
func thresholdTwo(role string) func(t *testing.T, r *tuftest.Repo, d delegates) {
	return func(t *testing.T, r *tuftest.Repo, d delegates) {
		second := tuftest.NewKey(t)
		if role == tuf.RoleRoot {
			second = tuftest.NewRootKey(t, gun, time.Now())
		}
		ks := append(slices.Clone(r.Keys[role]), second)
		if tuf.IsDelegation(role) {
			r.Delegate(role, []string{""}, ks...)
		} else {
			r.SetRoleKeys(role, ks...)
		}
		r.SetThreshold(role, 2)
	}
}

var uploadAttacks = []uploadAttack{
	// Arbitrary software.
	{name: "targets signed by an attacker's key", serverSnapshot: true,
		send: func(t *testing.T, e *env, r *tuftest.Repo, d delegates) resp {
			newVersion(r, "targets", "v1", "evil", tuftest.NewKey(t))
			return up(e, r, "targets")
		}, code: "INVALID_UPDATE", details: []string{badTargets, `"Msg":"valid signatures did not meet threshold for targets"`}},
	{name: "targets unsigned", serverSnapshot: true,
		send: func(t *testing.T, e *env, r *tuftest.Repo, d delegates) resp {
			newVersion(r, "targets", "v1", "evil")
			r.Signed["targets"] = tuftest.StripSignatures(t, r.Signed["targets"])
			return up(e, r, "targets")
		}, code: "INVALID_UPDATE", details: []string{badTargets, "threshold for targets"}},
	{name: "target hash swapped after signing", serverSnapshot: true,
		send: func(t *testing.T, e *env, r *tuftest.Repo, d delegates) resp {
			newVersion(r, "targets/releases", "v2", "two")
			r.Signed["targets/releases"] = tuftest.SwapTarget(t, r.Signed["targets/releases"], "v1", []byte("evil"))
			return up(e, r, "targets/releases")
		}, code: "INVALID_UPDATE", details: []string{badTargets, "threshold for targets/releases"}},
	{name: "top-level targets signed by a delegate", serverSnapshot: true,
		send: func(t *testing.T, e *env, r *tuftest.Repo, d delegates) resp {
			newVersion(r, "targets", "v1", "evil", d.alice)
			return up(e, r, "targets")
		}, code: "INVALID_UPDATE", details: []string{badTargets, "threshold for targets"}},
	{name: "snapshot signed by an attacker's key",
		send: func(t *testing.T, e *env, r *tuftest.Repo, d delegates) resp {
			newVersion(r, "targets", "v1", "evil")
			resignSnapshot(r)
			r.Sign("snapshot", tuftest.NewKey(t))
			return up(e, r, "targets", "snapshot")
		}, code: "INVALID_UPDATE", details: []string{badSnapshot, "threshold for snapshot"}},

	// Rollback.
	{name: "targets replayed", serverSnapshot: true,
		send: func(t *testing.T, e *env, r *tuftest.Repo, d delegates) resp { return up(e, r, "targets") },
		code: "VERSION", details: []string{"{}"}},
	{name: "delegation rolled back to an older version", serverSnapshot: true,
		setup: func(t *testing.T, r *tuftest.Repo, d delegates) { r.Targets["targets/releases"].Version = 5 },
		send: func(t *testing.T, e *env, r *tuftest.Repo, d delegates) resp {
			r.Targets["targets/releases"].Version = 3
			newVersion(r, "targets/releases", "v1", "old vulnerable image")
			return up(e, r, "targets/releases")
		}, code: "VERSION", details: []string{"{}"}},
	{name: "root rolled back", serverSnapshot: true,
		prepare: func(t *testing.T, e *env, r *tuftest.Repo, d delegates) {
			r.Bump("root")
			r.Sign("root")
			mustUp(t, e, r, "root")
		},
		send: func(t *testing.T, e *env, r *tuftest.Repo, d delegates) resp {
			return e.publish(gun, part{"root", e.get("/v2/" + gun + "/_trust/tuf/1.root.json").body})
		}, code: "VERSION", details: []string{"{}"}},
	{name: "snapshot rolled back",
		send: func(t *testing.T, e *env, r *tuftest.Repo, d delegates) resp {
			newVersion(r, "targets", "v2", "two")
			r.SignSnapshot() // still version 1
			return up(e, r, "targets", "snapshot")
		}, code: "VERSION", details: []string{"{}"}},

	// Freeze: expired metadata is never stored.
	{name: "expired root", serverSnapshot: true,
		send: func(t *testing.T, e *env, r *tuftest.Repo, d delegates) resp {
			r.Root.Expires = e.clock.Now().Add(-time.Hour)
			r.Bump("root")
			r.Sign("root")
			return up(e, r, "root")
		}, code: "INVALID_UPDATE", details: []string{badRoot, "root expired at"}},
	{name: "expired targets", serverSnapshot: true,
		send: func(t *testing.T, e *env, r *tuftest.Repo, d delegates) resp {
			r.Targets["targets"].Expires = e.clock.Now().Add(-time.Hour)
			newVersion(r, "targets", "v2", "two")
			return up(e, r, "targets")
		}, code: "INVALID_UPDATE", details: []string{badTargets, "targets expired at"}},
	{name: "expired delegation", serverSnapshot: true,
		send: func(t *testing.T, e *env, r *tuftest.Repo, d delegates) resp {
			r.Targets["targets/alice"].Expires = e.clock.Now().Add(-time.Hour)
			newVersion(r, "targets/alice", "v2", "two")
			return up(e, r, "targets/alice")
		}, code: "INVALID_UPDATE", details: []string{badTargets, "targets/alice expired at"}},
	{name: "expired snapshot",
		send: func(t *testing.T, e *env, r *tuftest.Repo, d delegates) resp {
			newVersion(r, "targets", "v2", "two")
			r.Snapshot.Expires = e.clock.Now().Add(-time.Hour)
			resignSnapshot(r)
			return up(e, r, "targets", "snapshot")
		}, code: "INVALID_UPDATE", details: []string{badSnapshot, "snapshot expired at"}},

	// Fast-forward of root: each root must be the next version.
	{name: "root version fast-forwarded", serverSnapshot: true,
		send: func(t *testing.T, e *env, r *tuftest.Repo, d delegates) resp {
			r.Root.Version = 1000
			r.Sign("root")
			return up(e, r, "root")
		}, code: "INVALID_UPDATE", details: []string{badRoot, "root version 1000 skips version 2"}},

	// Mix-and-match.
	{name: "snapshot listing other targets than those uploaded",
		send: func(t *testing.T, e *env, r *tuftest.Repo, d delegates) resp {
			newVersion(r, "targets", "v2", "two")
			resignSnapshot(r)
			newVersion(r, "targets", "v3", "three") // signed after the snapshot
			return up(e, r, "targets", "snapshot")
		}, code: "INVALID_UPDATE", details: []string{badSnapshot, "targets does not match the snapshot"}},
	{name: "snapshot not listing the uploaded root",
		send: func(t *testing.T, e *env, r *tuftest.Repo, d delegates) resp {
			resignSnapshot(r) // lists root version 1
			r.Bump("root")
			r.Sign("root")
			return up(e, r, "root", "snapshot")
		}, code: "INVALID_UPDATE", details: []string{badSnapshot, "snapshot does not list the trusted root"}},
	{name: "snapshot not listing an uploaded delegation",
		send: func(t *testing.T, e *env, r *tuftest.Repo, d delegates) resp {
			newVersion(r, "targets/alice", "v2", "two")
			resignSnapshot(r)
			delete(r.Snapshot.Meta, "targets/alice")
			r.Sign("snapshot")
			return up(e, r, "targets/alice", "snapshot")
		}, code: "INVALID_UPDATE", details: []string{badSnapshot, "snapshot does not list targets/alice"}},

	// Endless data.
	{name: "endless upload body", serverSnapshot: true,
		send: func(t *testing.T, e *env, r *tuftest.Repo, d delegates) resp {
			head := "--xyz\r\nContent-Disposition: form-data; name=\"files\"; filename=\"targets\"\r\n\r\n{\"signed\":"
			return e.stream(io.MultiReader(strings.NewReader(head), endless{}), "multipart/form-data; boundary=xyz")
		}, code: "MALFORMED_UPLOAD", details: []string{"larger than the server's limit"}},

	// A delegate writing outside its paths (extraneous targets).
	{name: "delegate writes outside its paths", serverSnapshot: true,
		send: func(t *testing.T, e *env, r *tuftest.Repo, d delegates) resp {
			newVersion(r, "targets/team", "prod/app", "evil")
			return up(e, r, "targets/team")
		}, code: "INVALID_UPDATE", details: []string{badTargets, `may only sign targets under [\"team/\"], but lists prod/app`}},
	{name: "nested delegation wider than its parent", serverSnapshot: true,
		send: func(t *testing.T, e *env, r *tuftest.Repo, d delegates) resp {
			r.Delegate("targets/team/a", []string{"team/a/", "prod/"}, d.team)
			r.Bump("targets/team")
			r.Sign("targets/team")
			r.AddTarget("targets/team/a", "prod/db", []byte("evil"))
			r.Sign("targets/team/a")
			return up(e, r, "targets/team", "targets/team/a")
		}, code: "INVALID_UPDATE", details: []string{badTargets, `targets/team/a may only sign targets under [\"team/a/\"], but lists prod/db`}},
	{name: "role nobody delegates", serverSnapshot: true,
		send: func(t *testing.T, e *env, r *tuftest.Repo, d delegates) resp {
			r.Targets["targets/ghost"] = tuftest.NewTargets(e.clock.Now().AddDate(1, 0, 0))
			r.AddTarget("targets/ghost", "v1", []byte("evil"))
			r.Sign("targets/ghost", d.bob)
			return up(e, r, "targets/ghost")
		}, code: "INVALID_UPDATE", details: []string{badTargets, "targets/ghost is not delegated by targets"}},

	// A compromised key below the threshold.
	{name: "targets signed by one of two keys", serverSnapshot: true, setup: thresholdTwo("targets"),
		send: func(t *testing.T, e *env, r *tuftest.Repo, d delegates) resp {
			newVersion(r, "targets", "v1", "evil", r.Keys["targets"][0])
			return up(e, r, "targets")
		}, code: "INVALID_UPDATE", details: []string{badTargets, "threshold for targets"}},
	{name: "targets signed twice by one of two keys", serverSnapshot: true, setup: thresholdTwo("targets"),
		send: func(t *testing.T, e *env, r *tuftest.Repo, d delegates) resp {
			newVersion(r, "targets", "v1", "evil", r.Keys["targets"][0])
			r.Signed["targets"] = tuftest.DuplicateSignature(t, r.Signed["targets"], 2)
			return up(e, r, "targets")
		}, code: "INVALID_UPDATE", details: []string{badTargets, "threshold for targets"}},
	{name: "delegation signed by one of two keys", serverSnapshot: true, setup: thresholdTwo("targets/alice"),
		send: func(t *testing.T, e *env, r *tuftest.Repo, d delegates) resp {
			newVersion(r, "targets/alice", "v1", "evil", r.Keys["targets/alice"][1])
			return up(e, r, "targets/alice")
		}, code: "INVALID_UPDATE", details: []string{badTargets, "threshold for targets/alice"}},
	{name: "snapshot signed by one of two keys", setup: thresholdTwo("snapshot"),
		send: func(t *testing.T, e *env, r *tuftest.Repo, d delegates) resp {
			newVersion(r, "targets", "v2", "two")
			resignSnapshot(r)
			r.Sign("snapshot", r.Keys["snapshot"][0])
			return up(e, r, "targets", "snapshot")
		}, code: "INVALID_UPDATE", details: []string{badSnapshot, "threshold for snapshot"}},
	{name: "root rotation signed by one of two old root keys", serverSnapshot: true, setup: thresholdTwo("root"),
		send: func(t *testing.T, e *env, r *tuftest.Repo, d delegates) resp {
			stolen := r.Keys["root"][0]
			mine := tuftest.NewRootKey(t, gun, e.clock.Now())
			r.SetRoleKeys("root", mine)
			r.Bump("root")
			r.Sign("root", stolen, mine)
			return up(e, r, "root")
		}, code: "INVALID_UPDATE", details: []string{badRoot, "could not rotate trust to a new trusted root"}},

	// A root certificate for another repository.
	{name: "rotation to a certificate for another GUN", serverSnapshot: true,
		send: func(t *testing.T, e *env, r *tuftest.Repo, d delegates) resp {
			old := r.Keys["root"]
			other := tuftest.NewRootKey(t, "example.com/other", e.clock.Now())
			r.SetRoleKeys("root", other)
			r.Bump("root")
			r.Sign("root", append(old, other)...)
			return up(e, r, "root")
		}, code: "INVALID_UPDATE", details: []string{badRoot, `is for \"example.com/other\"`}},
	{name: "new root not signed by the old root", serverSnapshot: true,
		send: func(t *testing.T, e *env, r *tuftest.Repo, d delegates) resp {
			r.SetRoleKeys("root", tuftest.NewRootKey(t, gun, e.clock.Now()))
			r.Bump("root")
			r.Sign("root")
			return up(e, r, "root")
		}, code: "INVALID_UPDATE", details: []string{badRoot, "could not rotate trust to a new trusted root"}},

	// A delegate rewriting another delegate's tag.
	{name: "bob signs targets/alice", serverSnapshot: true,
		send: func(t *testing.T, e *env, r *tuftest.Repo, d delegates) resp {
			newVersion(r, "targets/alice", "v1", "bob's image", d.bob)
			return up(e, r, "targets/alice")
		}, code: "INVALID_UPDATE", details: []string{badTargets, "threshold for targets/alice"}},
	{name: "bob adds his key to targets/alice", serverSnapshot: true,
		send: func(t *testing.T, e *env, r *tuftest.Repo, d delegates) resp {
			r.Delegate("targets/alice", []string{""}, d.alice, d.bob)
			r.Bump("targets")
			r.Sign("targets", d.bob)
			newVersion(r, "targets/alice", "v1", "bob's image", d.bob)
			return up(e, r, "targets", "targets/alice")
		}, code: "INVALID_UPDATE", details: []string{badTargets, "threshold for targets"}},
}

// TestAttackUploadsRefused runs every upload attack against a fresh server
// and checks the refusal and that nothing stored or served changed.
func TestAttackUploadsRefused(t *testing.T) {
	for _, a := range uploadAttacks {
		t.Run(a.name, func(t *testing.T) {
			e := newEnv(t)
			r, d := attackRepo(t, e, a.serverSnapshot, a.setup)
			if a.prepare != nil {
				a.prepare(t, e, r, d)
			}
			before := e.stored()
			got := a.send(t, e, r, d)
			wantError(t, got, http.StatusBadRequest, a.code, a.details[0])
			for _, part := range a.details[1:] {
				if !bytes.Contains(got.body, []byte(part)) {
					t.Errorf("error %s does not contain %s", got.body, part)
				}
			}
			after := e.stored()
			for k, v := range before {
				if after[k] != v {
					t.Errorf("%s changed after a refused upload", k)
				}
			}
			e.verifyRepo(gun)
		})
	}
}

// TestAttackUploadedTimestampIgnored: a timestamp in an upload — here
// forged, far ahead — is ignored; the server signs the next one itself.
func TestAttackUploadedTimestampIgnored(t *testing.T) {
	e := newEnv(t)
	r, _ := attackRepo(t, e, true, nil)
	newVersion(r, "targets", "v2", "two")
	r.Timestamp.Version = 1 << 30
	r.Timestamp.Meta = map[string]tuf.FileMeta{"snapshot": tuf.NewFileMeta([]byte("forged"))}
	forged, err := tuf.Sign(&r.Timestamp, tuftest.NewKey(t))
	if err != nil {
		t.Fatal(err)
	}
	if got := e.publish(gun, part{"targets", r.Signed["targets"]}, part{"timestamp", forged}); got.status != 200 {
		t.Fatalf("upload: %d %s", got.status, got.body)
	}
	v := e.verifyRepo(gun)
	if v.Timestamp().Signed.Version != 2 || bytes.Equal(v.Timestamp().Raw, forged) {
		t.Fatalf("timestamp version %d: the uploaded timestamp was used", v.Timestamp().Signed.Version)
	}
}

// TestAttackSharedReleasesRewrite is the documented hole of Docker's
// delegation layout: every signer's key signs targets/releases, so bob may
// re-point alice's tag there, and the server must accept it (it is validly
// signed; the reference does the same). targets/alice, which only alice
// can sign, keeps her digest: `signet verify --require-signer alice`
// resolves from it.
func TestAttackSharedReleasesRewrite(t *testing.T) {
	e := newEnv(t)
	r, d := attackRepo(t, e, true, nil)
	newVersion(r, "targets/releases", "v1", "bob's image", d.bob)
	if got := up(e, r, "targets/releases"); got.status != 200 {
		t.Fatalf("bob's upload to targets/releases: %d %s", got.status, got.body)
	}
	v := e.verifyRepo(gun)
	if err := v.Targets("targets/releases").Signed.Targets["v1"].Matches([]byte("bob's image")); err != nil {
		t.Errorf("targets/releases v1 is not bob's: %v", err)
	}
	if err := v.Targets("targets/alice").Signed.Targets["v1"].Matches([]byte("alice's image")); err != nil {
		t.Errorf("targets/alice v1 changed: %v", err)
	}
}

// TestAttackTargetsFastForward: a holder of the targets key may publish a
// version far ahead (TUF allows any increase). Because the server stores
// it, the owner's next publish continues from it: no client is locked out.
func TestAttackTargetsFastForward(t *testing.T) {
	e := newEnv(t)
	r, _ := attackRepo(t, e, true, nil)
	r.Targets["targets"].Version = 1 << 30
	newVersion(r, "targets", "v2", "two")
	mustUp(t, e, r, "targets")
	newVersion(r, "targets", "v3", "three") // the owner, after rotating the targets key
	mustUp(t, e, r, "targets")
	if v := e.verifyRepo(gun); v.Targets("targets").Signed.Version != 1<<30+2 {
		t.Errorf("targets version %d", v.Targets("targets").Signed.Version)
	}
}
