package audit_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/audit"
)

func get(t *testing.T, srv *httptest.Server, method, path string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), method, srv.URL+path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	// No transparent decompression: the test looks at the bytes sent.
	tr := &http.Transport{DisableCompression: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestReadAPI(t *testing.T) {
	s := openStore(t, sqliteURL(t)).AuditLog()
	l := newLog(t, s, newKey(t))
	run(t, l)
	awaitAll(t, l, appendN(t, l, 300))
	srv := serve(t, s, l.VerifierKey())

	for _, c := range []struct {
		path, cache  string
		status, size int
	}{
		{"/audit/checkpoint", "no-store", 200, -1},
		{"/audit/verifier-key", "public, max-age=300", 200, len(l.VerifierKey()) + 1},
		{"/audit/tile/0/000", "public, max-age=31536000, immutable", 200, 8192},
		{"/audit/tile/0/001.p/44", "public, max-age=10", 200, 44 * 32},
		{"/audit/tile/0/001.p/10", "public, max-age=10", 200, 10 * 32}, // a prefix of a wider tile
		{"/audit/tile/1/000.p/1", "public, max-age=10", 200, 32},
		{"/audit/tile/0/001", "no-store", 404, -1},      // not full yet
		{"/audit/tile/0/001.p/45", "no-store", 404, -1}, // wider than the log
		{"/audit/tile/0/002.p/1", "no-store", 404, -1},
		{"/audit/tile/2/000.p/1", "no-store", 404, -1},
		{"/audit/tile/entries/000", "public, max-age=31536000, immutable", 200, -1},
		{"/audit/tile/entries/001.p/44", "public, max-age=10", 200, -1},
		{"/audit/tile/entries/001", "no-store", 404, -1},
		{"/audit/tile/0/01", "", 404, -1},
		{"/audit/tile/0/x000/001", "", 404, -1},
		{"/audit/nothing", "", 404, -1},
	} {
		resp, body := get(t, srv, http.MethodGet, c.path)
		if resp.StatusCode != c.status {
			t.Errorf("GET %s: %d, want %d", c.path, resp.StatusCode, c.status)
			continue
		}
		if c.cache != "" && resp.Header.Get("Cache-Control") != c.cache {
			t.Errorf("GET %s: Cache-Control %q, want %q", c.path, resp.Header.Get("Cache-Control"), c.cache)
		}
		if c.size >= 0 && len(body) != c.size {
			t.Errorf("GET %s: %d bytes, want %d", c.path, len(body), c.size)
		}
		if c.status == 200 && strings.Contains(c.path, "tile/") && resp.Header.Get("Content-Type") != "application/octet-stream" {
			t.Errorf("GET %s: Content-Type %q", c.path, resp.Header.Get("Content-Type"))
		}
	}
	resp, body := get(t, srv, http.MethodGet, "/audit/checkpoint")
	if resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Errorf("checkpoint Content-Type %q", resp.Header.Get("Content-Type"))
	}
	cp, err := audit.OpenCheckpoint(body, l.Verifier())
	if err != nil || cp.Size != 300 {
		t.Fatalf("checkpoint: %+v, %v", cp, err)
	}

	// Entry bundles are gzipped when the client accepts it, and the same.
	_, plain := get(t, srv, http.MethodGet, "/audit/tile/entries/000")
	resp, gz := get(t, srv, http.MethodGet, "/audit/tile/entries/000", "Accept-Encoding", "gzip")
	if resp.Header.Get("Content-Encoding") != "gzip" || len(gz) >= len(plain) {
		t.Fatalf("gzip: encoding %q, %d bytes of %d", resp.Header.Get("Content-Encoding"), len(gz), len(plain))
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	unz, _ := io.ReadAll(zr)
	if !bytes.Equal(unz, plain) {
		t.Fatal("the gzipped bundle differs")
	}
	if resp, _ := get(t, srv, http.MethodGet, "/audit/tile/entries/000", "Accept-Encoding", "gzip;q=0"); resp.Header.Get("Content-Encoding") != "" {
		t.Fatal("gzip sent although refused with q=0")
	}
	entries, err := audit.ParseBundle(plain)
	if err != nil || len(entries) != 256 {
		t.Fatalf("bundle: %d entries, %v", len(entries), err)
	}

	if resp, body := get(t, srv, http.MethodHead, "/audit/tile/0/000"); resp.StatusCode != 200 || len(body) != 0 || resp.Header.Get("Content-Length") != "8192" {
		t.Fatalf("HEAD: %d, %d bytes, length %q", resp.StatusCode, len(body), resp.Header.Get("Content-Length"))
	}
	if resp, _ := get(t, srv, http.MethodPost, "/audit/checkpoint"); resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Fatalf("POST: %d", resp.StatusCode)
	}
}

