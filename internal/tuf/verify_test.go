package tuf_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/tuf"
	"github.com/signet-trust/signet/internal/tuf/cjson"
	"github.com/signet-trust/signet/internal/tuf/tuftest"
)

var verifyNow = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// signOver builds a file whose signed value is exactly signed (whatever its
// form) and whose signatures were made by ks over msg.
func signOver(t *testing.T, signed, msg []byte, ks ...tuftest.Key) []byte {
	t.Helper()
	var sigs []tuf.Signature
	for _, k := range ks {
		method, sig, err := keys.Sign(k.Signer, msg)
		if err != nil {
			t.Fatal(err)
		}
		sigs = append(sigs, tuf.Signature{KeyID: k.Key.ID(), Method: method, Sig: sig})
	}
	return tuf.Envelope(signed, sigs)
}

func targetsJSON(t *testing.T) []byte {
	t.Helper()
	tg := tuftest.NewTargets(verifyNow.AddDate(3, 0, 0))
	tg.Targets["v1"] = tuf.NewFileMeta([]byte("one"))
	b, err := cjson.Marshal(tg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func indent(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// Finding 2 of issue 10: signatures are checked over the canonical form
// Notary computes, never over the bytes as received.
func TestVerifyOverCanonicalFormOnly(t *testing.T) {
	k := tuftest.NewKey(t)
	ks := map[string]*keys.PublicKey{k.Key.ID(): k.Key}
	ids := []string{k.Key.ID()}
	canon := targetsJSON(t)
	pretty := indent(t, canon)
	tests := []struct {
		name     string
		signed   []byte // the signed value in the file
		over     []byte // what the signature was made over
		verifies bool
	}{
		{"canonical, signed over canonical", canon, canon, true},
		{"indented, signed over canonical (as notary verifies)", pretty, canon, true},
		{"indented, signed over the indented bytes (notary: threshold not met)", pretty, pretty, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := tuf.ParseTargets(tuf.RoleTargets, signOver(t, tt.signed, tt.over, k))
			if err != nil {
				t.Fatal(err)
			}
			err = tuf.VerifySignatures(m, ids, 1, ks)
			if tt.verifies && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tt.verifies && !errors.Is(err, tuf.ErrThreshold) {
				t.Fatalf("err = %v, want the threshold not met", err)
			}
		})
	}
}

// Integers beyond 2^53 are read as Notary reads them (float64): a signature
// over the exact digits does not verify, one over Notary's rounding does;
// numbers Notary cannot represent portably are refused.
func TestVerifyLargeIntegersAsNotary(t *testing.T) {
	k := tuftest.NewKey(t)
	ks := map[string]*keys.PublicKey{k.Key.ID(): k.Key}
	ids := []string{k.Key.ID()}
	withLength := func(n string) []byte {
		return bytes.Replace(targetsJSON(t), []byte(`"length":3`), []byte(`"length":`+n), 1)
	}
	exact, rounded := withLength("9007199254740993"), withLength("9007199254740992")
	verify := func(signed, over []byte) error {
		t.Helper()
		m, err := tuf.ParseTargets(tuf.RoleTargets, signOver(t, signed, over, k))
		if err != nil {
			t.Fatal(err)
		}
		return tuf.VerifySignatures(m, ids, 1, ks)
	}
	if err := verify(exact, exact); !errors.Is(err, tuf.ErrThreshold) {
		t.Errorf("signed over the exact digits of 2^53+1: err = %v, want the threshold not met", err)
	}
	if err := verify(exact, rounded); err != nil {
		t.Errorf("signed over notary's rounding of 2^53+1: %v", err)
	}
	huge := bytes.Replace(rounded, []byte(`"version":1`), []byte(`"version":1,"x":1e19`), 1)
	if err := verify(huge, huge); !errors.Is(err, tuf.ErrInvalidMetadata) {
		t.Errorf("a number beyond 2^63 in the signed value: err = %v, want invalid metadata", err)
	}
}

// Finding 1 of issue 10: every key map entry is listed under its content
// ID, and one key counts once towards a threshold.
func TestKeyIDsMatchKeyContent(t *testing.T) {
	r := tuftest.NewRepo(t, "example.com/test/app", verifyNow)
	alice := tuftest.NewKey(t)
	r.Delegate("targets/releases", []string{""}, alice)
	fake := strings.Repeat("ab", 32)

	t.Run("delegation key under a made-up ID too, threshold 2", func(t *testing.T) {
		tg := r.Targets[tuf.RoleTargets]
		tg.Delegations.Keys[fake] = alice.Key
		d := tg.Delegations.Roles[0]
		d.KeyIDs, d.Threshold = []string{alice.Key.ID(), fake}, 2
		defer func() { delete(tg.Delegations.Keys, fake); d.KeyIDs, d.Threshold = []string{alice.Key.ID()}, 1 }()
		_, err := tuf.ParseTargets(tuf.RoleTargets, r.Sign(tuf.RoleTargets))
		if !errors.Is(err, tuf.ErrInvalidMetadata) || !strings.Contains(err.Error(), "is not valid for key content") {
			t.Fatalf("err = %v, want the key ID refused", err)
		}
	})
	t.Run("root maps a made-up ID to the targets key", func(t *testing.T) {
		tk := r.Keys[tuf.RoleTargets][0].Key
		r.Root.Keys[fake] = tk
		r.Root.Roles[tuf.RoleTargets].KeyIDs = []string{fake}
		defer func() { delete(r.Root.Keys, fake); r.Root.Roles[tuf.RoleTargets].KeyIDs = []string{tk.ID()} }()
		_, err := tuf.ParseRoot(r.Sign(tuf.RoleRoot))
		if !errors.Is(err, tuf.ErrInvalidMetadata) || !strings.Contains(err.Error(), "is not valid for key content") {
			t.Fatalf("err = %v, want the key ID refused", err)
		}
	})
	t.Run("a key map not made by parse: a signature under a foreign ID refuses the role", func(t *testing.T) {
		m, err := tuf.ParseTargets("targets/releases", signOver(t, targetsJSON(t), targetsJSON(t), alice))
		if err != nil {
			t.Fatal(err)
		}
		m.Signatures[0].KeyID = fake
		err = tuf.VerifySignatures(m, []string{fake}, 1, map[string]*keys.PublicKey{fake: alice.Key})
		if !errors.Is(err, tuf.ErrInvalidKeyID) {
			t.Fatalf("err = %v, want ErrInvalidKeyID", err)
		}
	})
	t.Run("one private key as a plain key and as a certificate, threshold 2", func(t *testing.T) {
		cert, err := keys.NewRootCertificate(alice.Signer, "targets/releases", verifyNow.Add(-time.Hour), verifyNow.AddDate(1, 0, 0))
		if err != nil {
			t.Fatal(err)
		}
		certKey, err := keys.FromCertificate(cert)
		if err != nil {
			t.Fatal(err)
		}
		if certKey.ID() == alice.Key.ID() || certKey.CanonicalID() != alice.Key.CanonicalID() {
			t.Fatal("test setup: the certificate key should have its own ID and alice's canonical ID")
		}
		signed := targetsJSON(t)
		file := signOver(t, signed, signed, alice, tuftest.Key{Key: certKey, Signer: alice.Signer})
		m, err := tuf.ParseTargets("targets/releases", file)
		if err != nil {
			t.Fatal(err)
		}
		ks := map[string]*keys.PublicKey{alice.Key.ID(): alice.Key, certKey.ID(): certKey}
		err = tuf.VerifySignatures(m, []string{alice.Key.ID(), certKey.ID()}, 2, ks)
		var te *tuf.ThresholdError
		if !errors.As(err, &te) || te.Have != 1 {
			t.Fatalf("err = %v, want the threshold not met with one key counted", err)
		}
	})
}

func TestLimits(t *testing.T) {
	r := tuftest.NewRepo(t, "example.com/test/app", verifyNow)
	k := tuftest.NewKey(t)
	tg := r.Targets[tuf.RoleTargets]
	tg.Delegations.Keys[k.Key.ID()] = k.Key
	for i := range tuf.MaxDelegations + 1 {
		tg.Delegations.Roles = append(tg.Delegations.Roles, &tuf.DelegatedRole{Name: fmt.Sprintf("targets/d%d", i), KeyIDs: []string{k.Key.ID()}, Threshold: 1})
	}
	if _, err := tuf.ParseTargets(tuf.RoleTargets, r.Sign(tuf.RoleTargets)); !errors.Is(err, tuf.ErrLimit) || !errors.Is(err, tuf.ErrInvalidMetadata) {
		t.Errorf("%d delegations: err = %v, want ErrLimit", tuf.MaxDelegations+1, err)
	}
	tg.Delegations.Roles = tg.Delegations.Roles[:tuf.MaxDelegations]
	if _, err := tuf.ParseTargets(tuf.RoleTargets, r.Sign(tuf.RoleTargets)); err != nil {
		t.Errorf("%d delegations refused: %v", tuf.MaxDelegations, err)
	}
	tg.Delegations.Roles = tg.Delegations.Roles[:1]
	ids := make([]string, tuf.MaxRoleKeys+1)
	for i := range ids {
		ids[i] = k.Key.ID()
	}
	tg.Delegations.Roles[0].KeyIDs = ids
	if _, err := tuf.ParseTargets(tuf.RoleTargets, r.Sign(tuf.RoleTargets)); !errors.Is(err, tuf.ErrLimit) {
		t.Errorf("%d keys in a role: err = %v, want ErrLimit", len(ids), err)
	}
	tg.Delegations.Roles[0].KeyIDs = ids[:1]
	for i := range tuf.MaxPaths + 1 {
		tg.Delegations.Roles[0].Paths = append(tg.Delegations.Roles[0].Paths, fmt.Sprintf("p%d/", i))
	}
	if _, err := tuf.ParseTargets(tuf.RoleTargets, r.Sign(tuf.RoleTargets)); !errors.Is(err, tuf.ErrLimit) {
		t.Errorf("%d paths in a delegation: err = %v, want ErrLimit", len(tg.Delegations.Roles[0].Paths), err)
	}
	tg.Delegations.Roles[0].Paths = nil
	signed := r.Sign(tuf.RoleTargets)
	if _, err := tuf.ParseTargets(tuf.RoleTargets, tuftest.DuplicateSignature(t, signed, tuf.MaxSignatures)); err != nil {
		t.Errorf("%d signatures refused: %v", tuf.MaxSignatures, err)
	}
	if _, err := tuf.ParseTargets(tuf.RoleTargets, tuftest.DuplicateSignature(t, signed, tuf.MaxSignatures+1)); !errors.Is(err, tuf.ErrLimit) {
		t.Errorf("%d signatures: err = %v, want ErrLimit", tuf.MaxSignatures+1, err)
	}
}

// Every file notary and docker trust wrote is canonical as received, so
// verifying it re-encodes nothing.
func TestFixturesTakeTheCanonicalFastPath(t *testing.T) {
	for _, f := range loadFixtures(t) {
		for _, name := range f.metadataFiles() {
			var env struct{ Signed json.RawMessage }
			if err := json.Unmarshal(f.read(t, name), &env); err != nil {
				t.Fatal(err)
			}
			if !cjson.IsCanonical(env.Signed) {
				t.Errorf("%s: the signed value of a notary-written file is not recognised as canonical", filepath.Join(f.dir, name))
			}
		}
	}
}
