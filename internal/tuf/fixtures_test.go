package tuf_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/tuf"
	"github.com/signet-trust/signet/internal/tuf/cjson"
	"github.com/signet-trust/signet/internal/tuf/trust"
)

// fixture is a repository captured from the reference notary-server after
// the real notary 0.7 client or docker trust wrote it (see fixture.json).
type fixture struct {
	dir      string
	GUN      string    `json:"gun"`
	Captured time.Time `json:"captured"`
	Files    []string  `json:"files"`
}

func loadFixtures(t *testing.T) []fixture {
	t.Helper()
	dirs, err := filepath.Glob("testdata/*/*/fixture.json")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no fixtures under testdata (%v)", err)
	}
	var out []fixture
	for _, d := range dirs {
		var f fixture
		b, err := os.ReadFile(d)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &f); err != nil {
			t.Fatalf("%s: %v", d, err)
		}
		f.dir = filepath.Dir(d)
		out = append(out, f)
	}
	return out
}

func (f fixture) read(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(f.dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (f fixture) metadataFiles() []string {
	var out []string
	for _, name := range f.Files {
		if strings.HasSuffix(name, ".json") && name != "fixture.json" {
			out = append(out, name)
		}
	}
	return out
}

// roleOf maps a fixture file name to its role: "2.root.json" → root,
// "targets/releases.json" → targets/releases.
func roleOf(name string) string {
	name = strings.TrimSuffix(name, ".json")
	if i := strings.IndexByte(name, '.'); i >= 0 {
		name = name[i+1:]
	}
	return name
}

// TestFixturesEncodeLikeNotary checks, on every real file, that the signed
// part is what our canonical encoder produces and that our envelope encoder
// reproduces the whole file byte for byte.
func TestFixturesEncodeLikeNotary(t *testing.T) {
	for _, f := range loadFixtures(t) {
		for _, name := range f.metadataFiles() {
			t.Run(filepath.Join(filepath.Base(filepath.Dir(f.dir)), filepath.Base(f.dir), name), func(t *testing.T) {
				raw := f.read(t, name)
				var env struct {
					Signed     json.RawMessage `json:"signed"`
					Signatures []tuf.Signature `json:"signatures"`
				}
				if err := json.Unmarshal(raw, &env); err != nil {
					t.Fatal(err)
				}
				canon, err := cjson.Canonicalize(env.Signed)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(canon, env.Signed) {
					t.Errorf("signed part is not in our canonical form:\n got %.200s\nfile %.200s", canon, env.Signed)
				}
				if got := tuf.Envelope(env.Signed, env.Signatures); !bytes.Equal(got, raw) {
					t.Errorf("envelope differs:\n got %.300s\nfile %.300s", got, raw)
				}
			})
		}
	}
}

// TestFixturesKeyIDs checks Notary's key ID rule on every key of every real
// file, and that private key files are named by canonical key IDs of keys
// the metadata lists.
func TestFixturesKeyIDs(t *testing.T) {
	for _, f := range loadFixtures(t) {
		canonical := map[string]bool{}
		for _, name := range f.metadataFiles() {
			raw := f.read(t, name)
			role := roleOf(name)
			switch {
			case role == tuf.RoleRoot:
				m, err := tuf.ParseRoot(raw)
				if err != nil {
					t.Fatalf("%s/%s: %v", f.dir, name, err)
				}
				for id, k := range m.Signed.Keys {
					if k.ID() != id {
						t.Errorf("%s/%s: key listed as %s has ID %s", f.dir, name, id, k.ID())
					}
					canonical[k.CanonicalID()] = true
				}
			case tuf.IsTargetsRole(role):
				m, err := tuf.ParseTargets(role, raw)
				if err != nil {
					t.Fatalf("%s/%s: %v", f.dir, name, err)
				}
				for id, k := range m.Signed.Delegations.Keys {
					if k.ID() != id {
						t.Errorf("%s/%s: delegation key listed as %s has ID %s", f.dir, name, id, k.ID())
					}
					canonical[k.CanonicalID()] = true
				}
			}
		}
		keyFiles, _ := filepath.Glob(filepath.Join(f.dir, "*private", "*.key"))
		for _, kf := range keyFiles {
			id := strings.TrimSuffix(filepath.Base(kf), ".key")
			if !canonical[id] {
				t.Errorf("%s: private key file %s is not the canonical ID of any listed key", f.dir, filepath.Base(kf))
			}
		}
	}
}

// TestFixturesVerify loads every real repository through the verification
// state machine as a client would, at the time it was captured, following
// every root rotation the fixture recorded.
func TestFixturesVerify(t *testing.T) {
	for _, f := range loadFixtures(t) {
		t.Run(filepath.Base(filepath.Dir(f.dir))+"/"+filepath.Base(f.dir), func(t *testing.T) {
			now := f.Captured.Add(time.Minute)
			v := trust.New(f.GUN, now, trust.Options{})
			var versions []string
			for _, name := range f.metadataFiles() {
				if roleOf(name) == tuf.RoleRoot && name != "root.json" {
					versions = append(versions, name)
				}
			}
			sort.Slice(versions, func(i, j int) bool {
				var a, b int
				fmt.Sscanf(versions[i], "%d.", &a)
				fmt.Sscanf(versions[j], "%d.", &b)
				return a < b
			})
			for _, name := range append(versions, "root.json") {
				if err := v.LoadRoot(f.read(t, name)); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
			}
			if err := v.LoadTimestamp(f.read(t, "timestamp.json")); err != nil {
				t.Fatal(err)
			}
			if err := v.LoadSnapshot(f.read(t, "snapshot.json")); err != nil {
				t.Fatal(err)
			}
			queue := []string{tuf.RoleTargets}
			loaded := 0
			for len(queue) > 0 {
				role := queue[0]
				queue = queue[1:]
				if _, err := os.Stat(filepath.Join(f.dir, role+".json")); err != nil {
					continue // delegated but never written
				}
				if err := v.LoadTargets(role, f.read(t, role+".json")); err != nil {
					t.Fatal(err)
				}
				loaded++
				for _, d := range v.Targets(role).Signed.Delegations.Roles {
					queue = append(queue, d.Name)
				}
			}
			if loaded == 0 {
				t.Fatal("no targets role loaded")
			}
			// Timestamps expire after 14 days; the state machine must say so.
			late := trust.New(f.GUN, f.Captured.AddDate(0, 0, 15), trust.Options{})
			if err := late.LoadRoot(f.read(t, "root.json")); err != nil {
				t.Fatal(err)
			}
			if err := late.LoadTimestamp(f.read(t, "timestamp.json")); err == nil {
				t.Fatal("a 15-day-old timestamp was accepted")
			}
		})
	}
}

// TestVerifyNonCanonicalSignedBytes: a file whose signed value is not in
// canonical form (reformatted, keys reordered) still verifies, through the
// canonical re-encoding, as Notary's verifier does.
func TestVerifyNonCanonicalSignedBytes(t *testing.T) {
	f := loadFixtures(t)[0]
	raw := f.read(t, "root.json")
	var env map[string]json.RawMessage
	if err := json.Unmarshal(raw, &env); err != nil {
		t.Fatal(err)
	}
	var signed map[string]any
	json.Unmarshal(env["signed"], &signed)
	pretty, _ := json.MarshalIndent(signed, "", "  ") // sorted keys, but indented
	env["signed"] = pretty
	reformatted, _ := json.Marshal(env)
	v := trust.New(f.GUN, f.Captured.Add(time.Minute), trust.Options{})
	if err := v.LoadRoot(reformatted); err != nil {
		t.Fatalf("reformatted root refused: %v", err)
	}
}
