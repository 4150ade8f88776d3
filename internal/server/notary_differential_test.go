package server_test

// The differential test of issue 10 (finding 2) on the upload side: for a
// corpus of mutated uploads — hand-written attacks on every role, byte
// forms and signatures, plus random mutations — signet-server's verdict
// (accept or refuse) must be notary-server 0.7's, as its own library
// decides it (package notarytest). Signet may refuse what notary accepts
// only for the reasons notarytest.Deliberate lists (each one in
// docs/notary-compat.md); it may never accept what notary refuses.

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/ratelimit"
	"github.com/signet-trust/signet/internal/server"
	"github.com/signet-trust/signet/internal/tuf"
	"github.com/signet-trust/signet/internal/tuf/tuftest"
	"github.com/signet-trust/signet/internal/tuf/tuftest/notarytest"
)

// diffCase is one repository, published honestly, and the honest upload
// that the mutation then changes.
type diffCase struct {
	t      *testing.T
	e      *env
	gun    string
	r      *tuftest.Repo
	d      delegates
	server bool // server-managed snapshot
	held   notarytest.Held
	up     map[string][]byte
}

func newDiffCase(t *testing.T, e *env, i int, serverSnapshot bool) *diffCase {
	t.Helper()
	gun := fmt.Sprintf("example.com/diff/c%d", i)
	r := e.newClientRepo(gun, serverSnapshot)
	d := delegates{tuftest.NewKey(t), tuftest.NewKey(t), tuftest.NewKey(t)}
	r.Delegate("targets/releases", []string{""}, d.alice, d.bob)
	r.Delegate("targets/alice", []string{""}, d.alice)
	r.Delegate("targets/team", []string{"team/"}, d.team)
	r.AddTarget("targets", "v0", []byte("zero"))
	r.AddTarget("targets/releases", "v1", []byte("one"))
	r.AddTarget("targets/team", "team/app", []byte("app"))
	r.SignAll()
	first := []string{"root", "targets", "targets/releases", "targets/alice", "targets/team"}
	if !serverSnapshot {
		first = append(first, "snapshot")
	}
	if got := e.publish(gun, roles(r, first...)...); got.status != http.StatusOK {
		t.Fatalf("honest publish: %d %s", got.status, got.body)
	}
	c := &diffCase{t: t, e: e, gun: gun, r: r, d: d, server: serverSnapshot, up: map[string][]byte{}}
	c.held.Timestamp = map[string]bool{r.Root.Roles["timestamp"].KeyIDs[0]: true}
	if serverSnapshot {
		c.held.Snapshot = map[string]bool{r.Root.Roles["snapshot"].KeyIDs[0]: true}
	}
	// The honest next publish: a release by alice and a new top-level tag.
	r.AddTarget("targets/releases", "v2", []byte("two"))
	r.Bump("targets/releases")
	c.up["targets/releases"] = r.Sign("targets/releases", d.alice)
	r.AddTarget("targets", "t2", []byte("t two"))
	r.Bump("targets")
	c.up["targets"] = r.Sign("targets")
	c.resnapshot()
	return c
}

// resnapshot re-signs the client-held snapshot over the upload as it is
// now, so that a mutation of another role is judged on its own.
func (c *diffCase) resnapshot() {
	if c.server {
		delete(c.up, "snapshot")
		return
	}
	for role, b := range c.up {
		if role != "snapshot" && role != "timestamp" {
			c.r.Snapshot.Meta[role] = tuf.NewFileMeta(b)
		}
	}
	c.r.Snapshot.Version = 2
	c.up["snapshot"] = c.r.Sign("snapshot")
}

// keysOf returns the signing keys of role.
func (c *diffCase) keysOf(role string) []tuftest.Key {
	if role == "targets/releases" {
		return []tuftest.Key{c.d.alice}
	}
	return c.r.Keys[role]
}

