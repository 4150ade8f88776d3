package faults

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// goroutines reads go_goroutines from the server's /metrics.
func goroutines(t *testing.T, s *server) int {
	t.Helper()
	r := s.get("/metrics")
	m := regexp.MustCompile(`(?m)^go_goroutines (\d+)`).FindSubmatch(r.Body)
	if m == nil {
		t.Fatalf("no go_goroutines in /metrics: %v", r)
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// abortHTTP1 sends the headers and the first half of body over a new
// HTTP/1.1 connection and closes it. chunked sends the body with chunked
// transfer encoding, otherwise with the whole body's Content-Length.
func abortHTTP1(t *testing.T, s *server, path string, body []byte, contentType string, chunked bool) {
	t.Helper()
	c, err := tls.Dial("tcp", s.Addr, &tls.Config{RootCAs: s.pool, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	w := bufio.NewWriter(c)
	fmt.Fprintf(w, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\n", path, s.Addr, contentType)
	half := body[:len(body)/2]
	if chunked {
		fmt.Fprintf(w, "Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n", len(half), half)
	} else {
		fmt.Fprintf(w, "Content-Length: %d\r\n\r\n%s", len(body), half)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // let the server start reading
}

// errAbort ends a request body early.
var errAbort = errors.New("client gave up")

type abortingReader struct {
	r io.Reader
}

func (a *abortingReader) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	if errors.Is(err, io.EOF) {
		time.Sleep(50 * time.Millisecond)
		return n, errAbort
	}
	return n, err
}

// abortHTTP2 sends half of body on an HTTP/2 stream, then resets it.
func abortHTTP2(t *testing.T, c *http.Client, url string, body []byte, contentType string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, &abortingReader{bytes.NewReader(body[:len(body)/2])})
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(len(body))
	req.Header.Set("Content-Type", contentType)
	resp, err := c.Do(req)
	if err == nil {
		resp.Body.Close()
		if resp.Proto != "HTTP/2.0" {
			t.Fatalf("the aborted upload went over %s, want HTTP/2.0", resp.Proto)
		}
		// The server may answer before it notices the reset (it read a
		// malformed body); it must not have stored anything.
		if resp.StatusCode == 200 {
			t.Fatal("an aborted upload was answered 200")
		}
		return
	}
	if !errors.Is(err, errAbort) {
		t.Fatalf("aborted upload: %v", err)
	}
}

// TestClientDisconnectMidUpload sends half of a publish and goes away, in
// the three ways a client can (HTTP/1.1 with a Content-Length, chunked, an
// HTTP/2 stream reset), many times: nothing is stored, no goroutine is
// left behind, and the server goes on publishing and serving.
func TestClientDisconnectMidUpload(t *testing.T) {
	s := startServer(t, t.TempDir())
	a, b := newGUN("a"), newGUN("b")
	a.mustPublish(t, s)
	if r, err := b.fetchKey(t, s.Client, s.Base); err != nil || r.Status != 200 {
		t.Fatalf("b: timestamp.key: %v %v", r, err)
	}
	h2 := s.newClient(10*time.Second, true)
	before := goroutines(t, s)

	const rounds = 8
	for i := range rounds {
		for _, g := range []*gunState{a, b} { // an update, and a first publish with root
			body, ct := g.prepare().body()
			abortHTTP1(t, s, g.path(), body, ct, false)
			abortHTTP1(t, s, g.path(), body, ct, true)
			abortHTTP2(t, h2, s.Base+g.path(), body, ct)
		}
		if i == 0 {
			s.alive()
			if a.reconcile(t, s) || b.reconcile(t, s) {
				t.Fatal("a half upload was stored")
			}
		}
	}
	s.alive()
	for _, g := range []*gunState{a, b} {
		if g.reconcile(t, s) {
			t.Fatalf("%s: a half upload was stored", g.gun)
		}
		if r := s.get(g.path() + fmt.Sprintf("%d.targets.json", g.pending.n)); r.Status != 404 {
			t.Fatalf("%s: half-uploaded version %d is retrievable: %v", g.gun, g.pending.n, r)
		}
	}
	if r := s.get("/v2/" + b.gun + "/_trust/changefeed?records=10"); r.Status != 200 || !bytes.Contains(r.Body, []byte(`"count":0`)) {
		t.Fatalf("%s: changefeed after aborted uploads: %v", b.gun, r)
	}
	// Connections and their goroutines are gone (bounded wait: the server
	// notices closed connections on its next read).
	var after int
	if _, err := eventually(10*time.Second, func() error {
		h2.CloseIdleConnections()
		if after = goroutines(t, s); after > before+5 {
			return fmt.Errorf("%d goroutines, %d before %d aborted uploads", after, before, 6*rounds)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("server goroutines: %d before, %d after %d aborted uploads", before, after, 6*rounds)

	a.mustPublish(t, s)
	b.mustPublish(t, s)
	a.verify(t, s)
	b.verify(t, s)
	s.alive()
}
