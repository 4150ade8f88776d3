package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/signet-trust/signet/bench/internal/result"
	"github.com/signet-trust/signet/bench/internal/workload"
)

// fakeNotary serves the read routes the load generator uses, with bodies
// that chain by checksum as a real server's do.
func fakeNotary(t *testing.T, gun string) (*httptest.Server, string) {
	t.Helper()
	targets := []byte(`{"signed":{"_type":"Targets"},"signatures":[]}`)
	sum := sha256.Sum256(targets)
	snapshot := fmt.Appendf(nil, `{"signed":{"meta":{"targets":{"hashes":{"sha256":%q},"length":%d}}}}`,
		base64.StdEncoding.EncodeToString(sum[:]), len(targets))
	mux := http.NewServeMux()
	serve := func(name string, b []byte) {
		mux.HandleFunc("GET "+workload.MetaPath(gun, name), func(w http.ResponseWriter, _ *http.Request) { w.Write(b) })
	}
	serve("timestamp", []byte(`{"signed":{"_type":"Timestamp"}}`))
	serve("snapshot", snapshot)
	serve("targets", targets)
	serve(fmt.Sprintf("targets.%x", sum), targets)
	srv := httptest.NewTLSServer(mux)
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(ca, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return srv, ca
}

func TestGetIsBoundedAndCounts(t *testing.T) {
	const gun = "example.com/test/app"
	srv, ca := fakeNotary(t, gun)
	for _, w := range workload.Names {
		t.Run(w, func(t *testing.T) {
			var out, errOut bytes.Buffer
			start := time.Now()
			code := Main(context.Background(), []string{"get", "-url", srv.URL, "-ca", ca, "-gun", gun,
				"-workload", w, "-c", "4", "-d", "300ms", "-warmup", "100ms", "-label", "fake"}, &out, &errOut)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut.String())
			}
			if el := time.Since(start); el > 3*time.Second {
				t.Errorf("run took %v; want about 400ms", el)
			}
			var r result.Record
			if err := json.Unmarshal(out.Bytes(), &r); err != nil {
				t.Fatalf("output %q: %v", out.String(), err)
			}
			if r.Requests == 0 || r.Errors != 0 || r.Workload != w || r.Target != "fake" || !r.Completed {
				t.Errorf("record %+v", r)
			}
			if w == workload.Checksum && !strings.Contains(r.Path, "/targets.") {
				t.Errorf("checksum path %q", r.Path)
			}
		})
	}
}

func TestGetCountsErrors(t *testing.T) {
	const gun = "example.com/test/app"
	srv, ca := fakeNotary(t, gun)
	// The probe and the first few requests succeed; after that the server
	// answers 503 to everything, which must be counted as errors.
	var n atomic.Int64
	inner := srv.Config.Handler
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) > 5 {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		inner.ServeHTTP(w, r)
	})
	var out, errOut bytes.Buffer
	code := Main(context.Background(), []string{"get", "-url", srv.URL, "-ca", ca, "-gun", gun,
		"-c", "2", "-d", "300ms", "-warmup", "0s", "-timeout", "200ms"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var r result.Record
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	if r.Errors == 0 || r.FirstErr == "" {
		t.Errorf("want errors counted, got %+v", r)
	}
}

// TestGetSpreadsOverURLs: a comma-separated -url puts connections on every
// server of the list.
func TestGetSpreadsOverURLs(t *testing.T) {
	const gun = "example.com/test/app"
	var pems []byte
	var urls []string
	var hits [2]atomic.Int64
	for i := range hits {
		mux := http.NewServeMux()
		mux.HandleFunc("GET "+workload.MetaPath(gun, "timestamp"), func(w http.ResponseWriter, _ *http.Request) {
			hits[i].Add(1)
			w.Write([]byte(`{"signed":{"_type":"Timestamp"}}`))
		})
		srv := httptest.NewTLSServer(mux)
		t.Cleanup(srv.Close)
		pems = append(pems, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})...)
		urls = append(urls, srv.URL)
	}
	bundle := filepath.Join(t.TempDir(), "bundle.pem")
	if err := os.WriteFile(bundle, pems, 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := Main(context.Background(), []string{"get", "-url", strings.Join(urls, ","), "-ca", bundle, "-gun", gun,
		"-workload", "timestamp", "-c", "4", "-d", "300ms", "-warmup", "0s"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if hits[0].Load() < 10 || hits[1].Load() < 10 {
		t.Errorf("requests per server: %d and %d; want both used", hits[0].Load(), hits[1].Load())
	}
}
