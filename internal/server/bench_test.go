package server_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"testing"
)

// BenchmarkPublish measures one client-snapshot publish (targets and
// snapshot, one new target each) through the HTTP stack and the durable
// SQLite store, with a fresh timestamp signed by the server.
func BenchmarkPublish(b *testing.B) {
	e := newEnv(b)
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

// BenchmarkGetTimestamp measures GET timestamp.json served from memory.
func BenchmarkGetTimestamp(b *testing.B) {
	benchGet(b, func(*env) string { return "/v2/" + gun + "/_trust/tuf/timestamp.json" })
}

// BenchmarkGetTargets measures GET targets.json (the current version)
// served from memory.
func BenchmarkGetTargets(b *testing.B) {
	benchGet(b, func(*env) string { return "/v2/" + gun + "/_trust/tuf/targets.json" })
}

// BenchmarkGetChecksum measures GET targets.<sha256>.json, the path the
// notary and docker clients take after reading the snapshot, served from
// memory.
func BenchmarkGetChecksum(b *testing.B) {
	benchGet(b, func(e *env) string {
		got := e.get("/v2/" + gun + "/_trust/tuf/targets.json")
		if got.status != http.StatusOK {
			b.Fatal(got.status, string(got.body))
		}
		sum := sha256.Sum256(got.body)
		return "/v2/" + gun + "/_trust/tuf/targets." + hex.EncodeToString(sum[:]) + ".json"
	})
}

// benchGet publishes a repository with a few targets and measures GETs of
// the path pathOf returns, through the server's handler (middleware,
// routing, cache and headers; not net/http or TLS).
func benchGet(b *testing.B, pathOf func(*env) string) {
	e := newEnv(b)
	r := e.newClientRepo(gun, false)
	for i := range 10 {
		r.AddTarget("targets", fmt.Sprintf("tag%d", i), []byte{byte(i)})
	}
	r.SignAll()
	if got := e.publish(gun, roles(r, "root", "targets", "snapshot")...); got.status != http.StatusOK {
		b.Fatal(string(got.body))
	}
	path := pathOf(e)
	h := e.srv.Handler()
	req, _ := http.NewRequest(http.MethodGet, path, nil)
	w := &discardWriter{h: http.Header{}}
	if h.ServeHTTP(w, req); w.status != 0 && w.status != http.StatusOK {
		b.Fatalf("GET %s: %d", path, w.status)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := &discardWriter{h: http.Header{}}
		for pb.Next() {
			clear(w.h)
			h.ServeHTTP(w, req)
		}
	})
}

type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(code int)        { w.status = code }

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
