// Package custodiantest is the conformance suite of custody.Custodian: the
// embedded core, signet-signer's service and the mutual-TLS client of
// signet-signer all run Run from their tests, so a caller cannot tell them
// apart.
//
// Invariants checked: keys of every purpose sign and verify; a key signs
// only for its GUN; bad specs and imports are ErrInvalid and store nothing;
// an imported key is ErrExists the second time; rotation keeps the old key;
// a retired key stops signing and leaves the default listings, an active
// one cannot be deleted; signers expose no private key; keys survive a
// restart.
package custodiantest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/signet-trust/signet/internal/custody"
	"github.com/signet-trust/signet/internal/keys"
)

// Subject is a custodian under test.
type Subject struct {
	// Custodian holds no keys yet; its default algorithm is ECDSA.
	Custodian custody.Custodian
	// Restart returns a custodian over the same keys with nothing in memory
	// (a process restart); nil when the subject cannot restart.
	Restart func(t *testing.T) custody.Custodian
	// Token reports that new keys are made in a PKCS#11 token (ECDSA only;
	// imports are sealed).
	Token bool
}

// Run runs the suite; open is called once per subtest.
func Run(t *testing.T, open func(t *testing.T) Subject) {
	t.Helper()
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, s Subject)
	}{
		{"CreateSign", testCreateSign},
		{"OnlyForItsGUN", testOnlyForItsGUN},
		{"Purposes", testPurposes},
		{"InvalidSpecs", testInvalidSpecs},
		{"InvalidIDsAndFilters", testInvalidIDsAndFilters},
		{"Import", testImport},
		{"Rotate", testRotate},
		{"RetireDelete", testRetireDelete},
		{"SignShapes", testSignShapes},
		{"NoPrivateKeyOut", testNoPrivateKeyOut},
		{"Concurrent", testConcurrent},
		{"ListLimit", testListLimit},
		{"Restart", testRestart},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

const gun = "example.com/custodiantest/app"

// Sign signs a message with key pub of gun through the custodian's signer
// (through keys.Sign, as for TUF metadata) and checks the signature with
// pub.
func Sign(ctx context.Context, c custody.Custodian, gun string, pub *keys.PublicKey) error {
	s, err := c.Signer(ctx, gun, pub.ID())
	if err != nil {
		return err
	}
	msg := []byte(`{"signed":{"_type":"Timestamp","version":1}}`)
	method, sig, err := keys.Sign(s, msg)
	if err != nil {
		return err
	}
	if err := pub.Verify(method, msg, sig); err != nil {
		return errors.Join(errors.New("custodiantest: the signature does not verify"), err)
	}
	return nil
}

func mustSign(t *testing.T, c custody.Custodian, gun string, pub *keys.PublicKey) {
	t.Helper()
	if err := Sign(t.Context(), c, gun, pub); err != nil {
		t.Fatalf("sign with %s for %q: %v", pub.ID(), gun, err)
	}
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: error %v, want %v", what, err, want)
	}
}

func ids(ks []custody.Key) []string {
	var out []string
	for _, k := range ks {
		out = append(out, k.ID())
	}
	return out
}

func pubIDs(ks []*keys.PublicKey) []string {
	var out []string
	for _, k := range ks {
		out = append(out, k.ID())
	}
	return out
}

// all lists every key, retired too.
func all(t *testing.T, c custody.Custodian) []string {
	t.Helper()
	ks, err := c.ListKeys(t.Context(), custody.Filter{IncludeRetired: true})
	if err != nil {
		t.Fatalf("ListKeys: %v", err)
	}
	return ids(ks)
}

func create(t *testing.T, c custody.Custodian, spec custody.Spec) custody.Key {
	t.Helper()
	k, err := c.CreateKey(t.Context(), spec)
	if err != nil {
		t.Fatalf("CreateKey(%+v): %v", spec, err)
	}
	checkKey(t, "CreateKey", k, spec)
	return k
}

func checkKey(t *testing.T, what string, k custody.Key, spec custody.Spec) {
	t.Helper()
	if k.GUN != spec.GUN || k.Role != spec.Role || k.Purpose != spec.Purpose || k.Owner != spec.Owner ||
		(spec.Algorithm != "" && k.Public.Type() != spec.Algorithm) || k.CreatedAt.IsZero() || !k.RetiredAt.IsZero() {
		t.Fatalf("%s: key %+v does not match spec %+v", what, k, spec)
	}
	if (k.Alias == "") == (k.Token == "") {
		t.Fatalf("%s: key %s is held under alias %q and in token %q: want exactly one", what, k.ID(), k.Alias, k.Token)
	}
}

