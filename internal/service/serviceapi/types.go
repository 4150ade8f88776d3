// Package serviceapi is the wire vocabulary of the signing service's HTTP
// API (/api/v1): the JSON documents of requests and responses, the error
// envelope and its codes, and a Client for them. The server side
// (internal/service) and the command line (signet request, signet admin)
// share it, so the two cannot drift; it imports nothing of the server,
// so the CLI links no server code.
//
// Conventions (DESIGN.md): errors are {"error":{"code","message"}} with
// the HTTP status of their class; unknown fields are refused; IDs are
// opaque sortable strings (UUIDv7); times are RFC 3339 in UTC; lists are
// newest first and paginated with limit and page_token.
package serviceapi

import "time"

// Base is the path every route of the API lives under.
const Base = "/api/v1"

// ErrorBody is the envelope of every error answer.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is a machine-readable code and a sentence for people.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error codes. Each has one HTTP status (Status).
const (
	CodeBadRequest      = "BAD_REQUEST"          // 400: malformed JSON, unknown fields, invalid values
	CodeBodyTooLarge    = "BODY_TOO_LARGE"       // 413
	CodeUnauthenticated = "UNAUTHENTICATED"      // 401: no credentials, or not valid ones
	CodeInvalidIDToken  = "INVALID_ID_TOKEN"     // 401: the CI's ID token is not valid for the policy's origin
	CodeForbidden       = "FORBIDDEN"            // 403: authenticated, but not allowed
	CodeOriginMismatch  = "ORIGIN_MISMATCH"      // 403: a valid ID token whose claims the origin rule refuses
	CodeTagNotAllowed   = "TAG_NOT_ALLOWED"      // 403: a tag outside the policy's tags
	CodeNotFound        = "NOT_FOUND"            // 404: no such route or record
	CodeConflict        = "CONFLICT"             // 409: a name taken, a request no longer pending, a record in use
	CodeDigestMismatch  = "DIGEST_MISMATCH"      // 409: the tag points at another digest than the one given
	CodeNotReady        = "REPOSITORY_NOT_READY" // 409: no trust data, no delegation to the project key, or the client holds the snapshot key
	CodeUnknownUsers    = "UNKNOWN_USERS"        // 400: users named that do not exist
	CodeRegistry        = "REGISTRY_ERROR"       // 502: the registry could not resolve the tag
	CodeRateLimited     = "RATE_LIMITED"         // 429 with Retry-After
	CodeUnavailable     = "UNAVAILABLE"          // 503 with Retry-After
	CodeInternal        = "INTERNAL"             // 500
)

// Statuses of a signing request.
const (
	StatusAwaitingApproval = "awaiting_approval"
	StatusSigning          = "signing"
	StatusSigned           = "signed"
	StatusDenied           = "denied"
	StatusFailed           = "failed"
	StatusCanceled         = "canceled"
	StatusExpired          = "expired"
)

// FinalStatus reports whether a request in status s never changes again.
func FinalStatus(s string) bool {
	switch s {
	case StatusSigned, StatusDenied, StatusFailed, StatusCanceled, StatusExpired:
		return true
	}
	return false
}

// ---- users and tokens ----

// CreateUser is POST /users.
type CreateUser struct {
	Name string `json:"name"`
	// Password is for the web UI (stored with a memory-hard hash); may be
	// empty for a user of API tokens only.
	Password string `json:"password,omitempty"`
	Email    string `json:"email,omitempty"`
	Admin    bool   `json:"admin,omitempty"`
	Auditor  bool   `json:"auditor,omitempty"`
}

// UserCreated is the answer to POST /users: the user's first API token,
// shown this once.
type UserCreated struct {
	Name    string `json:"name"`
	Token   string `json:"token"`
	TokenID string `json:"token_id"`
}

// User is a user as the API shows it (never a password or its hash).
type User struct {
	Name        string    `json:"name"`
	Email       string    `json:"email,omitempty"`
	Admin       bool      `json:"admin"`
	Auditor     bool      `json:"auditor"`
	HasPassword bool      `json:"has_password"`
	Created     time.Time `json:"created"`
	Updated     time.Time `json:"updated"`
}

