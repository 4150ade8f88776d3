// Package tufhttp is the client side of the Notary v1 HTTP API for the
// end-to-end tests that speak it directly instead of through a client
// program (crash, faults, soak, replicas): one request with its answer, the
// multipart body of a publish, the error code of an answer, and a GUN
// downloaded as the notary client does and verified by internal/tuf/trust.
// Imported only from _test.go files.
package tufhttp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/tuf"
	"github.com/signet-trust/signet/internal/tuf/trust"
)

// Response is one HTTP answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Code is the first error code of the answer's error envelope, "" for
// none.
func (r Response) Code() string { return ErrorCode(r.Body) }

func (r Response) String() string { return fmt.Sprintf("%d %.300s", r.Status, r.Body) }

// ErrorCode is the first code of a Notary error envelope, "" for none.
func ErrorCode(body []byte) string {
	var env struct {
		Errors []struct {
			Code string `json:"code"`
		} `json:"errors"`
	}
	if json.Unmarshal(body, &env) != nil || len(env.Errors) == 0 {
		return ""
	}
	return env.Errors[0].Code
}

// Do sends one request and reads the whole answer; err is a transport
// error (no answer).
func Do(ctx context.Context, c *http.Client, method, url string, body []byte, contentType string) (Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return Response{}, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.Do(req)
	if err != nil {
		return Response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return Response{resp.StatusCode, resp.Header, b}, err
}

// Get fetches url (test goroutine only); a transport error fails the test.
func Get(t testing.TB, c *http.Client, url string) Response {
	t.Helper()
	r, err := Do(t.Context(), c, http.MethodGet, url, nil, "")
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return r
}

// Part is one role's file of a publish.
type Part struct {
	Role string
	Data []byte
}

// Upload is the multipart body (and its content type) of a publish of
// parts, as the notary client sends it: one "files" part per role.
func Upload(parts ...Part) (body []byte, contentType string) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, p := range parts {
		w, _ := mw.CreateFormFile("files", p.Role)
		w.Write(p.Data)
	}
	mw.Close()
	return buf.Bytes(), mw.FormDataContentType()
}

// VerifyRepo downloads gun from the server at base (https://host:port) the
// way the notary client does — root, timestamp, then snapshot and targets
// by checksum — and runs it through the verification state machine; any
// failure fails the test.
func VerifyRepo(t testing.TB, c *http.Client, base, gun string) *trust.Repo {
	t.Helper()
	v := trust.New(gun, time.Now(), trust.Options{})
	prefix := base + "/v2/" + gun + "/_trust/tuf/"
	load := func(path string, f func([]byte) error) {
		t.Helper()
		r := Get(t, c, prefix+path)
		if r.Status != http.StatusOK {
			t.Fatalf("%s: GET %s%s: %v", gun, prefix, path, r)
		}
		if err := f(r.Body); err != nil {
			t.Fatalf("%s: %s: %v", gun, path, err)
		}
	}
	load("root.json", v.LoadRoot)
	load("timestamp.json", v.LoadTimestamp)
	snap := v.Timestamp().Signed.Meta[tuf.RoleSnapshot]
	load(fmt.Sprintf("snapshot.%x.json", snap.Hashes["sha256"]), v.LoadSnapshot)
	fm := v.Snapshot().Signed.Meta[tuf.RoleTargets]
	load(fmt.Sprintf("targets.%x.json", fm.Hashes["sha256"]), func(b []byte) error { return v.LoadTargets(tuf.RoleTargets, b) })
	return v
}