func delegation(project, signer, alg string) custody.Spec {
	return custody.Spec{GUN: gun, Role: "targets/" + signer, Purpose: custody.PurposeDelegation, Owner: custody.ProjectOwner(project), Algorithm: alg}
}

// algorithms are those the subject creates keys of.
func algorithms(s Subject) []string {
	if s.Token {
		return []string{custody.AlgorithmECDSA}
	}
	return []string{custody.AlgorithmECDSA, custody.AlgorithmED25519}
}

func testCreateSign(t *testing.T, s Subject) {
	ctx, c := t.Context(), s.Custodian
	// The server's shorthand: ECDSA, owner server.
	ts, err := c.Create(ctx, gun, "timestamp")
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if ts.Type() != custody.AlgorithmECDSA {
		t.Fatalf("Create made a %s key, want the default ecdsa", ts.Type())
	}
	mustSign(t, c, gun, ts)
	k, err := c.Key(ctx, ts.ID())
	if err != nil {
		t.Fatalf("Key: %v", err)
	}
	checkKey(t, "Key of Create's key", k, custody.Spec{GUN: gun, Role: "timestamp", Purpose: custody.PurposeTimestamp, Owner: custody.OwnerServer, Algorithm: custody.AlgorithmECDSA})
	var snaps []string
	for _, alg := range algorithms(s) {
		k := create(t, c, custody.Spec{GUN: gun, Role: "snapshot", Purpose: custody.PurposeSnapshot, Owner: custody.OwnerServer, Algorithm: alg})
		mustSign(t, c, gun, k.Public)
		snaps = append([]string{k.ID()}, snaps...)
	}
	got, err := c.Keys(ctx, gun, "snapshot")
	if err != nil || !slices.Equal(pubIDs(got), snaps) {
		t.Fatalf("Keys(snapshot) = %q, %v; want %q (newest first)", pubIDs(got), err, snaps)
	}
	got, err = c.Keys(ctx, gun, "timestamp")
	if err != nil || !slices.Equal(pubIDs(got), []string{ts.ID()}) {
		t.Fatalf("Keys(timestamp) = %q, %v; want %q", pubIDs(got), err, ts.ID())
	}
	if got, err := c.Keys(ctx, gun+"/other", "timestamp"); err != nil || len(got) != 0 {
		t.Fatalf("Keys of another GUN = %q, %v; want none", pubIDs(got), err)
	}
	if _, err := c.Create(ctx, gun, "root"); !errors.Is(err, custody.ErrInvalid) {
		t.Fatalf("Create of a root key: %v, want ErrInvalid", err)
	}
}

func testOnlyForItsGUN(t *testing.T, s Subject) {
	ctx, c := t.Context(), s.Custodian
	pub, err := c.Create(ctx, gun, "timestamp")
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, "sign for another GUN", Sign(ctx, c, gun+"/other", pub), custody.ErrNotHeld)
	wantErr(t, "sign for no GUN", Sign(ctx, c, "", pub), custody.ErrNotHeld)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	unknown, _ := keys.FromCrypto(other.Public())
	wantErr(t, "sign with an unknown key", Sign(ctx, c, gun, unknown), custody.ErrNotHeld)
	_, err = c.Key(ctx, unknown.ID())
	wantErr(t, "Key of an unknown key", err, custody.ErrNotHeld)
	mustSign(t, c, gun, pub)
}