// UserList is GET /users.
type UserList struct {
	Users []User `json:"users"`
}

// UpdateUser is PATCH /users/{name}: the fields given are changed.
type UpdateUser struct {
	Password *string `json:"password,omitempty"`
	Email    *string `json:"email,omitempty"`
	Admin    *bool   `json:"admin,omitempty"`
	Auditor  *bool   `json:"auditor,omitempty"`
}

// CreateToken is POST /users/{name}/tokens.
type CreateToken struct {
	Description string `json:"description,omitempty"`
	// ExpiresIn is a Go duration ("720h"); empty for a token that does
	// not expire.
	ExpiresIn string `json:"expires_in,omitempty"`
}

// TokenCreated is the answer to POST /users/{name}/tokens: the token,
// shown this once.
type TokenCreated struct {
	Token
	Secret string `json:"token"`
}

// Token is an API token as listed (never its secret).
type Token struct {
	ID          string     `json:"id"`
	User        string     `json:"user"`
	Description string     `json:"description,omitempty"`
	Created     time.Time  `json:"created"`
	Expires     *time.Time `json:"expires,omitempty"`
	Revoked     *time.Time `json:"revoked,omitempty"`
}

// TokenList is GET /users/{name}/tokens.
type TokenList struct {
	Tokens []Token `json:"tokens"`
}

// Me is GET /me: who the credentials of the request are.
type Me struct {
	// Kind is "user", "admin_token" (SIGNET_ADMIN_TOKEN), "ci" or
	// "status_token".
	Kind    string   `json:"kind"`
	Name    string   `json:"name,omitempty"`
	Admin   bool     `json:"admin"`
	Auditor bool     `json:"auditor"`
	Manages []string `json:"manages,omitempty"`
}

// ---- projects ----

// CreateProject is POST /projects.
type CreateProject struct {
	Name       string   `json:"name"`
	Repository string   `json:"repository"`
	Signer     string   `json:"signer"`
	Managers   []string `json:"managers,omitempty"`
	// RateLimit is the most requests accepted per hour (0: the server's
	// default).
	RateLimit int `json:"rate_limit,omitempty"`
	// PrivateKey, when set, is an existing delegation key to import (PEM,
	// as docker trust key generate or notary write it, encrypted with
	// Passphrase or not) instead of generating one.
	PrivateKey string `json:"private_key,omitempty"`
	Passphrase string `json:"passphrase,omitempty"`
}

// Project is a project as the API shows it.
type Project struct {
	Name       string `json:"name"`
	Repository string `json:"repository"`
	Signer     string `json:"signer"`
	// PublicKey is the delegation key as `docker trust signer add --key
	// FILE <signer> <repository>` reads it (PEM "PUBLIC KEY").
	PublicKey string `json:"public_key"`
	KeyID     string `json:"key_id"`
	// CosignPublicKey is the project's cosign verification key (PEM).
	CosignPublicKey string           `json:"cosign_public_key"`
	CosignKeyID     string           `json:"cosign_key_id"`
	Managers        []string         `json:"managers"`
	RateLimit       int              `json:"rate_limit"`
	Created         time.Time        `json:"created"`
	Updated         time.Time        `json:"updated"`
	State           *RepositoryState `json:"repository_state,omitempty"`
	Keys            []ProjectKey     `json:"keys,omitempty"`
	Policies        []string         `json:"policies,omitempty"`
}

// RepositoryState is what the service found in the repository's current
// trust data (GET /projects/{name}).
type RepositoryState struct {
	// Initialized: the repository has trust data on this server.
	Initialized bool `json:"initialized"`
	// ServerManagedSnapshot: the server holds the snapshot key, so the
	// service can publish (docker trust's default).
	ServerManagedSnapshot bool `json:"server_managed_snapshot"`
	// Delegated: targets/<signer> and targets/releases both list the
	// project's key (what `docker trust signer add` does).
	Delegated bool `json:"delegated"`
	// SignerRole and ReleasesRole say which of the two lists the key.
	SignerRole   bool `json:"signer_role"`
	ReleasesRole bool `json:"releases_role"`
	// Ready: requests on the repository can be signed.
	Ready bool `json:"ready"`
	// Fix says what the repository owner runs when it is not ready.
	Fix string `json:"fix,omitempty"`
	// SignerRoleExpires and DelegationExpires are when the signer's role
	// (renewed by every signing) and the targets metadata holding its
	// delegation (the owner's) expire; Notices warn of those within 30
	// days.
	SignerRoleExpires *time.Time `json:"signer_role_expires,omitempty"`
	DelegationExpires *time.Time `json:"delegation_expires,omitempty"`
	Notices           []string   `json:"notices,omitempty"`
}