// resign replaces role in the upload: its signed value (the upload's, or
// the last signed one) edited, written in form, signed over what over
// says by the role's keys (or ks).
func (c *diffCase) resign(role string, edit func(m map[string]any), form tuftest.Form, over tuftest.Over, ks ...tuftest.Key) {
	file := c.up[role]
	if file == nil {
		file = c.r.Signed[role]
	}
	m := tuftest.SignedValue(c.t, file)
	if edit != nil {
		edit(m)
	}
	if len(ks) == 0 {
		ks = c.keysOf(role)
	}
	c.up[role] = tuftest.SignValue(c.t, m, form, over, ks...)
}

// stored is what the server stores for the repository, for the oracle.
func (c *diffCase) stored() map[string][]byte {
	out := map[string][]byte{}
	for _, role := range []string{"root", "targets", "targets/releases", "targets/alice", "targets/team", "snapshot", "timestamp"} {
		if got := c.e.get("/v2/" + c.gun + "/_trust/tuf/" + role + ".json"); got.status == http.StatusOK {
			out[role] = got.body
		}
	}
	return out
}

// judge sends the upload to signet-server and to notary's validation and
// compares the verdicts. It returns the two for the corpus statistics.
func (c *diffCase) judge(name string) (signetOK, notaryOK bool) {
	c.t.Helper()
	stored := c.stored()
	notaryErr := notarytest.Upload(c.gun, stored, c.up, c.held)
	var parts []part
	names := make([]string, 0, len(c.up))
	for role := range c.up {
		names = append(names, role)
	}
	sort.Strings(names)
	for _, role := range names {
		parts = append(parts, part{role, c.up[role]})
	}
	got := c.e.publish(c.gun, parts...)
	signetOK, notaryOK = got.status == http.StatusOK, notaryErr == nil
	switch {
	case signetOK && !notaryOK:
		c.t.Errorf("%s: signet-server accepted an upload notary-server 0.7 refuses (%v)", name, notaryErr)
	case !signetOK && notaryOK:
		if why, ok := notarytest.Deliberate(string(got.body)); ok {
			c.t.Logf("%s: refused by signet only, deliberately: %s", name, why)
		} else {
			c.t.Errorf("%s: signet-server refused (%d %s) an upload notary-server 0.7 accepts", name, got.status, got.body)
		}
	}
	if !signetOK {
		after := c.stored()
		for role, b := range stored {
			if string(after[role]) != string(b) {
				c.t.Errorf("%s: %s changed after a refused upload", name, role)
			}
		}
	}
	return signetOK, notaryOK
}

type diffMutation struct {
	name string
	edit func(c *diffCase)
}

func setPath(m map[string]any, v any, path ...string) {
	for _, p := range path[:len(path)-1] {
		next, _ := m[p].(map[string]any)
		if next == nil {
			next = map[string]any{}
			m[p] = next
		}
		m = next
	}
	m[path[len(path)-1]] = v
}

func delegationEntry(m map[string]any, name string) map[string]any {
	roles, _ := m["delegations"].(map[string]any)["roles"].([]any)
	for _, r := range roles {
		if e, _ := r.(map[string]any); e != nil && e["name"] == name {
			return e
		}
	}
	return nil
}