func TestReadAPIBeforeTheFirstCheckpoint(t *testing.T) {
	s := openStore(t, sqliteURL(t)).AuditLog()
	l := newLog(t, s, newKey(t))
	srv := serve(t, s, l.VerifierKey())
	if resp, _ := get(t, srv, http.MethodGet, "/audit/checkpoint"); resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("checkpoint of a log never run: %d", resp.StatusCode)
	}
}

func TestAppendAPI(t *testing.T) {
	s := openStore(t, sqliteURL(t)).AuditLog()
	l := newLog(t, s, newKey(t))
	run(t, l)
	webhook := audit.Actor{Kind: audit.ActorUser, Name: "admission-webhook"}
	h, err := audit.NewAppendHandler(audit.AppendHandlerConfig{
		Log: l,
		Actor: func(r *http.Request) (audit.Actor, error) {
			if r.Header.Get("Authorization") != "Bearer good" {
				return audit.Actor{}, errors.New("no")
			}
			return webhook, nil
		},
		Wait: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	post := func(body, auth, ctype string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL, strings.NewReader(body))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		req.Header.Set("Content-Type", ctype)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	const good = `{"type":"admission.break_glass","actor":{"kind":"system"},"subject":{"image":"registry.test/app@sha256:00","namespace":"prod"},"comment":"incident 42"}`
	code, out := post(good, "Bearer good", "application/json")
	if code != 201 {
		t.Fatalf("append: %d %v", code, out)
	}
	idx, ok := out["index"].(float64)
	if !ok || idx != 0 || out["checkpoint"] == "" {
		t.Fatalf("append answer %v", out)
	}
	es, err := s.Entries(t.Context(), 0, 1)
	if err != nil || len(es) != 1 {
		t.Fatal(err)
	}
	e, err := audit.ParseEvent(es[0].Data)
	if err != nil {
		t.Fatal(err)
	}
	// The actor is the authenticated caller, whatever the body said; the
	// time is the server's.
	if e.Actor != webhook || e.Type != audit.AdmissionBreakGlass || time.Since(e.Time) > time.Minute || e.Comment != "incident 42" {
		t.Fatalf("stored event %+v", e)
	}
	if out["leaf_hash"] != audit.LeafHash(es[0].Data).Hex() {
		t.Fatalf("leaf_hash %v", out["leaf_hash"])
	}

	for _, c := range []struct {
		name, body, auth, ctype string
		status                  int
		code                    string
	}{
		{"no credentials", good, "", "application/json", 401, "UNAUTHENTICATED"},
		{"bad credentials", good, "Bearer bad", "application/json", 401, "UNAUTHENTICATED"},
		{"unknown field", strings.Replace(good, `"comment"`, `"bogus":1,"comment"`, 1), "Bearer good", "application/json", 400, "INVALID_EVENT"},
		{"not an event", `[1]`, "Bearer good", "application/json", 400, "INVALID_EVENT"},
		{"missing image", `{"type":"admission.deny"}`, "Bearer good", "application/json", 400, "INVALID_EVENT"},
		{"type not allowed", `{"type":"tuf.publish","subject":{"gun":"g"},"roles":[{"role":"targets","version":1,"sha256":"` + strings.Repeat("0", 64) + `"}]}`, "Bearer good", "application/json", 403, "TYPE_NOT_ALLOWED"},
		{"too large", `{"type":"admission.deny","subject":{"image":"x"},"reason":"` + strings.Repeat("x", audit.MaxEntrySize) + `"}`, "Bearer good", "application/json", 413, "TOO_LARGE"},
		{"not JSON", good, "Bearer good", "text/plain", 415, "UNSUPPORTED_MEDIA_TYPE"},
	} {
		code, out := post(c.body, c.auth, c.ctype)
		errObj, _ := out["error"].(map[string]any)
		if code != c.status || errObj == nil || errObj["code"] != c.code || errObj["message"] == "" {
			t.Errorf("%s: %d %v, want %d %s", c.name, code, out, c.status, c.code)
		}
	}
	// Nothing else was stored.
	if n, _ := s.PendingCount(t.Context()); n != 0 {
		t.Fatalf("%d pending after refused appends", n)
	}
	if st, _ := s.State(t.Context()); st.Size != 1 {
		t.Fatalf("log of %d entries after refused appends, want 1", st.Size)
	}
}
