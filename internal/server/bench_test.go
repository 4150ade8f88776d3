package server_test

import (
	"bytes"
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
	e := newEnv(b)
	r := e.newClientRepo(gun, false)
	r.SignAll()
	e.publish(gun, roles(r, "root", "targets", "snapshot")...)
	h := e.srv.Handler()
	req, _ := http.NewRequest(http.MethodGet, "/v2/"+gun+"/_trust/tuf/timestamp.json", nil)
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

type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