func testPurposes(t *testing.T, s Subject) {
	ctx, c := t.Context(), s.Custodian
	ed := custody.AlgorithmED25519
	if s.Token {
		ed = custody.AlgorithmECDSA
	}
	alice := create(t, c, delegation("alpha", "alice", custody.AlgorithmECDSA))
	bob := create(t, c, delegation("beta", "bob", ""))
	cosign := create(t, c, custody.Spec{Purpose: custody.PurposeCosign, Owner: custody.ProjectOwner("alpha"), Algorithm: ed})
	audit := create(t, c, custody.Spec{Purpose: custody.PurposeAuditCheckpoint, Owner: custody.OwnerServer, Algorithm: ed})
	for _, k := range []custody.Key{alice, bob, cosign, audit} {
		mustSign(t, c, k.GUN, k.Public)
		got, err := c.Key(ctx, k.ID())
		if err != nil {
			t.Fatalf("Key(%s): %v", k.ID(), err)
		}
		checkKey(t, "Key", got, k.Spec())
		if !got.CreatedAt.Equal(k.CreatedAt) {
			t.Fatalf("Key(%s).CreatedAt = %v, CreateKey said %v", k.ID(), got.CreatedAt, k.CreatedAt)
		}
	}
	wantErr(t, "a cosign key asked for a GUN", Sign(ctx, c, gun, cosign.Public), custody.ErrNotHeld)
	wantErr(t, "a delegation key asked for no GUN", Sign(ctx, c, "", alice.Public), custody.ErrNotHeld)
	for _, tc := range []struct {
		name string
		f    custody.Filter
		want []string
	}{
		{"owner", custody.Filter{Owner: custody.ProjectOwner("alpha")}, []string{cosign.ID(), alice.ID()}},
		{"owner and purpose", custody.Filter{Owner: custody.ProjectOwner("alpha"), Purpose: custody.PurposeDelegation}, []string{alice.ID()}},
		{"purpose", custody.Filter{Purpose: custody.PurposeAuditCheckpoint}, []string{audit.ID()}},
		{"gun and role", custody.Filter{GUN: gun, Role: "targets/bob"}, []string{bob.ID()}},
		{"gun", custody.Filter{GUN: gun}, []string{bob.ID(), alice.ID()}},
		{"everything", custody.Filter{}, []string{audit.ID(), cosign.ID(), bob.ID(), alice.ID()}},
	} {
		got, err := c.ListKeys(ctx, tc.f)
		if err != nil || !slices.Equal(ids(got), tc.want) {
			t.Fatalf("ListKeys(%s) = %q, %v; want %q", tc.name, ids(got), err, tc.want)
		}
	}
}

func testInvalidSpecs(t *testing.T, s Subject) {
	ctx, c := t.Context(), s.Custodian
	good := delegation("alpha", "alice", custody.AlgorithmECDSA)
	for _, tc := range []struct {
		name string
		edit func(*custody.Spec)
	}{
		{"no purpose", func(s *custody.Spec) { s.Purpose = "" }},
		{"unknown purpose", func(s *custody.Spec) { s.Purpose = "root" }},
		{"delegation without signer", func(s *custody.Spec) { s.Role = "targets/" }},
		{"delegation of targets", func(s *custody.Spec) { s.Role = "targets" }},
		{"delegation without GUN", func(s *custody.Spec) { s.GUN = "" }},
		{"timestamp with another role", func(s *custody.Spec) { s.Purpose = custody.PurposeTimestamp }},
		{"cosign with a GUN", func(s *custody.Spec) { s.Purpose = custody.PurposeCosign }},
		{"no owner", func(s *custody.Spec) { s.Owner = "" }},
		{"unknown owner kind", func(s *custody.Spec) { s.Owner = "user:alice" }},
		{"empty project", func(s *custody.Spec) { s.Owner = "project:" }},
		{"owner with a space", func(s *custody.Spec) { s.Owner = "project:a b" }},
		{"rsa", func(s *custody.Spec) { s.Algorithm = "rsa" }},
		{"control character in GUN", func(s *custody.Spec) { s.GUN = "example.com/a\x00b" }},
		{"GUN too long", func(s *custody.Spec) { s.GUN = string(make([]byte, 256)) }},
	} {
		spec := good
		tc.edit(&spec)
		if _, err := c.CreateKey(ctx, spec); !errors.Is(err, custody.ErrInvalid) {
			t.Errorf("%s: CreateKey(%+v): %v, want ErrInvalid", tc.name, spec, err)
		}
		priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if _, err := c.ImportKey(ctx, spec, priv); !errors.Is(err, custody.ErrInvalid) {
			t.Errorf("%s: ImportKey: %v, want ErrInvalid", tc.name, err)
		}
	}
	if got := all(t, c); len(got) != 0 {
		t.Fatalf("refused specs stored keys %q", got)
	}
}

