package service_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/signet-trust/signet/internal/service/serviceapi"
)

// raw sends a request as it is and returns the status and error code.
func (e *env) raw(method, path, token, body string) (int, string, string) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := e.hc.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var eb serviceapi.ErrorBody
	_ = json.Unmarshal(b, &eb)
	return resp.StatusCode, eb.Error.Code, eb.Error.Message
}

func apiCode(err error) (int, string) {
	var ae *serviceapi.Error
	if errors.As(err, &ae) {
		return ae.Status, ae.Code
	}
	return 0, ""
}

// TestBadInput: malformed and refused bodies get a clear 4xx and change
// nothing (the database and the audit log are compared before and after).
func TestBadInput(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	e.user("alice")
	bob := e.user("bob")
	e.project("app", "org/app", "ci")
	if _, err := e.admin().CreatePolicy(ctx, "app", serviceapi.PolicySpec{Name: "release",
		Approvals: serviceapi.Approvals{Required: 1, Approvers: []string{"alice"}}, Submitters: []string{"bob"}}); err != nil {
		t.Fatal(err)
	}
	image, _ := e.push("org/app", "v1")
	huge := `{"name":"x","password":"` + strings.Repeat("a", 2<<20) + `"}`
	cases := []struct {
		name, method, path, token, body string
		status                          int
		code, says                      string
	}{
		{"malformed JSON", "POST", "/api/v1/users", adminToken, `{"name":"dave",`, 400, "BAD_REQUEST", "not valid JSON"},
		{"not an object", "POST", "/api/v1/users", adminToken, `["dave"]`, 400, "BAD_REQUEST", "a serviceapi.CreateUser is expected"},
		{"two values", "POST", "/api/v1/users", adminToken, `{"name":"dave"} {}`, 400, "BAD_REQUEST", "more than one JSON value"},
		{"unknown field", "POST", "/api/v1/users", adminToken, `{"name":"dave","role":"admin"}`, 400, "BAD_REQUEST", `unknown field "role"`},
		{"wrong type", "POST", "/api/v1/users", adminToken, `{"name":"dave","admin":"yes"}`, 400, "BAD_REQUEST", "field admin"},
		{"empty body", "POST", "/api/v1/users", adminToken, ``, 400, "BAD_REQUEST", "empty"},
		{"huge body", "POST", "/api/v1/users", adminToken, huge, 413, "BODY_TOO_LARGE", "limit"},
		{"bad user name", "POST", "/api/v1/users", adminToken, `{"name":"Dave Smith"}`, 400, "BAD_REQUEST", "user name"},
		{"short password", "POST", "/api/v1/users", adminToken, `{"name":"dave","password":"short"}`, 400, "BAD_REQUEST", "at least 12"},
		{"bad email", "POST", "/api/v1/users", adminToken, `{"name":"dave","email":"nope"}`, 400, "BAD_REQUEST", "e-mail"},
		{"duplicate user", "POST", "/api/v1/users", adminToken, `{"name":"alice"}`, 409, "CONFLICT", "user alice already exists"},
		{"no credentials", "POST", "/api/v1/users", "", `{"name":"dave"}`, 401, "UNAUTHENTICATED", "no credentials"},
		{"bad token", "POST", "/api/v1/users", "sgn_bogus", `{"name":"dave"}`, 401, "UNAUTHENTICATED", "not valid"},
		{"not an admin", "POST", "/api/v1/users", bob.Token, `{"name":"dave"}`, 403, "FORBIDDEN", "admin"},
		{"duplicate project", "POST", "/api/v1/projects", adminToken, `{"name":"app","repository":"` + e.gun("org/other") + `","signer":"ci"}`, 409, "CONFLICT", "project app already exists"},
		{"repository taken", "POST", "/api/v1/projects", adminToken, `{"name":"other","repository":"` + e.gun("org/app") + `","signer":"ci"}`, 409, "CONFLICT", "belongs to project app"},
		{"repository with tag", "POST", "/api/v1/projects", adminToken, `{"name":"other","repository":"` + e.gun("org/other") + `:v1","signer":"ci"}`, 400, "BAD_REQUEST", "names a tag"},
		{"signer releases", "POST", "/api/v1/projects", adminToken, `{"name":"other","repository":"` + e.gun("org/other") + `","signer":"releases"}`, 400, "BAD_REQUEST", "reserved"},
		{"unknown manager", "POST", "/api/v1/projects", adminToken, `{"name":"other","repository":"` + e.gun("org/other") + `","signer":"ci","managers":["ghost"]}`, 400, "UNKNOWN_USERS", "ghost"},
		{"bad key to import", "POST", "/api/v1/projects", adminToken, `{"name":"other","repository":"` + e.gun("org/other") + `","signer":"ci","private_key":"-----BEGIN NOTHING-----"}`, 400, "BAD_REQUEST", "private key"},
		{"policy of unknown project", "POST", "/api/v1/projects/nope/policies", adminToken, `{"name":"p","approvals":{"required":0,"approvers":[]},"submitters":["bob"]}`, 404, "NOT_FOUND", "project nope does not exist"},
		{"duplicate policy", "POST", "/api/v1/projects/app/policies", adminToken, `{"name":"release","approvals":{"required":0,"approvers":[]},"submitters":["bob"]}`, 409, "CONFLICT", "already exists"},
		{"required > approvers", "POST", "/api/v1/projects/app/policies", adminToken, `{"name":"p","approvals":{"required":3,"approvers":["alice","bob"]},"submitters":["bob"]}`, 400, "BAD_REQUEST", "required is 3 but the policy names 2"},
		{"unknown approvers", "POST", "/api/v1/projects/app/policies", adminToken, `{"name":"p","approvals":{"required":1,"approvers":["alice","ghost","spectre"]},"submitters":["bob"]}`, 400, "UNKNOWN_USERS", "ghost, spectre"},
		{"unknown submitter", "POST", "/api/v1/projects/app/policies", adminToken, `{"name":"p","approvals":{"required":0,"approvers":[]},"submitters":["ghost"]}`, 400, "UNKNOWN_USERS", "ghost"},
		{"approver twice", "POST", "/api/v1/projects/app/policies", adminToken, `{"name":"p","approvals":{"required":1,"approvers":["alice","alice"]},"submitters":["bob"]}`, 400, "BAD_REQUEST", "twice"},
		{"nobody submits", "POST", "/api/v1/projects/app/policies", adminToken, `{"name":"p","approvals":{"required":0,"approvers":[]}}`, 400, "BAD_REQUEST", "nobody could submit"},
		{"bad tags", "POST", "/api/v1/projects/app/policies", adminToken, `{"name":"p","approvals":{"required":0,"approvers":[]},"submitters":["bob"],"tags":"v[0-9"}`, 400, "BAD_REQUEST", "regular expression"},
		{"http webhook", "POST", "/api/v1/projects/app/policies", adminToken, `{"name":"p","approvals":{"required":0,"approvers":[]},"submitters":["bob"],"webhook":{"url":"http://hooks.example/x"}}`, 400, "BAD_REQUEST", "https"},
		{"unknown format", "POST", "/api/v1/projects/app/policies", adminToken, `{"name":"p","approvals":{"required":0,"approvers":[]},"submitters":["bob"],"formats":["notation"]}`, 400, "BAD_REQUEST", "format"},
		{"origin without verifier", "POST", "/api/v1/projects/app/policies", adminToken, `{"name":"p","approvals":{"required":0,"approvers":[]},"origin":{"issuer":"https://token.actions.githubusercontent.com","audience":"signet","claims":{"repository":"acme/app"}}}`, 400, "BAD_REQUEST", "does not verify CI ID tokens"},
		{"unknown project", "POST", "/api/v1/signing-requests", bob.Token, `{"project":"nope","policy":"release","image":"` + image + `"}`, 404, "NOT_FOUND", "project nope"},
		{"unknown policy", "POST", "/api/v1/signing-requests", bob.Token, `{"project":"app","policy":"nope","image":"` + image + `"}`, 404, "NOT_FOUND", "policy app/nope"},
		{"no image", "POST", "/api/v1/signing-requests", bob.Token, `{"project":"app","policy":"release"}`, 400, "BAD_REQUEST", "no image"},
		{"bad digest", "POST", "/api/v1/signing-requests", bob.Token, `{"project":"app","policy":"release","image":"` + image + `","digest":"md5:1"}`, 400, "BAD_REQUEST", "sha256"},
		{"unknown request", "GET", "/api/v1/signing-requests/0190-nope", adminToken, ``, 404, "NOT_FOUND", "request 0190-nope"},
		{"bad limit", "GET", "/api/v1/signing-requests?limit=0", adminToken, ``, 400, "BAD_REQUEST", "limit"},
		{"bad page token", "GET", "/api/v1/signing-requests?page_token=!!", adminToken, ``, 400, "BAD_REQUEST", "page_token"},
		{"bad status", "GET", "/api/v1/signing-requests?status=done", adminToken, ``, 400, "BAD_REQUEST", "status"},
		{"no such route", "GET", "/api/v1/frobnicate", adminToken, ``, 404, "NOT_FOUND", "no such route"},
		{"wrong method", "DELETE", "/api/v1/signing-requests", adminToken, ``, 405, "METHOD_NOT_ALLOWED", "takes POST, GET"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := e.state()
			status, code, msg := e.raw(c.method, c.path, c.token, c.body)
			if status != c.status || code != c.code || !strings.Contains(msg, c.says) {
				t.Errorf("%s %s = %d %s %q; want %d %s saying %q", c.method, c.path, status, code, msg, c.status, c.code, c.says)
			}
			if after := e.state(); after != before {
				t.Errorf("the refused call changed the stored state:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
}
