package changes_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/signet-trust/signet/internal/client/changes"
	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/tuf"
	"github.com/signet-trust/signet/internal/tuf/tuftest"
)

// copyDir copies the changelist fixtures into a fresh directory.
func copyDir(t *testing.T, from string) string {
	t.Helper()
	dir := t.TempDir()
	ents, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// readAll reads a changelist that must hold only known changes.
func readAll(t *testing.T, l changes.List) ([]changes.Staged, []changes.Change) {
	t.Helper()
	staged, err := l.Read()
	if err != nil {
		t.Fatal(err)
	}
	cs, err := l.Changes(staged)
	if err != nil {
		t.Fatal(err)
	}
	return staged, cs
}

// describe names a change by its type and fields that matter here.
func describe(c changes.Change) string {
	switch c := c.(type) {
	case changes.AddTarget:
		return fmt.Sprintf("AddTarget %s %s %d", c.Role, c.Name, c.Meta.Length)
	case changes.RemoveTarget:
		return fmt.Sprintf("RemoveTarget %s %s", c.Role, c.Name)
	case changes.AddDelegation:
		return fmt.Sprintf("AddDelegation %s t=%d keys=%d paths=%q", c.Role, c.Threshold, len(c.Keys), c.Paths)
	case changes.UpdateDelegation:
		return fmt.Sprintf("UpdateDelegation %s t=%d +keys=%d -keys=%q +paths=%q -paths=%q clear=%v", c.Role, c.Threshold, len(c.AddKeys), c.RemoveKeys, c.AddPaths, c.RemovePaths, c.ClearPaths)
	case changes.RemoveDelegation:
		return "RemoveDelegation " + c.Role
	case changes.PurgeKeys:
		return fmt.Sprintf("PurgeKeys %s %q", c.Under, c.KeyIDs)
	case changes.RotateKey:
		return fmt.Sprintf("RotateKey %s keys=%d", c.Role, len(c.Keys))
	case changes.Witness:
		return "Witness " + c.Role
	}
	return fmt.Sprintf("%T", c)
}

// TestNotaryChangelist reads a changelist the notary 0.7 client wrote
// (testdata/notary-0.7/README) into typed changes, and writes each back to
// a record notary reads the same way.
func TestNotaryChangelist(t *testing.T) {
	staged, cs := readAll(t, changes.List{Dir: copyDir(t, filepath.Join("testdata", "notary-0.7"))})
	want := []string{
		"AddTarget targets v1 6",
		"AddTarget targets/releases v2 6",
		"AddTarget targets v3 123",
		"RemoveTarget targets v1",
		`AddDelegation targets/releases t=1 keys=1 paths=[]`,
		`AddDelegation targets/releases t=0 keys=0 paths=[""]`,
		`AddDelegation targets/team t=1 keys=1 paths=[]`,
		`AddDelegation targets/team t=0 keys=0 paths=["team/" "ops/"]`,
		`UpdateDelegation targets/team t=0 +keys=0 -keys=[] +paths=[] -paths=["ops/"] clear=false`,
		`UpdateDelegation targets/team t=0 +keys=0 -keys=["0123abcd"] +paths=[] -paths=[] clear=false`,
		`UpdateDelegation targets/team t=0 +keys=0 -keys=[] +paths=[] -paths=[] clear=true`,
		"RemoveDelegation targets/old",
		`PurgeKeys targets ["0123abcd" "4567ef"]`,
		"Witness targets/releases",
		"Witness targets",
	}
	if len(cs) != len(want) {
		t.Fatalf("%d changes, want %d", len(cs), len(want))
	}
	for i, c := range cs {
		if got := describe(c); got != want[i] {
			t.Errorf("change %d: %s, want %s", i, got, want[i])
		}
		r, err := changes.Encode(c)
		if err != nil {
			t.Fatal(err)
		}
		// The record written back decodes to the same change, and holds
		// the same fields and data notary wrote.
		back, err := changes.Decode(r)
		if err != nil || !reflect.DeepEqual(back, c) {
			t.Errorf("change %d does not round-trip: %+v, %v", i, back, err)
		}
		orig := staged[i].Record
		if r.Action != orig.Action || r.Scope != orig.Scope || r.Type != orig.Type || r.Path != orig.Path || !sameJSON(t, r.Data, orig.Data) {
			t.Errorf("change %d written as\n  %+v\nnotary wrote\n  %+v", i, r, orig)
		}
	}
	if k := cs[4].(changes.AddDelegation).Keys[0]; k.Type() != "ecdsa-x509" || k.Certificates()[0].Subject.CommonName != "alice" {
		t.Errorf("delegation key %s", k.Type())
	}
	if fm := cs[0].(changes.AddTarget).Meta; !bytes.Equal(fm.Hashes["sha256"], tuf.NewFileMeta([]byte("hello\n")).Hashes["sha256"]) || len(fm.Hashes["sha512"]) != 64 {
		t.Errorf("target meta %+v", fm)
	}
}

// sameJSON compares data fields: equal JSON values (notary writes the same
// objects; key order inside is not part of the format), null and absent
// alike.
func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatal(err)
	}
	return reflect.DeepEqual(x, y)
}

