package serviceapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Error is an error answer of the API.
type Error struct {
	Status  int
	Code    string
	Message string
	// RetryAfter is the server's Retry-After (429, 503), or 0.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s (HTTP %d %s)", e.Message, e.Status, e.Code)
}

// MaxResponse bounds an answer the Client reads.
const MaxResponse = 32 << 20

// Client calls the API of one server.
type Client struct {
	// Server is the server's base URL (https://host:port).
	Server string
	// HTTP carries the requests (TLS settings included); nil means
	// http.DefaultClient.
	HTTP *http.Client
	// Token is the bearer credential: an API token, SIGNET_ADMIN_TOKEN,
	// a CI ID token or a request's status token.
	Token string
}

func (c *Client) url(path string, q url.Values) string {
	u := strings.TrimSuffix(c.Server, "/") + Base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

// Do sends a request with body in (nil for none) and decodes a JSON answer
// into out (nil to discard). Error answers become an *Error.
func (c *Client) Do(ctx context.Context, method, path string, q url.Values, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url(path, q), body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponse))
	if err != nil {
		return fmt.Errorf("reading the answer of %s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		return responseError(resp, raw)
	}
	if out == nil || len(raw) == 0 {
		return nil
	}
	if w, ok := out.(io.Writer); ok {
		_, err := w.Write(raw)
		return err
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("the answer of %s %s is not what the API sends: %w", method, path, err)
	}
	return nil
}

func responseError(resp *http.Response, raw []byte) error {
	e := &Error{Status: resp.StatusCode}
	var body ErrorBody
	if json.Unmarshal(raw, &body) == nil && body.Error.Code != "" {
		e.Code, e.Message = body.Error.Code, body.Error.Message
	} else {
		e.Code = "HTTP_" + strconv.Itoa(resp.StatusCode)
		e.Message = strings.TrimSpace(string(raw))
		if len(e.Message) > 200 || e.Message == "" {
			e.Message = http.StatusText(resp.StatusCode)
		}
	}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		e.RetryAfter = time.Duration(s) * time.Second
	}
	return e
}

// IsCode reports whether err is an API error with code.
func IsCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

func esc(s string) string { return url.PathEscape(s) }

// Me returns who the client's credentials are.
func (c *Client) Me(ctx context.Context) (Me, error) {
	var out Me
	return out, c.Do(ctx, http.MethodGet, "/me", nil, nil, &out)
}

// CreateUser creates a user and returns their first token.
func (c *Client) CreateUser(ctx context.Context, in CreateUser) (UserCreated, error) {
	var out UserCreated
	return out, c.Do(ctx, http.MethodPost, "/users", nil, in, &out)
}

// ListUsers lists users.
func (c *Client) ListUsers(ctx context.Context) (UserList, error) {
	var out UserList
	return out, c.Do(ctx, http.MethodGet, "/users", nil, nil, &out)
}

// GetUser reads a user.
func (c *Client) GetUser(ctx context.Context, name string) (User, error) {
	var out User
	return out, c.Do(ctx, http.MethodGet, "/users/"+esc(name), nil, nil, &out)
}

// UpdateUser changes a user.
func (c *Client) UpdateUser(ctx context.Context, name string, in UpdateUser) (User, error) {
	var out User
	return out, c.Do(ctx, http.MethodPatch, "/users/"+esc(name), nil, in, &out)
}

// DeleteUser deletes a user.
func (c *Client) DeleteUser(ctx context.Context, name string) error {
	return c.Do(ctx, http.MethodDelete, "/users/"+esc(name), nil, nil, nil)
}

// CreateToken makes an API token for a user.
func (c *Client) CreateToken(ctx context.Context, user string, in CreateToken) (TokenCreated, error) {
	var out TokenCreated
	return out, c.Do(ctx, http.MethodPost, "/users/"+esc(user)+"/tokens", nil, in, &out)
}

// ListTokens lists a user's tokens.
func (c *Client) ListTokens(ctx context.Context, user string) (TokenList, error) {
	var out TokenList
	return out, c.Do(ctx, http.MethodGet, "/users/"+esc(user)+"/tokens", nil, nil, &out)
}

// RevokeToken revokes a user's token.
func (c *Client) RevokeToken(ctx context.Context, user, id string) error {
	return c.Do(ctx, http.MethodDelete, "/users/"+esc(user)+"/tokens/"+esc(id), nil, nil, nil)
}

// CreateProject creates a project and its keys.
func (c *Client) CreateProject(ctx context.Context, in CreateProject) (Project, error) {
	var out Project
	return out, c.Do(ctx, http.MethodPost, "/projects", nil, in, &out)
}

// ListProjects lists the projects the credentials may see.
func (c *Client) ListProjects(ctx context.Context) (ProjectList, error) {
	var out ProjectList
	return out, c.Do(ctx, http.MethodGet, "/projects", nil, nil, &out)
}