// testInvalidIDsAndFilters: a malformed key ID is ErrInvalid (and
// ErrNotHeld: no key has it) for every operation, a malformed filter is
// ErrInvalid, and neither changes a key.
func testInvalidIDsAndFilters(t *testing.T, s Subject) {
	ctx, c := t.Context(), s.Custodian
	k := create(t, c, delegation("alpha", "alice", custody.AlgorithmECDSA))
	id := k.Public.ID()
	for _, bad := range []string{"", "zz", strings.ToUpper(id), id[:63], id + "0", "../" + id[3:], id[:63] + "\x00", id[:60] + "?a=b"} {
		for name, call := range map[string]func() error{
			"Key":       func() error { _, err := c.Key(ctx, bad); return err },
			"Signer":    func() error { _, err := c.Signer(ctx, gun, bad); return err },
			"RotateKey": func() error { _, err := c.RotateKey(ctx, bad); return err },
			"RetireKey": func() error { _, err := c.RetireKey(ctx, bad); return err },
			"DeleteKey": func() error { return c.DeleteKey(ctx, bad) },
		} {
			if err := call(); !errors.Is(err, custody.ErrInvalid) || !errors.Is(err, custody.ErrNotHeld) {
				t.Errorf("%s(%q): %v, want ErrInvalid and ErrNotHeld", name, bad, err)
			}
		}
	}
	for _, f := range []custody.Filter{
		{GUN: "example.com/a\x01b"}, {Role: "targets/\x7f"}, {GUN: strings.Repeat("g", 256)},
		{Purpose: "root"}, {Owner: "user:alice"},
	} {
		if _, err := c.ListKeys(ctx, f); !errors.Is(err, custody.ErrInvalid) {
			t.Errorf("ListKeys(%+v): %v, want ErrInvalid", f, err)
		}
	}
	got, err := c.ListKeys(ctx, custody.Filter{IncludeRetired: true})
	if err != nil || len(got) != 1 || got[0].Public.ID() != id || !got[0].RetiredAt.IsZero() {
		t.Fatalf("after refused calls: %d keys (%v), want only %s, active", len(got), err, id)
	}
}

