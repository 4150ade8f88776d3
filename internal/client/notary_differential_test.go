//go:build !pkcs11

// The notary client oracle (tuftest/notarytest.List) is not in pkcs11
// builds; see there.

package client_test

// The differential test of issue 10 (finding 2) on the reading side: a
// malicious trust server serves a repository in which one role is mutated
// (re-signed in another byte form, over other bytes, with other keys, with
// edited fields; the online keys then sign a snapshot and timestamp over
// whatever is served). Signet's client and notary 0.7's client library read
// it — on first contact, and after both trusted the honest state — and
// must come to the same result: both refuse, or both list the same targets
// from the same roles. Signet may refuse where notary lists only for the
// reasons notarytest.Deliberate names.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/client"
	"github.com/signet-trust/signet/internal/tuf"
	"github.com/signet-trust/signet/internal/tuf/tuftest"
	"github.com/signet-trust/signet/internal/tuf/tuftest/notarytest"
)

// readCase is one repository on a malicious server, read by both clients.
type readCase struct {
	t                *testing.T
	gun              string
	r                *tuftest.Repo
	alice, bob, team tuftest.Key
	srv              *tuftest.Server
	hs               *httptest.Server
	signetCache      *memCache
	notaryDir        string
}

func newReadCase(t *testing.T, i int) *readCase {
	t.Helper()
	gun := fmt.Sprintf("example.com/readdiff/c%d", i)
	c := &readCase{t: t, gun: gun, r: tuftest.NewRepo(t, gun, time.Now()), alice: tuftest.NewKey(t), bob: tuftest.NewKey(t), team: tuftest.NewKey(t),
		srv: tuftest.NewServer(gun), signetCache: &memCache{}, notaryDir: t.TempDir()}
	r := c.r
	r.Delegate("targets/releases", []string{""}, c.alice, c.bob)
	r.Delegate("targets/alice", []string{""}, c.alice)
	r.Delegate("targets/team", []string{"team/"}, c.team)
	r.AddTarget("targets", "v0", []byte("zero"))
	r.AddTarget("targets", "shared", []byte("owner's"))
	r.AddTarget("targets/releases", "v1", []byte("one"))
	r.AddTarget("targets/releases", "shared", []byte("release's"))
	r.AddTarget("targets/alice", "v1", []byte("alice's one"))
	r.AddTarget("targets/alice", "a1", []byte("alice only"))
	r.AddTarget("targets/team", "team/app", []byte("app"))
	r.SignAll()
	c.srv.Publish(r)
	c.hs = httptest.NewServer(c.srv)
	t.Cleanup(c.hs.Close)
	return c
}

// online re-signs snapshot and timestamp over whatever roles the server
// holds now, and serves everything.
func (c *readCase) online() {
	for role, b := range c.r.Signed {
		if role != "snapshot" && role != "timestamp" && b != nil {
			c.r.Snapshot.Meta[role] = tuf.NewFileMeta(b)
		}
	}
	c.r.Bump("snapshot")
	c.r.Sign("snapshot")
	c.r.Bump("timestamp")
	c.r.SignTimestamp()
	c.srv.Publish(c.r)
}

// resign replaces role's file: its signed value edited, written in form,
// signed over what over says by ks (the role's keys when none).
func (c *readCase) resign(role string, edit func(m map[string]any), form tuftest.Form, over tuftest.Over, ks ...tuftest.Key) {
	m := tuftest.SignedValue(c.t, c.r.Signed[role])
	m["version"] = json.Number(fmt.Sprint(versionOf(m) + 1))
	if edit != nil {
		edit(m)
	}
	if len(ks) == 0 {
		ks = c.r.Keys[role]
		if role == "targets/releases" {
			ks = []tuftest.Key{c.alice}
		}
	}
	c.r.Signed[role] = tuftest.SignValue(c.t, m, form, over, ks...)
}

func versionOf(m map[string]any) int {
	n, _ := m["version"].(json.Number).Int64()
	return int(n)
}

// read runs both clients and compares what they show.
func (c *readCase) read(name string) (signetOK, notaryOK bool) {
	c.t.Helper()
	remote, err := client.NewRemote(c.hs.URL, c.hs.Client(), tuf.GUN(c.gun))
	if err != nil {
		c.t.Fatal(err)
	}
	rd := &client.Reader{Remote: remote, Cache: c.signetCache}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, serr := rd.Update(ctx)
	got := map[string]notarytest.Target{}
	if serr == nil {
		for _, tg := range client.ListTargets(v) {
			got[tg.Name] = notarytest.Target{Role: tg.Role, SHA256: fmt.Sprintf("%x", tg.Meta.Hashes["sha256"]), Length: tg.Meta.Length}
		}
	}
	want, nerr := notarytest.List(c.notaryDir, c.gun, c.hs.URL, c.hs.Client().Transport)
	switch {
	case serr == nil && nerr != nil:
		c.t.Errorf("%s: signet lists %v where notary 0.7 refuses: %v", name, keysOf(got), nerr)
	case serr != nil && nerr == nil:
		if why, ok := notarytest.Deliberate(serr.Error()); ok {
			c.t.Logf("%s: refused by signet only, deliberately: %s", name, why)
		} else {
			c.t.Errorf("%s: signet refuses (%v) where notary 0.7 lists %v", name, serr, keysOf(want))
		}
	case serr == nil && !maps.Equal(got, want):
		c.t.Errorf("%s: signet and notary 0.7 list different targets:\nsignet %v\nnotary %v", name, got, want)
	}
	return serr == nil, nerr == nil
}