// ProjectKey is a key the service holds for a project.
type ProjectKey struct {
	ID        string     `json:"id"`
	Policy    string     `json:"policy,omitempty"`
	Role      string     `json:"role,omitempty"`
	Purpose   string     `json:"purpose"`
	PublicKey string     `json:"public_key"`
	Imported  bool       `json:"imported"`
	Created   time.Time  `json:"created"`
	Retired   *time.Time `json:"retired,omitempty"`
}

// ProjectList is GET /projects.
type ProjectList struct {
	Projects []Project `json:"projects"`
}

// UpdateProject is PATCH /projects/{name}.
type UpdateProject struct {
	Managers  *[]string `json:"managers,omitempty"`
	RateLimit *int      `json:"rate_limit,omitempty"`
}

// RotateKey is POST /projects/{name}/keys: a new delegation key for the
// project's signer (or a policy's own), generated or imported. The old key
// is retired; signatures it made stay valid until re-signed.
type RotateKey struct {
	Policy     string `json:"policy,omitempty"`
	PrivateKey string `json:"private_key,omitempty"`
	Passphrase string `json:"passphrase,omitempty"`
}

// ---- policies ----

// Approvals is a policy's approval rule: Required of Approvers.
type Approvals struct {
	Required  int      `json:"required"`
	Approvers []string `json:"approvers"`
}

// Origin is a policy's rule on the CI that may submit.
type Origin struct {
	Issuer   string            `json:"issuer"`
	Audience string            `json:"audience"`
	Claims   map[string]string `json:"claims"`
}

// Webhook is where a policy's final statuses are POSTed (HTTPS only).
type Webhook struct {
	URL string `json:"url"`
	// Authorization is sent as the Authorization header. It is never
	// shown back: answers carry AuthorizationSet instead.
	Authorization    string `json:"authorization,omitempty"`
	AuthorizationSet bool   `json:"authorization_set,omitempty"`
}

// PolicySpec is what defines a policy (POST and PUT bodies).
type PolicySpec struct {
	Name       string    `json:"name"`
	Approvals  Approvals `json:"approvals"`
	Submitters []string  `json:"submitters,omitempty"`
	Origin     *Origin   `json:"origin,omitempty"`
	// Tags is a regular expression every tag must match whole.
	Tags    string   `json:"tags,omitempty"`
	Formats []string `json:"formats,omitempty"`
	// Signer, when set, gives the policy its own signer role and key (a
	// test signer beside a release signer); set at creation only.
	Signer string `json:"signer,omitempty"`
	// RequestExpiry is how long a request awaits approval (a Go duration,
	// default 168h).
	RequestExpiry string   `json:"request_expiry,omitempty"`
	Webhook       *Webhook `json:"webhook,omitempty"`
}

// Policy is a policy as the API shows it.
type Policy struct {
	PolicySpec
	Project string `json:"project"`
	// PublicKey and KeyID are the policy's own signer key, when it has one.
	PublicKey string    `json:"public_key,omitempty"`
	KeyID     string    `json:"key_id,omitempty"`
	Created   time.Time `json:"created"`
	Updated   time.Time `json:"updated"`
}

// PolicyList is GET /projects/{name}/policies.
type PolicyList struct {
	Policies []Policy `json:"policies"`
}

// ---- signing requests ----

// ImageRef is one image to sign: a tag, and optionally the digest the
// submitter expects it to point at.
type ImageRef struct {
	Image  string `json:"image"`
	Digest string `json:"digest,omitempty"`
}