func testImport(t *testing.T, s Subject) {
	ctx, c := t.Context(), s.Custodian
	ecPriv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	var imported []string
	for _, priv := range []crypto.Signer{ecPriv, edPriv} {
		want, err := keys.FromCrypto(priv.Public())
		if err != nil {
			t.Fatal(err)
		}
		spec := custody.Spec{Purpose: custody.PurposeCosign, Owner: custody.ProjectOwner("alpha")}
		k, err := c.ImportKey(ctx, spec, priv)
		if err != nil {
			t.Fatalf("ImportKey(%s): %v", want.Type(), err)
		}
		spec.Algorithm = want.Type()
		checkKey(t, "ImportKey", k, spec)
		if k.ID() != want.ID() {
			t.Fatalf("imported key ID %s, want %s", k.ID(), want.ID())
		}
		if k.Token != "" {
			t.Fatalf("an imported key is held in token %s; imports are sealed", k.Token)
		}
		mustSign(t, c, "", want) // verified with the caller's own public key
		before := all(t, c)
		if _, err := c.ImportKey(ctx, delegation("beta", "x", ""), priv); !errors.Is(err, custody.ErrExists) {
			t.Fatalf("importing %s again: %v, want ErrExists", want.Type(), err)
		}
		if got, _ := c.Key(ctx, k.ID()); got.Owner != k.Owner || got.Purpose != k.Purpose {
			t.Fatalf("a refused import changed the key: %+v", got)
		}
		if got := all(t, c); !slices.Equal(got, before) {
			t.Fatalf("a refused import changed the keys: %q, was %q", got, before)
		}
		imported = append([]string{k.ID()}, imported...)
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ec2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, tc := range []struct {
		name string
		spec custody.Spec
		priv crypto.Signer
	}{
		{"P-384", custody.Spec{Purpose: custody.PurposeCosign, Owner: custody.OwnerServer}, p384},
		{"RSA", custody.Spec{Purpose: custody.PurposeCosign, Owner: custody.OwnerServer}, rsaKey},
		{"algorithm differs from the spec", custody.Spec{Purpose: custody.PurposeCosign, Owner: custody.OwnerServer, Algorithm: custody.AlgorithmED25519}, ec2},
	} {
		if _, err := c.ImportKey(ctx, tc.spec, tc.priv); !errors.Is(err, custody.ErrInvalid) {
			t.Errorf("import %s: %v, want ErrInvalid", tc.name, err)
		}
	}
	if got := all(t, c); !slices.Equal(got, imported) {
		t.Fatalf("keys after refused imports: %q, want %q", got, imported)
	}
}

func testRotate(t *testing.T, s Subject) {
	ctx, c := t.Context(), s.Custodian
	old := create(t, c, delegation("alpha", "alice", ""))
	next, err := c.RotateKey(ctx, old.ID())
	if err != nil {
		t.Fatalf("RotateKey: %v", err)
	}
	checkKey(t, "RotateKey", next, old.Spec())
	if next.ID() == old.ID() {
		t.Fatal("RotateKey returned the same key")
	}
	got, err := c.ListKeys(ctx, custody.Filter{GUN: gun, Role: "targets/alice"})
	if err != nil || !slices.Equal(ids(got), []string{next.ID(), old.ID()}) {
		t.Fatalf("keys after rotation = %q, %v; want the new and the old", ids(got), err)
	}
	mustSign(t, c, gun, old.Public)
	mustSign(t, c, gun, next.Public)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	unknown, _ := keys.FromCrypto(other.Public())
	_, err = c.RotateKey(ctx, unknown.ID())
	wantErr(t, "RotateKey of an unknown key", err, custody.ErrNotHeld)
}

func testRetireDelete(t *testing.T, s Subject) {
	ctx, c := t.Context(), s.Custodian
	keep, err := c.Create(ctx, gun, "timestamp")
	if err != nil {
		t.Fatal(err)
	}
	k, err := c.Create(ctx, gun, "timestamp")
	if err != nil {
		t.Fatal(err)
	}
	mustSign(t, c, gun, k) // held in memory, and by a remote client
	wantErr(t, "DeleteKey of an active key", c.DeleteKey(ctx, k.ID()), custody.ErrActive)
	mustSign(t, c, gun, k)

	r, err := c.RetireKey(ctx, k.ID())
	if err != nil {
		t.Fatalf("RetireKey: %v", err)
	}
	if r.RetiredAt.IsZero() || r.ID() != k.ID() {
		t.Fatalf("RetireKey = %+v", r)
	}
	wantErr(t, "sign with a retired key", Sign(ctx, c, gun, k), custody.ErrNotHeld)
	if got, err := c.Keys(ctx, gun, "timestamp"); err != nil || !slices.Equal(pubIDs(got), []string{keep.ID()}) {
		t.Fatalf("Keys after retiring = %q, %v; want only %s", pubIDs(got), err, keep.ID())
	}
	if got, err := c.ListKeys(ctx, custody.Filter{GUN: gun, IncludeRetired: true}); err != nil || !slices.Equal(ids(got), []string{k.ID(), keep.ID()}) {
		t.Fatalf("ListKeys with retired = %q, %v", ids(got), err)
	}
	again, err := c.RetireKey(ctx, k.ID())
	if err != nil || !again.RetiredAt.Equal(r.RetiredAt) {
		t.Fatalf("RetireKey again = %v, %v; want the first retirement %v kept", again.RetiredAt, err, r.RetiredAt)
	}
	if got, err := c.Key(ctx, k.ID()); err != nil || !got.RetiredAt.Equal(r.RetiredAt) {
		t.Fatalf("Key of a retired key = %+v, %v", got, err)
	}

	if err := c.DeleteKey(ctx, k.ID()); err != nil {
		t.Fatalf("DeleteKey: %v", err)
	}
	_, err = c.Key(ctx, k.ID())
	wantErr(t, "Key of a deleted key", err, custody.ErrNotHeld)
	wantErr(t, "DeleteKey again", c.DeleteKey(ctx, k.ID()), custody.ErrNotHeld)
	_, err = c.RetireKey(ctx, k.ID())
	wantErr(t, "RetireKey of a deleted key", err, custody.ErrNotHeld)
	wantErr(t, "sign with a deleted key", Sign(ctx, c, gun, k), custody.ErrNotHeld)
	if got := all(t, c); !slices.Equal(got, []string{keep.ID()}) {
		t.Fatalf("keys after deletion: %q", got)
	}
	mustSign(t, c, gun, keep)
}

func testSignShapes(t *testing.T, s Subject) {
	ctx, c := t.Context(), s.Custodian
	for _, alg := range algorithms(s) {
		k := create(t, c, custody.Spec{GUN: gun, Role: "snapshot", Purpose: custody.PurposeSnapshot, Owner: custody.OwnerServer, Algorithm: alg})
		signer, err := c.Signer(ctx, gun, k.ID())
		if err != nil {
			t.Fatal(err)
		}
		msg := []byte("message")
		digest := sha256.Sum256(msg)
		type badInput struct {
			name  string
			input []byte
			opts  crypto.SignerOpts
		}
		bad := []badInput{{"a SHA-256 digest", digest[:], crypto.SHA256}}
		if alg == custody.AlgorithmECDSA {
			bad = []badInput{{"a whole message without hash", msg, crypto.Hash(0)}, {"a digest of the wrong size", digest[:20], crypto.SHA256}}
		}
		for _, b := range bad {
			if sig, err := signer.Sign(rand.Reader, b.input, b.opts); err == nil {
				t.Errorf("%s key signed %s: %x", alg, b.name, sig)
			}
		}
	}
}

func testNoPrivateKeyOut(t *testing.T, s Subject) {
	ctx, c := t.Context(), s.Custodian
	for _, alg := range algorithms(s) {
		k := create(t, c, custody.Spec{GUN: gun, Role: "snapshot", Purpose: custody.PurposeSnapshot, Owner: custody.OwnerServer, Algorithm: alg})
		signer, err := c.Signer(ctx, gun, k.ID())
		if err != nil {
			t.Fatal(err)
		}
		switch signer.(type) {
		case *ecdsa.PrivateKey, ed25519.PrivateKey, *ed25519.PrivateKey, interface{ Seed() []byte }, interface{ ECDH() }:
			t.Fatalf("Signer lends the private key itself (%T)", signer)
		}
		pub, err := keys.FromCrypto(signer.Public())
		if err != nil || pub.ID() != k.ID() {
			t.Fatalf("Signer's public key is %v (%v), want %s", pub, err, k.ID())
		}
	}
}

func testConcurrent(t *testing.T, s Subject) {
	ctx, c := t.Context(), s.Custodian
	var pubs []*keys.PublicKey
	for _, alg := range algorithms(s) {
		pubs = append(pubs, create(t, c, custody.Spec{GUN: gun, Role: "snapshot", Purpose: custody.PurposeSnapshot, Owner: custody.OwnerServer, Algorithm: alg}).Public)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 8 {
		wg.Go(func() {
			for j := range 8 {
				if err := Sign(ctx, c, gun, pubs[(i+j)%len(pubs)]); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Go(func() { // creations beside the signatures
		for range 4 {
			if _, err := c.Create(ctx, gun, "timestamp"); err != nil {
				errs <- err
				return
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent use: %v", err)
	}
	if got, err := c.Keys(ctx, gun, "timestamp"); err != nil || len(got) != 4 {
		t.Fatalf("Keys after concurrent creations = %q, %v; want 4", pubIDs(got), err)
	}
}

func testListLimit(t *testing.T, s Subject) {
	ctx, c := t.Context(), s.Custodian
	var made []string
	for range 3 {
		k := create(t, c, delegation("alpha", "alice", ""))
		made = append([]string{k.ID()}, made...)
	}
	got, err := c.ListKeys(ctx, custody.Filter{Owner: custody.ProjectOwner("alpha"), Limit: 2})
	if err != nil || !slices.Equal(ids(got), made[:2]) {
		t.Fatalf("ListKeys with Limit 2 = %q, %v; want %q", ids(got), err, made[:2])
	}
}

func testRestart(t *testing.T, s Subject) {
	if s.Restart == nil {
		t.Skip("the subject does not restart")
	}
	ctx, c := t.Context(), s.Custodian
	var made []custody.Key
	for _, alg := range algorithms(s) {
		made = append(made, create(t, c, custody.Spec{GUN: gun, Role: "snapshot", Purpose: custody.PurposeSnapshot, Owner: custody.OwnerServer, Algorithm: alg}))
	}
	cos := create(t, c, custody.Spec{Purpose: custody.PurposeCosign, Owner: custody.ProjectOwner("alpha")})
	gone := create(t, c, delegation("alpha", "alice", ""))
	if _, err := c.RetireKey(ctx, gone.ID()); err != nil {
		t.Fatal(err)
	}
	c2 := s.Restart(t)
	for _, k := range append(made, cos) {
		mustSign(t, c2, k.GUN, k.Public)
		got, err := c2.Key(ctx, k.ID())
		if err != nil {
			t.Fatal(err)
		}
		checkKey(t, "Key after restart", got, k.Spec())
		if !got.CreatedAt.Equal(k.CreatedAt) {
			t.Fatalf("CreatedAt after restart %v, was %v", got.CreatedAt, k.CreatedAt)
		}
	}
	wantErr(t, "a retired key after restart", Sign(ctx, c2, gone.GUN, gone.Public), custody.ErrNotHeld)
	if got, err := c2.Key(ctx, gone.ID()); err != nil || got.RetiredAt.IsZero() {
		t.Fatalf("retired key after restart: %+v, %v", got, err)
	}
}
