package tuf_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/signet-trust/signet/internal/tuf"
)

func addFixtureSeeds(f *testing.F) {
	files, _ := filepath.Glob("testdata/*/*/*.json")
	more, _ := filepath.Glob("testdata/*/*/targets/*.json")
	for _, name := range append(files, more...) {
		if filepath.Base(name) == "fixture.json" {
			continue
		}
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"signed":{"_type":"Root","version":1,"expires":"2030-01-01T00:00:00Z"},"signatures":[]}`))
	f.Add([]byte(`{"signed":null}`))
}

// FuzzParse feeds every parser arbitrary bytes: none may panic, and what
// parses must keep its bytes and satisfy the structural rules.
func FuzzParse(f *testing.F) {
	addFixtureSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		if c, err := tuf.Peek(data); err == nil && c.Type == "" && c.Version == 0 && !c.Expires.IsZero() {
			_ = c
		}
		if m, err := tuf.ParseRoot(data); err == nil {
			if string(m.Raw) != string(data) {
				t.Fatal("root: raw bytes not kept")
			}
			for _, r := range tuf.BaseRoles {
				if m.Signed.Roles[r] == nil || m.Signed.Roles[r].Threshold < 1 {
					t.Fatalf("root accepted without a valid %s role", r)
				}
			}
		}
		if m, err := tuf.ParseTargets("targets/x", data); err == nil {
			for _, d := range m.Signed.Delegations.Roles {
				if !tuf.IsDelegation(d.Name) || tuf.Parent(d.Name) != "targets/x" {
					t.Fatalf("invalid delegation %q accepted", d.Name)
				}
			}
		}
		if m, err := tuf.ParseSnapshot(data); err == nil {
			if len(m.Signed.Meta["root"].Hashes["sha256"]) != 32 {
				t.Fatal("snapshot accepted without root sha256")
			}
		}
		if m, err := tuf.ParseTimestamp(data); err == nil {
			if len(m.Signed.Meta["snapshot"].Hashes["sha256"]) != 32 {
				t.Fatal("timestamp accepted without snapshot sha256")
			}
		}
	})
}

func FuzzRoleNames(f *testing.F) {
	for _, s := range []string{"targets/releases", "targets/a/b", "targets/../x", "targets//a", "root", "targets/A"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if tuf.IsDelegation(name) {
			if len(name) >= 256 || filepath.Clean(name) != name {
				t.Fatalf("bad delegation name %q accepted", name)
			}
			if p := tuf.Parent(name); !tuf.IsTargetsRole(p) {
				t.Fatalf("parent %q of %q is not a targets role", p, name)
			}
		}
	})
}