// diffMutations are the hand-written part of the corpus.
func diffMutations() []diffMutation {
	num := func(s string) json.Number { return json.Number(s) }
	release := func(edit func(m map[string]any), form tuftest.Form, over tuftest.Over) func(c *diffCase) {
		return func(c *diffCase) { c.resign("targets/releases", edit, form, over); c.resnapshot() }
	}
	targets := func(edit func(m map[string]any), form tuftest.Form, over tuftest.Over) func(c *diffCase) {
		return func(c *diffCase) { c.resign("targets", edit, form, over); c.resnapshot() }
	}
	root := func(edit func(c *diffCase, m map[string]any), ks func(c *diffCase) []tuftest.Key) func(c *diffCase) {
		return func(c *diffCase) {
			c.resign("root", func(m map[string]any) {
				m["version"] = num("2")
				edit(c, m)
			}, tuftest.FormSorted, tuftest.OverNotary, ks(c)...)
			c.resnapshot()
		}
	}
	rootKeys := func(c *diffCase) []tuftest.Key { return c.r.Keys["root"] }
	var out []diffMutation
	// Byte forms and what was signed.
	for _, form := range tuftest.Forms {
		for _, over := range []tuftest.Over{tuftest.OverNotary, tuftest.OverWritten} {
			out = append(out,
				diffMutation{fmt.Sprintf("delegation %s, signed %s", form, over), release(nil, form, over)},
				diffMutation{fmt.Sprintf("targets %s, signed %s", form, over), targets(nil, form, over)},
				diffMutation{fmt.Sprintf("delegation with a non-ASCII target %s, signed %s", form, over), release(func(m map[string]any) {
					setPath(m, map[string]any{"length": num("3"), "hashes": map[string]any{"sha256": base64.StdEncoding.EncodeToString(make([]byte, 32))}}, "targets", "é/<tag>&")
				}, form, over)},
				diffMutation{fmt.Sprintf("integer above 2^53, %s, signed %s", form, over), release(func(m map[string]any) {
					setPath(m, num("9007199254740993"), "targets", "v2", "length")
				}, form, over)},
				diffMutation{fmt.Sprintf("version written 3.0, %s, signed %s", form, over), release(func(m map[string]any) { m["version"] = num("3.0") }, form, over)},
				diffMutation{fmt.Sprintf("unknown field 1e3, %s, signed %s", form, over), release(func(m map[string]any) { m["x"] = num("1e3") }, form, over)},
			)
		}
	}
	out = append(out,
		// Numbers notary cannot represent or that are not integers.
		diffMutation{"unknown field 1.5", release(func(m map[string]any) { m["x"] = num("1.5") }, tuftest.FormSorted, tuftest.OverNotary)},
		diffMutation{"unknown field 1e19", release(func(m map[string]any) { m["x"] = num("1e19") }, tuftest.FormSorted, tuftest.OverWritten)},
		diffMutation{"unknown field -0", release(func(m map[string]any) { m["x"] = num("-0") }, tuftest.FormSorted, tuftest.OverNotary)},
		diffMutation{"custom with unsorted keys", release(func(m map[string]any) {
			setPath(m, map[string]any{"b": num("1"), "a": "x"}, "targets", "v2", "custom")
		}, tuftest.FormReversed, tuftest.OverNotary)},
		// Versions and expiry.
		diffMutation{"delegation version 0", release(func(m map[string]any) { m["version"] = num("0") }, tuftest.FormSorted, tuftest.OverNotary)},
		diffMutation{"delegation version as a string", release(func(m map[string]any) { m["version"] = "3" }, tuftest.FormSorted, tuftest.OverNotary)},
		diffMutation{"delegation expired", release(func(m map[string]any) {
			m["expires"] = time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
		}, tuftest.FormSorted, tuftest.OverNotary)},
		diffMutation{"delegation expiry with an offset and nanoseconds", release(func(m map[string]any) {
			m["expires"] = time.Now().AddDate(1, 0, 0).In(time.FixedZone("", -5*3600)).Format(time.RFC3339Nano)
		}, tuftest.FormSorted, tuftest.OverNotary)},
		diffMutation{"delegation expiry not a time", release(func(m map[string]any) { m["expires"] = "tomorrow" }, tuftest.FormSorted, tuftest.OverNotary)},
		diffMutation{"delegation _type Root", release(func(m map[string]any) { m["_type"] = "Root" }, tuftest.FormSorted, tuftest.OverNotary)},
		diffMutation{"delegation _type lower case", release(func(m map[string]any) { m["_type"] = "targets" }, tuftest.FormSorted, tuftest.OverNotary)},
		diffMutation{"delegation field names upper case", release(func(m map[string]any) { m["VERSION"] = m["version"]; delete(m, "version") }, tuftest.FormSorted, tuftest.OverNotary)},
		// Targets entries.
		diffMutation{"target without hashes", release(func(m map[string]any) { setPath(m, map[string]any{}, "targets", "v2", "hashes") }, tuftest.FormSorted, tuftest.OverNotary)},
		diffMutation{"target with a short sha256", release(func(m map[string]any) {
			setPath(m, map[string]any{"sha256": "AAAA"}, "targets", "v2", "hashes")
		}, tuftest.FormSorted, tuftest.OverNotary)},
		diffMutation{"target with a negative length", release(func(m map[string]any) { setPath(m, num("-1"), "targets", "v2", "length") }, tuftest.FormSorted, tuftest.OverNotary)},
		diffMutation{"target outside the team's paths", func(c *diffCase) {
			c.resign("targets/team", func(m map[string]any) {
				m["version"] = num("2")
				setPath(m, map[string]any{"length": num("1"), "hashes": map[string]any{"sha256": base64.StdEncoding.EncodeToString(make([]byte, 32))}}, "targets", "outside")
			}, tuftest.FormSorted, tuftest.OverNotary, c.d.team)
			c.resnapshot()
		}},
		// Delegations.
		diffMutation{"delegation to an invalid name", targets(func(m map[string]any) { delegationEntry(m, "targets/alice")["name"] = "targets/Alice" }, tuftest.FormSorted, tuftest.OverNotary)},
		diffMutation{"delegation to a grandchild", targets(func(m map[string]any) { delegationEntry(m, "targets/alice")["name"] = "targets/x/alice" }, tuftest.FormSorted, tuftest.OverNotary)},
		diffMutation{"delegation threshold 0", targets(func(m map[string]any) { delegationEntry(m, "targets/alice")["threshold"] = num("0") }, tuftest.FormSorted, tuftest.OverNotary)},
		diffMutation{"delegation listing an unknown key", targets(func(m map[string]any) {
			e := delegationEntry(m, "targets/alice")
			e["keyids"] = append(e["keyids"].([]any), fakeKeyID)
		}, tuftest.FormSorted, tuftest.OverNotary)},
		diffMutation{"delegation listed twice", targets(func(m map[string]any) {
			dl := m["delegations"].(map[string]any)
			dl["roles"] = append(dl["roles"].([]any), delegationEntry(m, "targets/alice"))
		}, tuftest.FormSorted, tuftest.OverNotary)},
		diffMutation{"delegation key under a made-up ID as well", targets(func(m map[string]any) {
			dl := m["delegations"].(map[string]any)
			ks := dl["keys"].(map[string]any)
			for _, k := range ks {
				ks[fakeKeyID] = k
				break
			}
		}, tuftest.FormSorted, tuftest.OverNotary)},
		diffMutation{"delegation key of an unknown type", targets(func(m map[string]any) {
			setPath(m, map[string]any{"keytype": "dsa", "keyval": map[string]any{"private": nil, "public": "AAAA"}}, "delegations", "keys", fakeKeyID)
		}, tuftest.FormSorted, tuftest.OverNotary)},
		diffMutation{"delegations null", targets(func(m map[string]any) { m["delegations"] = nil }, tuftest.FormSorted, tuftest.OverNotary)},
		diffMutation{"delegation removed, its role still uploaded", targets(func(m map[string]any) {
			dl := m["delegations"].(map[string]any)
			dl["roles"] = slices.DeleteFunc(dl["roles"].([]any), func(r any) bool { return r.(map[string]any)["name"] == "targets/releases" })
		}, tuftest.FormSorted, tuftest.OverNotary)},
		diffMutation{"delegation threshold 2 over alice and bob, signed by alice", func(c *diffCase) {
			c.resign("targets", func(m map[string]any) { delegationEntry(m, "targets/releases")["threshold"] = num("2") }, tuftest.FormSorted, tuftest.OverNotary)
			c.resnapshot()
		}},
		diffMutation{"delegation threshold 2, signed by alice and bob", func(c *diffCase) {
			c.resign("targets", func(m map[string]any) { delegationEntry(m, "targets/releases")["threshold"] = num("2") }, tuftest.FormSorted, tuftest.OverNotary)
			c.resign("targets/releases", nil, tuftest.FormSorted, tuftest.OverNotary, c.d.alice, c.d.bob)
			c.resnapshot()
		}},
		// Signatures.
		diffMutation{"delegation signed by a stranger", func(c *diffCase) {
			c.resign("targets/releases", nil, tuftest.FormSorted, tuftest.OverNotary, tuftest.NewKey(c.t))
			c.resnapshot()
		}},
		diffMutation{"delegation signature method upper case", sigEdit("targets/releases", func(s map[string]any) { s["method"] = "ECDSA" })},
		diffMutation{"delegation signature method eddsa", sigEdit("targets/releases", func(s map[string]any) { s["method"] = "eddsa" })},
		diffMutation{"delegation signature truncated", sigEdit("targets/releases", func(s map[string]any) { s["sig"] = s["sig"].(string)[:20] + "==" })},
		diffMutation{"delegation signature without key ID", sigEdit("targets/releases", func(s map[string]any) { s["keyid"] = "" })},
		diffMutation{"delegation signature under a made-up key ID", sigEdit("targets/releases", func(s map[string]any) { s["keyid"] = fakeKeyID })},
		diffMutation{"delegation signed twice by alice", func(c *diffCase) {
			c.up["targets/releases"] = tuftest.DuplicateSignature(c.t, c.up["targets/releases"], 2)
			c.resnapshot()
		}},
		diffMutation{"delegation with an extra empty signature", func(c *diffCase) {
			c.up["targets/releases"] = tuftest.EditSignatures(c.t, c.up["targets/releases"], func(s []any) []any {
				return append(s, map[string]any{"keyid": c.d.bob.Key.ID(), "method": "ecdsa", "sig": ""})
			})
			c.resnapshot()
		}},
		diffMutation{"delegation signatures null", func(c *diffCase) {
			c.up["targets/releases"] = tuftest.EditSignatures(c.t, c.up["targets/releases"], func([]any) []any { return nil })
			c.resnapshot()
		}},
		// Root.
		diffMutation{"root rotation to a new root key, signed by old and new", func(c *diffCase) {
			nk := tuftest.NewRootKey(c.t, c.gun, time.Now())
			old := c.r.Keys["root"]
			c.r.SetRoleKeys("root", nk)
			c.r.Root.Version = 2
			c.up["root"] = c.r.Sign("root", append(old, nk)...)
			c.resnapshot()
		}},
		diffMutation{"root rotation signed by the new key only", func(c *diffCase) {
			nk := tuftest.NewRootKey(c.t, c.gun, time.Now())
			c.r.SetRoleKeys("root", nk)
			c.r.Root.Version = 2
			c.up["root"] = c.r.Sign("root", nk)
			c.resnapshot()
		}},
		diffMutation{"root mapping a made-up ID to the targets key", root(func(c *diffCase, m map[string]any) {
			ks := m["keys"].(map[string]any)
			tid := c.r.Keys["targets"][0].Key.ID()
			ks[fakeKeyID] = ks[tid]
			setPath(m, []any{fakeKeyID}, "roles", "targets", "keyids")
		}, rootKeys)},
		diffMutation{"root with an extra unused key under a made-up ID", root(func(c *diffCase, m map[string]any) {
			ks := m["keys"].(map[string]any)
			ks[fakeKeyID] = ks[c.r.Keys["targets"][0].Key.ID()]
		}, rootKeys)},
		diffMutation{"root without a snapshot role", root(func(c *diffCase, m map[string]any) { delete(m["roles"].(map[string]any), "snapshot") }, rootKeys)},
		diffMutation{"root threshold 0", root(func(c *diffCase, m map[string]any) { setPath(m, num("0"), "roles", "root", "threshold") }, rootKeys)},
		diffMutation{"root with a mirror role", root(func(c *diffCase, m map[string]any) {
			setPath(m, map[string]any{"keyids": []any{}, "threshold": num("1")}, "roles", "mirror")
		}, rootKeys)},
		diffMutation{"root version 3", root(func(c *diffCase, m map[string]any) { m["version"] = num("3") }, rootKeys)},
		diffMutation{"root version 1 again, changed", root(func(c *diffCase, m map[string]any) { m["version"] = num("1"); m["consistent_snapshot"] = true }, rootKeys)},
		diffMutation{"root signed by the targets key", root(func(*diffCase, map[string]any) {}, func(c *diffCase) []tuftest.Key { return c.r.Keys["targets"] })},
		diffMutation{"root signed over indented bytes", func(c *diffCase) {
			c.resign("root", func(m map[string]any) { m["version"] = num("2") }, tuftest.FormIndented, tuftest.OverWritten, c.r.Keys["root"]...)
			c.resnapshot()
		}},
		diffMutation{"root re-signed over notary's form, indented", func(c *diffCase) {
			c.resign("root", func(m map[string]any) { m["version"] = num("2") }, tuftest.FormIndented, tuftest.OverNotary, c.r.Keys["root"]...)
			c.resnapshot()
		}},
		// Snapshot (client-held cases only change something).
		diffMutation{"snapshot without the delegation", func(c *diffCase) {
			if c.server {
				return
			}
			delete(c.r.Snapshot.Meta, "targets/releases")
			c.up["snapshot"] = c.r.Sign("snapshot")
		}},
		diffMutation{"snapshot with a wrong length only", func(c *diffCase) {
			if c.server {
				return
			}
			fm := c.r.Snapshot.Meta["targets/releases"]
			fm.Length++
			c.r.Snapshot.Meta["targets/releases"] = fm
			c.up["snapshot"] = c.r.Sign("snapshot")
		}},
		diffMutation{"snapshot with sha512 only for the delegation", func(c *diffCase) {
			if c.server {
				return
			}
			fm := c.r.Snapshot.Meta["targets/releases"]
			fm.Hashes = map[string][]byte{"sha512": fm.Hashes["sha512"]}
			c.r.Snapshot.Meta["targets/releases"] = fm
			c.up["snapshot"] = c.r.Sign("snapshot")
		}},
		diffMutation{"snapshot listing the timestamp", func(c *diffCase) {
			if c.server {
				return
			}
			c.r.Snapshot.Meta["timestamp"] = tuf.NewFileMeta([]byte("x"))
			c.up["snapshot"] = c.r.Sign("snapshot")
		}},
		diffMutation{"snapshot signed over indented bytes", func(c *diffCase) {
			if c.server {
				return
			}
			c.resign("snapshot", nil, tuftest.FormIndented, tuftest.OverWritten)
		}},
		// Envelopes.
		diffMutation{"envelope with trailing garbage", func(c *diffCase) {
			c.up["targets/releases"] = append(c.up["targets/releases"], []byte(" x")...)
			c.resnapshot()
		}},
		diffMutation{"envelope with signed as a string", func(c *diffCase) {
			c.up["targets/releases"] = []byte(`{"signed":"x","signatures":[]}`)
			c.resnapshot()
		}},
		diffMutation{"envelope without signed", func(c *diffCase) {
			c.up["targets/releases"] = []byte(`{"signatures":[]}`)
			c.resnapshot()
		}},
		diffMutation{"upload of an invalid role name", func(c *diffCase) { c.up["targets/Bad"] = c.up["targets/releases"] }},
		diffMutation{"uploaded timestamp (ignored)", func(c *diffCase) {
			c.up["timestamp"] = tuftest.SignValue(c.t, map[string]any{"_type": "Timestamp"}, tuftest.FormSorted, tuftest.OverNotary, tuftest.NewKey(c.t))
		}},
		diffMutation{"honest upload", func(*diffCase) {}},
	)
	return out
}

