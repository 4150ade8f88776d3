package server_test

// Regression tests for the verification findings of issue 10 (an
// adversarial review), sent to the running server over HTTP: each upload
// must be refused with the reference's error code and change nothing the
// server stores or serves.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/tuf"
	"github.com/signet-trust/signet/internal/tuf/cjson"
	"github.com/signet-trust/signet/internal/tuf/trust"
	"github.com/signet-trust/signet/internal/tuf/tuftest"
)

// refusedAndUnchanged sends an attack and checks the answer and that what
// the server serves did not change.
func refusedAndUnchanged(t *testing.T, e *env, send func() resp, code string, details ...string) {
	t.Helper()
	before := e.stored()
	got := send()
	wantError(t, got, http.StatusBadRequest, code, details[0])
	for _, d := range details[1:] {
		if !bytes.Contains(got.body, []byte(d)) {
			t.Errorf("error %s does not contain %s", got.body, d)
		}
	}
	after := e.stored()
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s changed after a refused upload", k)
		}
	}
	e.verifyRepo(gun)
}

// signOver makes a file whose signed value is signed (in whatever form)
// and whose signatures by ks (listed under ids) were made over msg.
func signOver(t *testing.T, signed, msg []byte, ids []string, ks ...tuftest.Key) []byte {
	t.Helper()
	var sigs []tuf.Signature
	for i, k := range ks {
		method, sig, err := keys.Sign(k.Signer, msg)
		if err != nil {
			t.Fatal(err)
		}
		sigs = append(sigs, tuf.Signature{KeyID: ids[i], Method: method, Sig: sig})
	}
	return tuf.Envelope(signed, sigs)
}

const fakeKeyID = "abababababababababababababababababababababababababababababababab"

// Finding 1: key IDs were not checked against key content.
func TestIssue10KeyIDs(t *testing.T) {
	t.Run("delegation key under its real ID and a made-up one, threshold 2, one key signing twice", func(t *testing.T) {
		e := newEnv(t)
		r, d := attackRepo(t, e, true, nil)
		refusedAndUnchanged(t, e, func() resp {
			tg := r.Targets[tuf.RoleTargets]
			tg.Delegations.Keys[fakeKeyID] = d.alice.Key
			for _, dr := range tg.Delegations.Roles {
				if dr.Name == "targets/alice" {
					dr.KeyIDs, dr.Threshold = []string{d.alice.Key.ID(), fakeKeyID}, 2
				}
			}
			r.Bump(tuf.RoleTargets)
			r.Sign(tuf.RoleTargets)
			rel := r.Targets["targets/alice"]
			rel.Targets["v1"] = tuf.NewFileMeta([]byte("evil"))
			rel.Version++
			canon, err := cjson.Marshal(rel)
			if err != nil {
				t.Fatal(err)
			}
			alice := signOver(t, canon, canon, []string{d.alice.Key.ID(), fakeKeyID}, d.alice, d.alice)
			return e.publish(gun, part{"targets", r.Signed["targets"]}, part{"targets/alice", alice})
		}, "INVALID_UPDATE", badTargets, "is not valid for key content")
	})
	t.Run("root mapping a made-up ID to the targets key", func(t *testing.T) {
		e := newEnv(t)
		r, _ := attackRepo(t, e, true, nil)
		refusedAndUnchanged(t, e, func() resp {
			tk := r.Keys[tuf.RoleTargets][0]
			r.Root.Keys[fakeKeyID] = tk.Key
			r.Root.Roles[tuf.RoleTargets].KeyIDs = []string{fakeKeyID}
			r.Bump(tuf.RoleRoot)
			r.Sign(tuf.RoleRoot)
			r.Bump(tuf.RoleTargets)
			canon, err := cjson.Marshal(r.Targets[tuf.RoleTargets])
			if err != nil {
				t.Fatal(err)
			}
			targets := signOver(t, canon, canon, []string{fakeKeyID}, tk)
			return e.publish(gun, part{"root", r.Signed["root"]}, part{"targets", targets})
		}, "INVALID_UPDATE", badRoot, "is not valid for key content")
	})
}