func keysOf(m map[string]notarytest.Target) []string {
	out := slices.Collect(maps.Keys(m))
	sort.Strings(out)
	return out
}

type readMutation struct {
	name string
	edit func(c *readCase)
}

func readMutations() []readMutation {
	num := func(s string) json.Number { return json.Number(s) }
	on := func(role string, edit func(m map[string]any), form tuftest.Form, over tuftest.Over) func(c *readCase) {
		return func(c *readCase) { c.resign(role, edit, form, over); c.online() }
	}
	entry := func(m map[string]any, name string) map[string]any {
		for _, r := range m["delegations"].(map[string]any)["roles"].([]any) {
			if e := r.(map[string]any); e["name"] == name {
				return e
			}
		}
		return nil
	}
	zero := base64.StdEncoding.EncodeToString(make([]byte, 32))
	var out []readMutation
	for _, role := range []string{"targets/releases", "targets", "root", "snapshot", "timestamp"} {
		for _, form := range tuftest.Forms {
			for _, over := range []tuftest.Over{tuftest.OverNotary, tuftest.OverWritten} {
				role, form, over := role, form, over
				out = append(out, readMutation{fmt.Sprintf("%s %s, signed %s", role, form, over), func(c *readCase) {
					c.resign(role, nil, form, over)
					if role == "timestamp" {
						c.srv.Publish(c.r)
						return
					}
					if role == "snapshot" {
						c.r.Bump("timestamp")
						c.r.SignTimestamp()
						c.srv.Publish(c.r)
						return
					}
					c.online()
				}})
			}
		}
	}
	for _, form := range tuftest.Forms {
		for _, over := range []tuftest.Over{tuftest.OverNotary, tuftest.OverWritten} {
			out = append(out,
				readMutation{fmt.Sprintf("release re-pointed, integer above 2^53, %s, signed %s", form, over), on("targets/releases", func(m map[string]any) {
					m["targets"].(map[string]any)["v1"] = map[string]any{"length": num("9007199254740993"), "hashes": map[string]any{"sha256": zero}}
				}, form, over)},
				readMutation{fmt.Sprintf("release with a non-ASCII tag, %s, signed %s", form, over), on("targets/releases", func(m map[string]any) {
					m["targets"].(map[string]any)["é<>&/"] = map[string]any{"length": num("1"), "hashes": map[string]any{"sha256": zero}}
				}, form, over)},
				readMutation{fmt.Sprintf("unknown field 1e3 in alice, %s, signed %s", form, over), on("targets/alice", func(m map[string]any) { m["x"] = num("1e3") }, form, over)},
			)
		}
	}
	out = append(out,
		readMutation{"honest", func(c *readCase) {}},
		readMutation{"release signed by a stranger", func(c *readCase) {
			c.resign("targets/releases", nil, tuftest.FormSorted, tuftest.OverNotary, tuftest.NewKey(c.t))
			c.online()
		}},
		readMutation{"release signed by bob (also a releases key)", func(c *readCase) {
			c.resign("targets/releases", nil, tuftest.FormSorted, tuftest.OverNotary, c.bob)
			c.online()
		}},
		readMutation{"alice's role signed by bob", func(c *readCase) {
			c.resign("targets/alice", nil, tuftest.FormSorted, tuftest.OverNotary, c.bob)
			c.online()
		}},
		readMutation{"release threshold 2, signed by alice only", func(c *readCase) {
			c.resign("targets", func(m map[string]any) { entry(m, "targets/releases")["threshold"] = num("2") }, tuftest.FormSorted, tuftest.OverNotary)
			c.online()
		}},
		readMutation{"release threshold 2, signed twice by alice", func(c *readCase) {
			c.resign("targets", func(m map[string]any) { entry(m, "targets/releases")["threshold"] = num("2") }, tuftest.FormSorted, tuftest.OverNotary)
			c.r.Signed["targets/releases"] = tuftest.DuplicateSignature(c.t, c.r.Signed["targets/releases"], 2)
			c.online()
		}},
		readMutation{"release expired", on("targets/releases", func(m map[string]any) {
			m["expires"] = time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
		}, tuftest.FormSorted, tuftest.OverNotary)},
		readMutation{"targets expired", on("targets", func(m map[string]any) {
			m["expires"] = time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
		}, tuftest.FormSorted, tuftest.OverNotary)},
		readMutation{"team lists a target outside its paths", on("targets/team", func(m map[string]any) {
			m["targets"].(map[string]any)["outside"] = map[string]any{"length": num("1"), "hashes": map[string]any{"sha256": zero}}
		}, tuftest.FormSorted, tuftest.OverNotary)},
		readMutation{"release lists a target without hashes", on("targets/releases", func(m map[string]any) {
			m["targets"].(map[string]any)["nohash"] = map[string]any{"length": num("1"), "hashes": map[string]any{}}
		}, tuftest.FormSorted, tuftest.OverNotary)},
		readMutation{"release signature method upper case", func(c *readCase) {
			c.r.Signed["targets/releases"] = tuftest.EditSignatures(c.t, c.r.Signed["targets/releases"], func(s []any) []any {
				s[0].(map[string]any)["method"] = "ECDSA"
				return s
			})
			c.online()
		}},
		readMutation{"release signature under a made-up key ID", func(c *readCase) {
			c.r.Signed["targets/releases"] = tuftest.EditSignatures(c.t, c.r.Signed["targets/releases"], func(s []any) []any {
				s[0].(map[string]any)["keyid"] = strings.Repeat("ab", 32)
				return s
			})
			c.online()
		}},
		readMutation{"release key listed under a made-up ID as well", on("targets", func(m map[string]any) {
			ks := m["delegations"].(map[string]any)["keys"].(map[string]any)
			for _, k := range ks {
				ks[strings.Repeat("ab", 32)] = k
				break
			}
		}, tuftest.FormSorted, tuftest.OverNotary)},
		readMutation{"delegation renamed to an invalid name", on("targets", func(m map[string]any) { entry(m, "targets/alice")["name"] = "targets/Alice" }, tuftest.FormSorted, tuftest.OverNotary)},
		readMutation{"delegation listing an unknown key", on("targets", func(m map[string]any) {
			e := entry(m, "targets/alice")
			e["keyids"] = append(e["keyids"].([]any), strings.Repeat("cd", 32))
		}, tuftest.FormSorted, tuftest.OverNotary)},
		readMutation{"alice's role gone from the snapshot", func(c *readCase) {
			c.online()
			delete(c.r.Snapshot.Meta, "targets/alice")
			c.r.Sign("snapshot")
			c.r.Bump("timestamp")
			c.r.SignTimestamp()
			c.srv.Publish(c.r)
		}},
		readMutation{"snapshot lists alice with a wrong length only", func(c *readCase) {
			c.online()
			fm := c.r.Snapshot.Meta["targets/alice"]
			fm.Length += 10
			c.r.Snapshot.Meta["targets/alice"] = fm
			c.r.Sign("snapshot")
			c.r.Bump("timestamp")
			c.r.SignTimestamp()
			c.srv.Publish(c.r)
		}},
		readMutation{"targets version 0", on("targets", func(m map[string]any) { m["version"] = num("0") }, tuftest.FormSorted, tuftest.OverNotary)},
	)
	return out
}