func sigEdit(role string, edit func(s map[string]any)) func(c *diffCase) {
	return func(c *diffCase) {
		c.up[role] = tuftest.EditSignatures(c.t, c.up[role], func(sigs []any) []any {
			for _, s := range sigs {
				edit(s.(map[string]any))
			}
			return sigs
		})
		c.resnapshot()
	}
}

// randomMutation edits one random node of one role's signed value and
// signs the result in a random form over random bytes: the fuzzed part of
// the corpus.
func randomMutation(rng *rand.Rand) diffMutation {
	rolesToEdit := []string{"targets/releases", "targets", "root", "snapshot"}
	role := rolesToEdit[rng.IntN(len(rolesToEdit))]
	values := []any{nil, true, "", "x", "Targets", json.Number("0"), json.Number("1"), json.Number("-1"), json.Number("2"),
		json.Number("1.5"), json.Number("1e3"), json.Number("9007199254740993"), json.Number("1e19"), []any{}, map[string]any{}}
	op, val := rng.IntN(3), values[rng.IntN(len(values))]
	form, over := tuftest.Forms[rng.IntN(len(tuftest.Forms))], tuftest.Over(rng.IntN(2))
	pick := rng.Uint64()
	name := fmt.Sprintf("random %s op %d value %v %s %s #%x", role, op, val, form, over, pick%1000)
	return diffMutation{name, func(c *diffCase) {
		if role == "snapshot" && c.server {
			return
		}
		c.resign(role, func(m map[string]any) {
			if role == "root" {
				m["version"] = json.Number("2")
			}
			mutateNode(m, op, val, pick)
		}, form, over)
		if role != "snapshot" {
			c.resnapshot()
		}
	}}
}