// Finding 2: signatures were verified over the received bytes, which
// notary does not verify over.
func TestIssue10SignedBytes(t *testing.T) {
	indented := func(t *testing.T, b []byte) []byte {
		var out bytes.Buffer
		if err := json.Indent(&out, b, "", "  "); err != nil {
			t.Fatal(err)
		}
		return out.Bytes()
	}
	t.Run("delegation signed over indented JSON (notary: threshold not met)", func(t *testing.T) {
		e := newEnv(t)
		r, d := attackRepo(t, e, true, nil)
		refusedAndUnchanged(t, e, func() resp {
			rel := r.Targets["targets/releases"]
			rel.Targets["v1"] = tuf.NewFileMeta([]byte("delegate's image"))
			rel.Version++
			canon, err := cjson.Marshal(rel)
			if err != nil {
				t.Fatal(err)
			}
			pretty := indented(t, canon)
			return e.publish(gun, part{"targets/releases", signOver(t, pretty, pretty, []string{d.alice.Key.ID()}, d.alice)})
		}, "INVALID_UPDATE", badTargets, "valid signatures did not meet threshold for targets/releases")
	})
	t.Run("delegation signed over the exact digits of an integer above 2^53", func(t *testing.T) {
		e := newEnv(t)
		r, d := attackRepo(t, e, true, nil)
		refusedAndUnchanged(t, e, func() resp {
			rel := r.Targets["targets/releases"]
			rel.Targets["v1"] = tuf.NewFileMeta([]byte("delegate's image"))
			rel.Version++
			canon, err := cjson.Marshal(rel)
			if err != nil {
				t.Fatal(err)
			}
			big := bytes.Replace(canon, []byte(`"length":16`), []byte(`"length":9007199254740993`), 1)
			if bytes.Equal(big, canon) {
				t.Fatal("test setup: no length to replace")
			}
			return e.publish(gun, part{"targets/releases", signOver(t, big, big, []string{d.alice.Key.ID()}, d.alice)})
		}, "INVALID_UPDATE", badTargets, "valid signatures did not meet threshold for targets/releases")
	})
}

// Finding 3: delegation validation was super-linear; the limits answer 400.
func TestIssue10Limits(t *testing.T) {
	t.Run("more delegations in one role than the limit", func(t *testing.T) {
		e := newEnv(t)
		r, d := attackRepo(t, e, true, nil)
		refusedAndUnchanged(t, e, func() resp {
			tg := r.Targets[tuf.RoleTargets]
			for i := len(tg.Delegations.Roles); i <= tuf.MaxDelegations; i++ {
				tg.Delegations.Roles = append(tg.Delegations.Roles, &tuf.DelegatedRole{Name: fmt.Sprintf("targets/s%d", i), KeyIDs: []string{d.alice.Key.ID()}, Threshold: 1, Paths: []string{""}})
			}
			newVersion(r, tuf.RoleTargets, "v9", "nine")
			return up(e, r, "targets")
		}, "INVALID_UPDATE", badTargets, fmt.Sprintf("more than the limit of %d", tuf.MaxDelegations))
	})
	t.Run("more roles in one upload than the limit", func(t *testing.T) {
		e := newEnv(t)
		_, d := attackRepo(t, e, true, nil)
		refusedAndUnchanged(t, e, func() resp {
			leaf, err := tuf.Sign(tuftest.NewTargets(e.clock.Now().AddDate(1, 0, 0)), d.alice)
			if err != nil {
				t.Fatal(err)
			}
			var parts []part
			for i := range trust.MaxUploadRoles + 1 {
				parts = append(parts, part{fmt.Sprintf("targets/releases/s%d", i), leaf})
			}
			return e.publish(gun, parts...)
		}, "MALFORMED_UPLOAD", fmt.Sprintf("more than the limit of %d", trust.MaxUploadRoles))
	})
	t.Run("an upload at the limits is accepted", func(t *testing.T) {
		e := newEnv(t)
		r, d := attackRepo(t, e, true, nil)
		rel := r.Targets["targets/releases"]
		var parts []part
		leaf, err := tuf.Sign(tuftest.NewTargets(e.clock.Now().AddDate(1, 0, 0)), d.alice)
		if err != nil {
			t.Fatal(err)
		}
		for i := range trust.MaxUploadRoles - 1 {
			name := fmt.Sprintf("targets/releases/s%03d", i)
			rel.Delegations.Keys[d.alice.Key.ID()] = d.alice.Key
			rel.Delegations.Roles = append(rel.Delegations.Roles, &tuf.DelegatedRole{Name: name, KeyIDs: []string{d.alice.Key.ID()}, Threshold: 1, Paths: []string{""}})
			parts = append(parts, part{name, leaf})
		}
		newVersion(r, "targets/releases", "v9", "nine")
		parts = append(parts, part{"targets/releases", r.Signed["targets/releases"]})
		if got := e.publish(gun, parts...); got.status != http.StatusOK {
			t.Fatalf("an upload of %d roles: %d %s", len(parts), got.status, got.body)
		}
		v := e.verifyRepo(gun)
		if n := len(v.TargetsRoles()); n < trust.MaxUploadRoles {
			t.Fatalf("%d targets roles served after the upload", n)
		}
	})
}