// randomReadMutation edits one random node of one role and signs it in a
// random form over random bytes.
func randomReadMutation(rng *rand.Rand) readMutation {
	roles := []string{"targets/releases", "targets/alice", "targets"}
	role := roles[rng.IntN(len(roles))]
	values := []any{nil, true, "", "x", json.Number("0"), json.Number("1"), json.Number("-1"), json.Number("1.5"),
		json.Number("1e3"), json.Number("9007199254740993"), []any{}, map[string]any{}}
	op, val := rng.IntN(3), values[rng.IntN(len(values))]
	form, over := tuftest.Forms[rng.IntN(len(tuftest.Forms))], tuftest.Over(rng.IntN(2))
	pick := rng.Uint64()
	return readMutation{fmt.Sprintf("random %s op %d value %v %s %s #%x", role, op, val, form, over, pick%1000), func(c *readCase) {
		c.resign(role, func(m map[string]any) { mutateNode(m, op, val, pick) }, form, over)
		c.online()
	}}
}

// mutateNode walks to a node chosen by pick and replaces it (op 0),
// deletes it (op 1) or adds an unknown field beside it (op 2).
func mutateNode(m map[string]any, op int, val any, pick uint64) {
	for {
		keys := slices.Sorted(maps.Keys(m))
		if len(keys) == 0 {
			m["x"] = val
			return
		}
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

func TestReadsMatchNotary(t *testing.T) {
	muts := readMutations()
	rng := rand.New(rand.NewPCG(11, 2026))
	for range 30 {
		muts = append(muts, randomReadMutation(rng))
	}
	var agree, bothRefuse, signetOnly, cases int
	for i, m := range muts {
		for _, prior := range []bool{false, true} {
			cases++
			c := newReadCase(t, 2*i+map[bool]int{false: 0, true: 1}[prior])
			name := m.name
			if prior {
				name += " (after the honest state)"
				c.read("honest state, " + name)
			}
			m.edit(c)
			s, n := c.read(name)
			switch {
			case s == n:
				agree++
				if !s {
					bothRefuse++
				}
			case n:
				signetOnly++
			}
		}
	}
	t.Logf("%d reads: %d results agree (%d refused by both), %d refused by signet only (deliberate)", cases, agree, bothRefuse, signetOnly)
}
