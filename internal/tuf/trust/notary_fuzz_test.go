package trust_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/tuf"
	"github.com/signet-trust/signet/internal/tuf/cjson"
	"github.com/signet-trust/signet/internal/tuf/trust"
	"github.com/signet-trust/signet/internal/tuf/tuftest"
	"github.com/signet-trust/signet/internal/tuf/tuftest/notarytest"
)

// FuzzTargetsMatchNotary is the fuzzed half of the differential test of
// issue 10 (finding 2): any signed value — valid or not, canonical or not —
// signed by the targets key over Notary's canonical form of it or over its
// bytes as written, must be accepted by the verification state machine
// exactly when notary 0.7's builder accepts it (or refused for one of the
// deliberate reasons of notarytest.Deliberate).
func FuzzTargetsMatchNotary(f *testing.F) {
	files, _ := filepath.Glob("../testdata/*/*/targets*.json")
	more, _ := filepath.Glob("../testdata/*/*/targets/*.json")
	for _, name := range append(files, more...) {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		var env struct{ Signed json.RawMessage }
		if json.Unmarshal(b, &env) == nil && len(env.Signed) > 0 {
			f.Add([]byte(env.Signed), byte(0))
			f.Add([]byte(env.Signed), byte(1))
		}
	}
	exp := time.Now().AddDate(1, 0, 0).UTC().Format(time.RFC3339)
	for _, s := range []string{
		`{"_type":"Targets","delegations":{"keys":{},"roles":[]},"expires":"` + exp + `","targets":{},"version":1}`,
		`{"version":1,"targets":{"a":{"length":9007199254740993,"hashes":{"sha256":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}}},"expires":"` + exp + `","delegations":{"keys":{},"roles":[]},"_type":"Targets"}`,
		"{\n  \"_type\": \"Targets\",\n  \"expires\": \"" + exp + "\",\n  \"version\": 2,\n  \"x\": 1e3\n}",
		`{"_type":"Targets","expires":"` + exp + `","version":1,"x":1.5}`,
		`{"_type":"Targets","expires":"` + exp + `","version":1,"s":"\u00e9\/<"}`,
	} {
		f.Add([]byte(s), byte(0))
		f.Add([]byte(s), byte(1))
	}
	now := time.Now()
	r := tuftest.NewRepo(f, gun, now)
	root := r.Sign(tuf.RoleRoot)
	key := r.Keys[tuf.RoleTargets][0]
	f.Fuzz(func(t *testing.T, signed []byte, over byte) {
		msg := signed
		if over%2 == 0 {
			if c, err := cjson.Canonicalize(signed); err == nil {
				msg = c
			}
		}
		method, sig, err := keys.Sign(key.Signer, msg)
		if err != nil {
			t.Fatal(err)
		}
		file := tuf.Envelope(signed, []tuf.Signature{{KeyID: key.Key.ID(), Method: method, Sig: sig}})
		v := trust.New(gun, time.Now(), trust.Options{})
		if err := v.LoadRoot(root); err != nil {
			t.Fatal(err)
		}
		serr := v.LoadTargets(tuf.RoleTargets, file)
		nerr := notarytest.LoadTargets(gun, root, file)
		switch {
		case serr == nil && nerr != nil:
			t.Fatalf("signet accepts targets notary 0.7 refuses (%v):\n%q", nerr, file)
		case serr != nil && nerr == nil:
			if _, ok := notarytest.Deliberate(serr.Error()); !ok {
				t.Fatalf("signet refuses (%v) targets notary 0.7 accepts:\n%q", serr, file)
			}
		}
	})
}
