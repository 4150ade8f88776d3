package server_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/audit"
	"github.com/signet-trust/signet/internal/notaryapi"
	"github.com/signet-trust/signet/internal/server"
	"github.com/signet-trust/signet/internal/store/sqlstore"
)

func storeOf(cfg *server.Config) *sqlstore.Store { return cfg.Store.(*sqlstore.Store) }

// newAuditEnv is newEnv with an audit log on the same database, its
// sequencer running until the test ends.
func newAuditEnv(t testing.TB) (*env, *audit.Log) {
	t.Helper()
	var l *audit.Log
	e := newEnvOn(t, "sqlite:"+t.TempDir()+"/signet.db", func(cfg *server.Config) {
		_, priv, _ := ed25519.GenerateKey(rand.Reader)
		var err error
		l, err = audit.New(audit.Config{Store: storeOf(cfg).AuditLog(), Origin: "test.example/audit", Signer: priv, Poll: 10 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		cfg.AuditLog = l
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); l.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return e, l
}

// entries reads the integrated entries, waiting (bounded) for min.
func entries(t testing.TB, l *audit.Log, min int) []audit.Event {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := l.Store().State(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if int(st.CheckpointSize) >= min || time.Now().After(deadline) {
			es, err := l.Store().Entries(context.Background(), 0, int(st.CheckpointSize))
			if err != nil {
				t.Fatal(err)
			}
			out := make([]audit.Event, len(es))
			for i, e := range es {
				if out[i], err = audit.ParseEvent(e.Data); err != nil {
					t.Fatal(err)
				}
			}
			return out
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func hexSHA(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }

// TestAuditedWrites: the key the server makes, a publish, a re-sign and a
// delete are entries, in order, with the SHA-256 of the bytes served; each
// timestamp.json names the entry that recorded it.
func TestAuditedWrites(t *testing.T) {
	e, l := newAuditEnv(t)
	r := e.newClientRepo(gun, false)
	r.SignAll()
	if got := e.publish(gun, roles(r, "root", "targets", "snapshot")...); got.status != 200 {
		t.Fatalf("publish: %d %s", got.status, got.body)
	}
	evs := entries(t, l, 2)
	if len(evs) != 2 || evs[0].Type != audit.KeyCreate || evs[0].Subject.GUN != gun || evs[0].Subject.Role != "timestamp" || evs[1].Type != audit.TUFPublish {
		t.Fatalf("entries %+v, want key.create then tuf.publish", evs)
	}
	if evs[1].Actor != server.Anonymous {
		t.Errorf("actor %+v without auth, want %+v", evs[1].Actor, server.Anonymous)
	}
	check := func(ev audit.Event, idx int) {
		t.Helper()
		for _, rv := range ev.Roles {
			got := e.get(fmt.Sprintf("/v2/%s/_trust/tuf/%d.%s.json", gun, rv.Version, rv.Role))
			if got.status != 200 || hexSHA(got.body) != rv.SHA256 {
				t.Errorf("%s version %d: %d, SHA-256 %s, logged %s", rv.Role, rv.Version, got.status, hexSHA(got.body), rv.SHA256)
			}
		}
		ts := e.get("/v2/" + gun + "/_trust/tuf/timestamp.json")
		if h := ts.header.Get(server.AuditIndexHeader); h != strconv.Itoa(idx) {
			t.Errorf("timestamp.json: %s %q, want %d", server.AuditIndexHeader, h, idx)
		}
	}
	check(evs[1], 1)

	e.clock.Add(8 * 24 * time.Hour)
	if n := server.RefreshDue(e.srv, context.Background()); n != 1 {
		t.Fatalf("re-signed %d", n)
	}
	evs = entries(t, l, 3)
	if len(evs) != 3 || evs[2].Type != audit.TUFResign || evs[2].Actor.Kind != audit.ActorSystem {
		t.Fatalf("after a re-sign: %+v", evs)
	}
	check(evs[2], 2)

	if got := e.do(http.MethodDelete, "/v2/"+gun+"/_trust/tuf/", nil, ""); got.status != 200 {
		t.Fatalf("delete: %d", got.status)
	}
	evs = entries(t, l, 4)
	if len(evs) != 4 || evs[3].Type != audit.TUFDelete || evs[3].Subject.GUN != gun {
		t.Fatalf("after a delete: %+v", evs)
	}
	// A delete of nothing records nothing; a refused upload neither.
	e.do(http.MethodDelete, "/v2/"+gun+"/_trust/tuf/", nil, "")
	e.publish(gun, roles(r, "targets")...)
	time.Sleep(100 * time.Millisecond)
	if evs = entries(t, l, 4); len(evs) != 4 {
		t.Errorf("%d entries after a delete of nothing and a refused upload, want 4", len(evs))
	}
}

// BenchmarkPublishAudited is BenchmarkPublish with the audit log on: each
// publish also stores its entry in its transaction and waits for it to be
// in a checkpoint.
func BenchmarkPublishAudited(b *testing.B) {
	e, _ := newAuditEnv(b)
	r := e.newClientRepo(gun, false)
	r.SignAll()
	if got := e.publish(gun, roles(r, "root", "targets", "snapshot")...); got.status != 200 {
		b.Fatal(string(got.body))
	}
	bodies := make([][]byte, b.N)
	types := make([]string, b.N)
	for i := range b.N {
		r.AddTarget("targets", fmt.Sprintf("t%d", i), []byte{byte(i)})
		r.Bump("targets")
		r.Bump("snapshot")
		r.Sign("targets")
		r.SignSnapshot()
		buf, ct := multipartBody(b, roles(r, "targets", "snapshot")...)
		bodies[i], types[i] = buf.Bytes(), ct
	}
	b.ResetTimer()
	for i := range b.N {
		req, _ := http.NewRequest(http.MethodPost, e.ts.URL+"/v2/"+gun+"/_trust/tuf/", bytesReader(bodies[i]))
		req.Header.Set("Content-Type", types[i])
		resp, err := e.ts.Client().Do(req)
		if err != nil || resp.StatusCode != 200 {
			b.Fatalf("publish %d: %v %v", i, err, resp.StatusCode)
		}
		resp.Body.Close()
	}
}

// TestAuditedImport: an import is a tuf.publish entry naming every file
// imported with the SHA-256 of its bytes, and its timestamp names it.
func TestAuditedImport(t *testing.T) {
	e, l := newAuditEnv(t)
	src := newSource(t, e.clock.Now)
	mustImport(t, e, src.files(), notaryapi.ImportAdded)
	evs := entries(t, l, 1)
	if len(evs) != 1 || evs[0].Type != audit.TUFPublish || evs[0].Subject.GUN != gun || evs[0].Comment == "" {
		t.Fatalf("entries after an import: %+v", evs)
	}
	got := map[string]string{}
	for _, rv := range evs[0].Roles {
		got[fmt.Sprintf("%s.%d", rv.Role, rv.Version)] = rv.SHA256
	}
	for i, b := range src.roots {
		if got[fmt.Sprintf("root.%d", i+1)] != hexSHA(b) {
			t.Errorf("root version %d: logged %q", i+1, got[fmt.Sprintf("root.%d", i+1)])
		}
	}
	ts := e.get("/v2/" + gun + "/_trust/tuf/timestamp.json")
	if got["timestamp.2"] != hexSHA(ts.body) || ts.header.Get(server.AuditIndexHeader) != "0" {
		t.Errorf("timestamp: logged %q, served %s with %s %q", got["timestamp.2"], hexSHA(ts.body), server.AuditIndexHeader, ts.header.Get(server.AuditIndexHeader))
	}
}