// Submit is POST /signing-requests. Image (with Digest) names one image;
// Images several, signed together on one approval.
type Submit struct {
	Project     string            `json:"project"`
	Policy      string            `json:"policy"`
	Image       string            `json:"image,omitempty"`
	Digest      string            `json:"digest,omitempty"`
	Images      []ImageRef        `json:"images,omitempty"`
	Description string            `json:"description,omitempty"`
	Parameters  map[string]string `json:"parameters,omitempty"`
	// RunID identifies the CI run for idempotent submission when the ID
	// token carries no run claim (GitHub's run_id, GitLab's pipeline_id).
	RunID string `json:"run_id,omitempty"`
}

// Image is an image of a request: the tag as submitted and the manifest
// it resolved to.
type Image struct {
	Image     string `json:"image"`
	Tag       string `json:"tag"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
	MediaType string `json:"media_type,omitempty"`
}

// Decision is an approval or a denial.
type Decision struct {
	User    string    `json:"user"`
	Time    time.Time `json:"time"`
	Comment string    `json:"comment,omitempty"`
}

// SignedRole is a role version a signing published.
type SignedRole struct {
	Role    string `json:"role"`
	Version int64  `json:"version"`
	SHA256  string `json:"sha256"`
}

// CosignSignature is a cosign signature a signing wrote, in one storage
// form.
type CosignSignature struct {
	Digest string `json:"digest"`
	// Form is "bundle" (the Sigstore bundle referrer) or "legacy" (a layer
	// of the image at tag sha256-<hex>.sig).
	Form string `json:"form"`
	// Ref is the referrer manifest's digest (bundle) or the legacy tag.
	Ref   string `json:"ref"`
	KeyID string `json:"key_id"`
	// Existing: the signature by this key was there already.
	Existing bool `json:"existing,omitempty"`
}

// Request is a signing request as the API shows it.
type Request struct {
	ID      string `json:"id"`
	Project string `json:"project"`
	Policy  string `json:"policy"`
	Status  string `json:"status"`
	// Image and Digest are those of the first (usually only) image.
	Image  string  `json:"image"`
	Digest string  `json:"digest"`
	Images []Image `json:"images"`
	// Submitter is the user, or issuer#subject of the CI's ID token.
	Submitter string            `json:"submitter"`
	Origin    map[string]string `json:"origin,omitempty"`
	Approvals []Decision        `json:"approvals"`
	Denials   []Decision        `json:"denials"`
	// Required is how many approvals the policy asks for.
	Required    int               `json:"required"`
	Description string            `json:"description,omitempty"`
	Parameters  map[string]string `json:"parameters,omitempty"`
	Reason      string            `json:"reason,omitempty"`
	// Formats are the signature formats of the request (its policy's at
	// submission); Done those completed so far.
	Formats []string `json:"formats,omitempty"`
	Done    []string `json:"done,omitempty"`
	// Signed are the role versions the DCT signature published; Cosign
	// the cosign signatures, per image digest and storage form.
	Signed          []SignedRole      `json:"signed,omitempty"`
	Cosign          []CosignSignature `json:"cosign,omitempty"`
	ResubmittedFrom string            `json:"resubmitted_from,omitempty"`
	Created         time.Time         `json:"created"`
	Updated         time.Time         `json:"updated"`
	Expires         time.Time         `json:"expires"`
	// StatusToken reads and cancels this request only; it is in the answer
	// to the submission and never again (a CI job's ID token may expire
	// while it waits).
	StatusToken string `json:"status_token,omitempty"`
}

// RequestList is GET /signing-requests.
type RequestList struct {
	Requests      []Request `json:"requests"`
	NextPageToken string    `json:"next_page_token,omitempty"`
}

// Decide is the body of POST …/approve and …/deny.
type Decide struct {
	Comment string `json:"comment,omitempty"`
}

// Cancel is the body of POST …/cancel.
type Cancel struct {
	Reason string `json:"reason,omitempty"`
}

// Resubmit is POST …/{id}/resubmit: the same images to another policy of
// the project (promotion from test to release signing).
type Resubmit struct {
	Policy      string `json:"policy"`
	Description string `json:"description,omitempty"`
}