// TestAddRead: changes come back in the order they were staged, as the
// closed set of types, and Remove drops exactly the files given.
func TestAddRead(t *testing.T) {
	k := tuftest.NewKey(t).Key
	all := []changes.Change{
		changes.AddTarget{Role: "targets", Name: "v1", Meta: tuf.NewFileMeta([]byte("one"))},
		changes.RemoveTarget{Role: "targets/releases", Name: "v0"},
		changes.AddDelegation{Role: "targets/releases", Threshold: 1, Keys: []*keys.PublicKey{k}, Paths: []string{""}},
		changes.UpdateDelegation{Role: "targets/releases", Threshold: 2, AddKeys: []*keys.PublicKey{k}, RemoveKeys: []string{"ab"}, AddPaths: []string{"a/"}, RemovePaths: []string{"b/"}, ClearPaths: true},
		changes.RemoveDelegation{Role: "targets/old"},
		changes.PurgeKeys{Under: "targets/team", KeyIDs: []string{"cd"}},
		changes.RotateKey{Role: "snapshot", Keys: []*keys.PublicKey{k}},
		changes.Witness{Role: "targets"},
	}
	l := changes.List{Dir: filepath.Join(t.TempDir(), "changelist")}
	if err := l.Add(all...); err != nil {
		t.Fatal(err)
	}
	staged, cs := readAll(t, l)
	if len(cs) != len(all) {
		t.Fatalf("%d changes read, %d staged", len(cs), len(all))
	}
	for i := range all {
		if describe(cs[i]) != describe(all[i]) {
			t.Errorf("change %d: %s, want %s", i, describe(cs[i]), describe(all[i]))
		}
	}
	if err := l.Remove(staged[2:5]); err != nil {
		t.Fatal(err)
	}
	left, _ := l.Read()
	if len(left) != 5 || describe(left[2].Change) != describe(all[5]) {
		t.Fatalf("after removing three: %d left", len(left))
	}
	if err := l.Add(nil); err == nil {
		t.Error("a nil change was staged")
	}
}

// TestUnknownChanges: a record notary would not apply is kept (so status
// lists it and reset drops it) but never skipped: Changes refuses it and
// names the file.
func TestUnknownChanges(t *testing.T) {
	records := map[string]string{
		"update of a target":          `{"action":"update","role":"targets","type":"target","path":"v1","data":null}`,
		"unknown type":                `{"action":"create","role":"targets","type":"thing","path":"","data":null}`,
		"unknown scope":               `{"action":"create","role":"snapshot","type":"target","path":"v1","data":null}`,
		"delegation of targets":       `{"action":"create","role":"targets","type":"delegation","path":"","data":null}`,
		"purge that is not update":    `{"action":"delete","role":"targets/*","type":"delegation","path":"","data":null}`,
		"root change of another type": `{"action":"create","role":"root","type":"target","path":"","data":null}`,
		"root keys deleted":           `{"action":"delete","role":"root","type":"role","path":"targets","data":null}`,
		"root keys of a delegation":   `{"action":"create","role":"root","type":"role","path":"targets/x","data":"eyJrZXlzIjpbXSwicm9sZSI6InRhcmdldHMveCJ9"}`,
		"target data not meta":        `{"action":"create","role":"targets","type":"target","path":"v1","data":"eyJsZW5ndGgiOiJ4In0="}`,
		"bad delegation name":         `{"action":"create","role":"targets/Bad","type":"delegation","path":"","data":null}`,
	}
	for name, rec := range records {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			l := changes.List{Dir: dir}
			if err := l.Add(changes.Witness{Role: "targets"}); err != nil {
				t.Fatal(err)
			}
			const file = "09999999999999999999_x.change" // after the witness
			if err := os.WriteFile(filepath.Join(dir, file), []byte(rec), 0o600); err != nil {
				t.Fatal(err)
			}
			staged, err := l.Read()
			if err != nil || len(staged) != 2 {
				t.Fatalf("read: %d, %v", len(staged), err)
			}
			if staged[1].Change != nil || !errors.Is(staged[1].Err, changes.ErrUnknown) {
				t.Fatalf("decoded as %+v, %v", staged[1].Change, staged[1].Err)
			}
			_, err = l.Changes(staged)
			if !errors.Is(err, changes.ErrUnknown) || !strings.Contains(err.Error(), filepath.Join(dir, file)) {
				t.Fatalf("Changes: %v", err)
			}
			if err := l.Remove(staged[1:]); err != nil {
				t.Fatal(err)
			}
			if staged, _ := l.Read(); len(staged) != 1 {
				t.Fatalf("after reset: %d", len(staged))
			}
		})
	}
	// A file that is not a record at all stops the read, naming it.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "1_x.change"), []byte("not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := (changes.List{Dir: dir}).Read(); err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "1_x.change")) {
		t.Fatalf("non-JSON file: %v", err)
	}
	// A missing directory is an empty list.
	if staged, err := (changes.List{Dir: filepath.Join(dir, "none")}).Read(); err != nil || len(staged) != 0 {
		t.Fatalf("missing dir: %v %v", staged, err)
	}
}