// GetProject reads a project with the state of its repository.
func (c *Client) GetProject(ctx context.Context, name string) (Project, error) {
	var out Project
	return out, c.Do(ctx, http.MethodGet, "/projects/"+esc(name), nil, nil, &out)
}

// UpdateProject changes a project.
func (c *Client) UpdateProject(ctx context.Context, name string, in UpdateProject) (Project, error) {
	var out Project
	return out, c.Do(ctx, http.MethodPatch, "/projects/"+esc(name), nil, in, &out)
}

// DeleteProject deletes a project.
func (c *Client) DeleteProject(ctx context.Context, name string) error {
	return c.Do(ctx, http.MethodDelete, "/projects/"+esc(name), nil, nil, nil)
}

// RotateKey gives a project (or one of its policies) a new delegation key.
func (c *Client) RotateKey(ctx context.Context, project string, in RotateKey) (Project, error) {
	var out Project
	return out, c.Do(ctx, http.MethodPost, "/projects/"+esc(project)+"/keys", nil, in, &out)
}

// CreatePolicy creates a policy of a project.
func (c *Client) CreatePolicy(ctx context.Context, project string, in PolicySpec) (Policy, error) {
	var out Policy
	return out, c.Do(ctx, http.MethodPost, "/projects/"+esc(project)+"/policies", nil, in, &out)
}

// ListPolicies lists a project's policies.
func (c *Client) ListPolicies(ctx context.Context, project string) (PolicyList, error) {
	var out PolicyList
	return out, c.Do(ctx, http.MethodGet, "/projects/"+esc(project)+"/policies", nil, nil, &out)
}

// GetPolicy reads a policy.
func (c *Client) GetPolicy(ctx context.Context, project, name string) (Policy, error) {
	var out Policy
	return out, c.Do(ctx, http.MethodGet, "/projects/"+esc(project)+"/policies/"+esc(name), nil, nil, &out)
}

// UpdatePolicy replaces a policy's rules.
func (c *Client) UpdatePolicy(ctx context.Context, project, name string, in PolicySpec) (Policy, error) {
	var out Policy
	return out, c.Do(ctx, http.MethodPut, "/projects/"+esc(project)+"/policies/"+esc(name), nil, in, &out)
}

// DeletePolicy deletes a policy.
func (c *Client) DeletePolicy(ctx context.Context, project, name string) error {
	return c.Do(ctx, http.MethodDelete, "/projects/"+esc(project)+"/policies/"+esc(name), nil, nil, nil)
}

// Submit submits a signing request. created is false when an identical
// pending request of the same CI run was returned instead.
func (c *Client) Submit(ctx context.Context, in Submit) (out Request, err error) {
	return out, c.Do(ctx, http.MethodPost, "/signing-requests", nil, in, &out)
}

// GetRequest reads a signing request.
func (c *Client) GetRequest(ctx context.Context, id string) (Request, error) {
	var out Request
	return out, c.Do(ctx, http.MethodGet, "/signing-requests/"+esc(id), nil, nil, &out)
}

// ListFilter selects requests to list.
type ListFilter struct {
	Status, Project, Policy string
	Limit                   int
	PageToken               string
}

func (f ListFilter) values() url.Values {
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("status", f.Status)
	set("project", f.Project)
	set("policy", f.Policy)
	set("page_token", f.PageToken)
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	return q
}

// ListRequests lists signing requests, newest first, one page.
func (c *Client) ListRequests(ctx context.Context, f ListFilter) (RequestList, error) {
	var out RequestList
	return out, c.Do(ctx, http.MethodGet, "/signing-requests", f.values(), nil, &out)
}

// ExportCSV writes the requests f selects as CSV to w.
func (c *Client) ExportCSV(ctx context.Context, f ListFilter, w io.Writer) error {
	return c.Do(ctx, http.MethodGet, "/signing-requests.csv", f.values(), nil, w)
}

// Approve approves a request.
func (c *Client) Approve(ctx context.Context, id, comment string) (Request, error) {
	var out Request
	return out, c.Do(ctx, http.MethodPost, "/signing-requests/"+esc(id)+"/approve", nil, Decide{Comment: comment}, &out)
}

// Deny denies a request.
func (c *Client) Deny(ctx context.Context, id, comment string) (Request, error) {
	var out Request
	return out, c.Do(ctx, http.MethodPost, "/signing-requests/"+esc(id)+"/deny", nil, Decide{Comment: comment}, &out)
}

// Cancel cancels a pending request.
func (c *Client) Cancel(ctx context.Context, id, reason string) (Request, error) {
	var out Request
	return out, c.Do(ctx, http.MethodPost, "/signing-requests/"+esc(id)+"/cancel", nil, Cancel{Reason: reason}, &out)
}

// Resubmit sends a request's images to another policy.
func (c *Client) Resubmit(ctx context.Context, id string, in Resubmit) (Request, error) {
	var out Request
	return out, c.Do(ctx, http.MethodPost, "/signing-requests/"+esc(id)+"/resubmit", nil, in, &out)
}