// mutateNode walks to a node chosen by pick and replaces it (op 0),
// deletes it (op 1) or adds an unknown field beside it (op 2).
func mutateNode(m map[string]any, op int, val any, pick uint64) {
	for {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		if len(keys) == 0 {
			m["x"] = val
			return
		}
		sort.Strings(keys)
		k := keys[pick%uint64(len(keys))]
		pick /= uint64(len(keys)) + 1
		child, isObj := m[k].(map[string]any)
		if list, isList := m[k].([]any); isList && len(list) > 0 {
			child, isObj = list[pick%uint64(len(list))].(map[string]any)
		}
		if !isObj || pick%3 == 0 {
			switch op {
			case 0:
				m[k] = val
			case 1:
				delete(m, k)
			default:
				m["unknown_"+k] = val
			}
			return
		}
		m = child
	}
}

func TestUploadsMatchNotary(t *testing.T) {
	// Every case is a new repository whose keys a GET makes: more than the
	// default burst of new-repository keys, on a clock that does not move.
	e := newEnvOn(t, "sqlite:"+filepath.Join(t.TempDir(), "signet.db"), func(c *server.Config) {
		c.NewRepositoryKeys = ratelimit.Limit{Rate: -1}
	})
	muts := diffMutations()
	rng := rand.New(rand.NewPCG(10, 2026))
	for range 60 {
		muts = append(muts, randomMutation(rng))
	}
	var agree, signetOnlyRefuses, bothRefuse int
	i := 0
	for _, serverSnapshot := range []bool{false, true} {
		for _, m := range muts {
			i++
			c := newDiffCase(t, e, i, serverSnapshot)
			m.edit(c)
			name := fmt.Sprintf("%s (server snapshot %v)", m.name, serverSnapshot)
			s, n := c.judge(name)
			switch {
			case s == n && s:
				agree++
			case s == n:
				agree++
				bothRefuse++
			case n:
				signetOnlyRefuses++
			}
		}
	}
	t.Logf("%d uploads: %d verdicts agree (%d refused by both), %d refused by signet only (deliberate)", i, agree, bothRefuse, signetOnlyRefuses)
}
