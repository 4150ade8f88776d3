// Package record is the signing service's storage contract: the records
// it keeps (users and API tokens, projects and their keys, policies,
// signing requests, queued notifications) and the Store that keeps them,
// with the effects (audit events, notifications) every change commits
// with. internal/service works on them (its types are these, by alias);
// internal/store/sqlstore implements Store; servicetest is its
// conformance suite.
//
// It holds data and its invariants only, and imports nothing of the
// service's machinery (no registry, custody, OIDC or notification code),
// so that a binary linking the store links none of it either.
package record

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/signet-trust/signet/internal/audit"
)

// Names of users, projects and policies: lowercase letters, digits and
// ". _ -", starting with a letter (users) or a letter or digit (projects,
// policies), at most 64 bytes — safe in URLs, file names and custody
// owners ("project:<name>").
var (
	userNamePattern = regexp.MustCompile(`^[a-z][a-z0-9._-]{0,63}$`)
	namePattern     = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
)

// ValidUserName reports whether s can name a user.
func ValidUserName(s string) bool { return userNamePattern.MatchString(s) }

// ValidName reports whether s can name a project or a policy.
func ValidName(s string) bool { return namePattern.MatchString(s) }

// Status is where a signing request stands.
type Status string

// Statuses of a signing request. AwaitingApproval and Signing are pending;
// the others are final and never change again.
const (
	StatusAwaitingApproval Status = "awaiting_approval"
	// StatusSigning: approved (or needing no approval) and queued for
	// signing; the signing job is durable and is retried until the request
	// is signed or fails.
	StatusSigning  Status = "signing"
	StatusSigned   Status = "signed"
	StatusDenied   Status = "denied"
	StatusFailed   Status = "failed"
	StatusCanceled Status = "canceled"
	StatusExpired  Status = "expired"
)

// MaxCountDays is the most days Store.CountRequestsPerDay counts (its
// query has a part per day).
const MaxCountDays = 100

// Statuses lists every status.
var Statuses = []Status{StatusAwaitingApproval, StatusSigning, StatusSigned, StatusDenied, StatusFailed, StatusCanceled, StatusExpired}

// Valid reports whether s is one of Statuses.
func (s Status) Valid() bool { return slices.Contains(Statuses, s) }

// Final reports whether s never changes again.
func (s Status) Final() bool { return s.Valid() && s != StatusAwaitingApproval && s != StatusSigning }

// User is a person (or automation) with API tokens and a password for the
// web UI.
type User struct {
	Name  string
	Email string // for notifications; may be empty
	// PasswordHash is the PHC string of the memory-hard hash (HashPassword);
	// empty when the user has no password (API tokens only).
	PasswordHash string
	// Admin may do everything; Auditor may read everything and change
	// nothing. A user who is neither acts through the projects they
	// manage and the policies naming them.
	Admin, Auditor bool
	Created        time.Time
	Updated        time.Time
}

// Token is an API token. Only the SHA-256 of its secret is kept: the
// secret is shown once, when it is made.
type Token struct {
	ID          string
	User        string
	Description string
	Hash        []byte // SHA-256 of the token string
	Created     time.Time
	Expires     time.Time // zero: never
	Revoked     time.Time // zero: active
}

// Active reports whether the token can be used at now.
func (t Token) Active(now time.Time) bool {
	return t.Revoked.IsZero() && (t.Expires.IsZero() || now.Before(t.Expires))
}

// Project is a repository (GUN) whose delegation key the service holds, and
// the signer role it signs as.
type Project struct {
	Name       string
	Repository string // the GUN
	Signer     string // the delegation targets/<Signer>
	// KeyID is the active delegation key of the project's signer;
	// CosignKeyID the project's cosign key.
	KeyID       string
	CosignKeyID string
	// Managers may change the project's policies and keys and read its
	// requests.
	Managers []string
	// RateLimit is the most signing requests accepted per hour (0: the
	// service's default).
	RateLimit int
	Created   time.Time
	Updated   time.Time
}

// KeyPurpose says what a project key is for (as custody records it).
type KeyPurpose string

// Purposes of project keys.
const (
	PurposeDelegation KeyPurpose = "delegation"
	PurposeCosign     KeyPurpose = "cosign"
)

// ProjectKey is a key the custodian holds for a project: the history of
// its delegation keys (rotations keep the old ones listed, retired) and
// its cosign key.
type ProjectKey struct {
	ID      string // TUF key ID
	Project string
	// Policy is the policy whose own signer the key is for; "" for the
	// project's signer (and for the cosign key).
	Policy  string
	Role    string // "targets/<signer>"; "" for a cosign key
	Purpose KeyPurpose
	// Public is the public key as `docker trust key generate` writes it
	// (PEM "PUBLIC KEY"), the bytes `docker trust signer add --key` reads.
	Public   []byte
	Imported bool
	Created  time.Time
	Retired  time.Time // zero: active
}

// Origin is a policy's rule on the CI that may submit: an OIDC ID token
// from Issuer, for Audience, whose claims match (exact values, or globs
// where the value holds * or ?).
type Origin struct {
	Issuer   string            `json:"issuer"`
	Audience string            `json:"audience"`
	Claims   map[string]string `json:"claims,omitempty"`
}

// Webhook is where a policy's final statuses are posted.
type Webhook struct {
	URL string `json:"url"`
	// Authorization is sent as the Authorization header; never shown back.
	Authorization string `json:"authorization,omitempty"`
}

// Format is a signature format a policy signs in.
type Format string

// Formats.
const (
	FormatDCT    Format = "dct"    // Docker Content Trust: targets/<signer> and targets/releases
	FormatCosign Format = "cosign" // cosign: the Sigstore bundle referrer and the legacy .sig image, by the project's cosign key
)

// Formats lists every format.
var Formats = []Format{FormatDCT, FormatCosign}

// Policy is a signing policy of a project: who may submit, from which CI,
// who must approve, which tags.
type Policy struct {
	Project string
	Name    string
	// Required approvals out of Approvers; 0 signs at once.
	Required  int
	Approvers []string
	// Submitters may submit with their API tokens (policies without an
	// origin rule).
	Submitters []string
	Origin     *Origin
	// Tags, when set, is a regular expression every tag must match (whole).
	Tags    string
	Formats []Format
	// Signer, when set, is the policy's own signer role (with its own key,
	// KeyID) instead of the project's.
	Signer string
	KeyID  string
	// Expiry is how long a request awaits approval (0: DefaultExpiry).
	Expiry  time.Duration
	Webhook *Webhook
	Created time.Time
	Updated time.Time
}

// SignerName is the signer the policy signs as.
func (p Policy) SignerName(proj Project) string {
	if p.Signer != "" {
		return p.Signer
	}
	return proj.Signer
}

// SigningKey is the key the policy signs with.
func (p Policy) SigningKey(proj Project) string {
	if p.KeyID != "" {
		return p.KeyID
	}
	return proj.KeyID
}

// Members lists every user the policy names (approvers and submitters).
func (p Policy) Members() []string {
	var out []string
	for _, u := range append(slices.Clone(p.Approvers), p.Submitters...) {
		if !slices.Contains(out, u) {
			out = append(out, u)
		}
	}
	return out
}

// Image is one image of a request: the tag as submitted and the manifest it
// resolved to at submit.
type Image struct {
	Ref       string // the image reference as submitted
	GUN       string
	Tag       string
	Digest    string // "sha256:<hex>"
	Size      int64
	MediaType string
}

// Decision is one approval or denial.
type Decision struct {
	User    string    `json:"user"`
	Time    time.Time `json:"time"`
	Comment string    `json:"comment,omitempty"`
}

// SignedRole is a role version a signing published.
type SignedRole = audit.RoleVersion

// CosignSignature is a cosign signature a signing wrote (or found).
type CosignSignature = audit.CosignSignature

// Request is a signing request.
type Request struct {
	ID      string
	Project string
	Policy  string
	Status  Status
	Images  []Image
	// Submitter is the user who submitted with an API token, or "" for a
	// CI submission (OriginIssuer and OriginSubject then say who).
	Submitter     string
	Origin        map[string]string // the verified claims of the CI's ID token
	OriginIssuer  string
	OriginSubject string
	// RunKey makes submissions idempotent: a pending request with the same
	// key is returned instead of a new one being made.
	RunKey      string
	Description string
	Parameters  map[string]string
	Approvals   []Decision
	Denials     []Decision
	Reason      string // why it failed, was canceled or expired
	// Formats are the signature formats the request is signed in: its
	// policy's at submission (none in requests stored before formats
	// were kept: the policy's at signing).
	Formats []Format
	// Signed are the role versions the DCT format published (or found
	// published); Cosign the cosign signatures written (or found), per
	// image and storage form.
	Signed []SignedRole
	Cosign []CosignSignature
	// Started is when the signing began to write, right after the tags
	// were resolved again unchanged (and the registry's push access
	// checked): from then on the job completes the same digests, whatever
	// the tags do. Zero until then (and for requests signed in DCT alone,
	// whose one publish is atomic).
	Started time.Time
	// Done lists the formats completed, in the order done, across attempts
	// and restarts.
	Done []Format
	// ResubmittedFrom is the request this one was resubmitted from.
	ResubmittedFrom string
	// StatusTokenHash is the SHA-256 of the request's status token, which
	// reads and cancels this request only (for CI jobs whose ID token
	// expires while they wait).
	StatusTokenHash []byte
	Created         time.Time
	Updated         time.Time
	Expires         time.Time // when an awaiting request expires
	// Attempts counts signing attempts (transient failures are retried).
	Attempts int
	// ClaimedBy and ClaimedUntil lease the signing job to one worker.
	ClaimedBy    string
	ClaimedUntil time.Time
}

// Actor is who the request was submitted by, for the audit log.
func (r Request) Actor() audit.Actor {
	if r.Submitter != "" {
		return audit.Actor{Kind: audit.ActorUser, Name: r.Submitter}
	}
	return audit.Actor{Kind: audit.ActorCI, Issuer: r.OriginIssuer, Subject: r.OriginSubject}
}

// SubmitterName is the submitter as shown: the user, or issuer#subject.
func (r Request) SubmitterName() string {
	if r.Submitter != "" {
		return r.Submitter
	}
	return r.Actor().String()
}

// ApprovedBy reports whether user has approved r.
func (r Request) ApprovedBy(user string) bool {
	return slices.ContainsFunc(r.Approvals, func(d Decision) bool { return d.User == user })
}

// Errors of the Store, beside store.ErrNotFound (no such user, token,
// project, policy or request) and store.ErrConflict (a name or repository
// already taken).
var (
	// ErrUnchanged, returned by the function given to an Update method,
	// commits nothing and is not an error: the method returns the record as
	// it stands.
	ErrUnchanged = errors.New("service: unchanged")
)

// Effects are what a change of a request brings with it, committed in
// the same transaction: the audit events recording it and the
// notifications it causes (the outbox of package notify's worker).
type Effects struct {
	Events     []audit.Event
	Deliveries []Delivery
}

// Delivery is one notification to one target, queued in the outbox.
type Delivery struct {
	ID        string
	RequestID string // the request the notification is about
	Kind      string // "webhook" or "email"
	// Target is the webhook's ID (a policy, "project/policy") or an
	// e-mail address.
	Target string
	// Notification is the notification as JSON.
	Notification []byte
	// State is "pending", "delivered" or "failed"; Attempts counts the
	// attempts made; NextAttempt is when a pending one is due; LastError
	// is the last failure.
	State       string
	Attempts    int
	NextAttempt time.Time
	LastError   string
	Created     time.Time
	Updated     time.Time
}

// Delivery states.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed"
)

// UnknownUsersError reports users named (as managers, approvers or
// submitters) who do not exist.
type UnknownUsersError struct{ Names []string }

func (e *UnknownUsersError) Error() string {
	return fmt.Sprintf("unknown user(s): %s", strings.Join(e.Names, ", "))
}

// InUseError reports a record that others still refer to.
type InUseError struct {
	What string // "user alice", "policy p/release"
	By   []string
}

func (e *InUseError) Error() string {
	return fmt.Sprintf("%s is still in use by %s", e.What, strings.Join(e.By, ", "))
}

// RequestFilter selects signing requests to list, newest first.
type RequestFilter struct {
	Status  Status // "" for every status
	Project string // "" for every project
	Policy  string // "" for every policy (with Project)
	// Projects, when not nil, restricts the list to these projects (a user
	// sees the projects they manage or are named in); an empty non-nil list
	// selects nothing.
	Projects []string
	// Before, when set, lists requests whose ID sorts before it (the next
	// page after a request).
	Before string
	// Since, when not zero, lists only requests created at or after it.
	Since time.Time
	Limit int // at least 1
}

// Store keeps the signing service's state: users and API tokens, projects
// and their keys, policies, signing requests. Every method that changes
// state takes the audit events that record the change and appends them to
// the audit log's pending entries in the same transaction: the change and
// its events commit together or not at all. servicetest is its
// conformance suite.
//
// Errors: store.ErrNotFound for a missing record (also a missing parent:
// a policy of an unknown project), store.ErrConflict for a name (or a
// project's repository) already taken, *UnknownUsersError for users named
// that do not exist, *InUseError for a deletion others depend on. Times
// are kept to the microsecond, in UTC; slices and maps come back as
// stored (nil and empty alike as empty).
type Store interface {
	// CreateUser stores a new user and, when tok is not nil, its first
	// API token.
	CreateUser(ctx context.Context, u User, tok *Token, events []audit.Event) error
	GetUser(ctx context.Context, name string) (User, error)
	// ListUsers lists every user by name.
	ListUsers(ctx context.Context) ([]User, error)
	// UpdateUser changes a user under a lock: fn gets the stored user,
	// changes it (the name is kept) and returns the events of the change.
	UpdateUser(ctx context.Context, name string, fn func(*User) ([]audit.Event, error)) (User, error)
	// DeleteUser removes a user and their tokens; *InUseError while a
	// project or policy names them.
	DeleteUser(ctx context.Context, name string, events []audit.Event) error

	// CreateToken stores a token of an existing user.
	CreateToken(ctx context.Context, t Token, events []audit.Event) error
	// TokenByHash finds a token (active or not) by the SHA-256 of its
	// string, with its user.
	TokenByHash(ctx context.Context, hash []byte) (Token, User, error)
	// ListTokens lists a user's tokens, newest first, revoked ones too.
	ListTokens(ctx context.Context, user string) ([]Token, error)
	// RevokeToken marks a user's token revoked at the given time; revoking
	// a revoked token changes nothing (and appends no events).
	RevokeToken(ctx context.Context, user, id string, at time.Time, events []audit.Event) (Token, error)

	// CreateProject stores a project with its keys.
	CreateProject(ctx context.Context, p Project, keys []ProjectKey, events []audit.Event) error
	GetProject(ctx context.Context, name string) (Project, error)
	// ListProjects lists every project by name.
	ListProjects(ctx context.Context) ([]Project, error)
	// UpdateProject changes a project under a lock (name, repository and
	// keys are kept; keys change through RotateKey).
	UpdateProject(ctx context.Context, name string, fn func(*Project) ([]audit.Event, error)) (Project, error)
	// DeleteProject removes a project, its policies and its key records;
	// *InUseError while it has pending requests.
	DeleteProject(ctx context.Context, name string, events []audit.Event) error
	// ListProjectKeys lists a project's keys, newest first.
	ListProjectKeys(ctx context.Context, project string) ([]ProjectKey, error)
	// RotateKey makes k the active key of its project's signer (k.Policy
	// "") or of a policy's own signer: the key it replaces is retired at
	// k.Created.
	RotateKey(ctx context.Context, k ProjectKey, events []audit.Event) error

	// CreatePolicy stores a policy of an existing project, with the key of
	// its own signer when it has one.
	CreatePolicy(ctx context.Context, p Policy, keys []ProjectKey, events []audit.Event) error
	GetPolicy(ctx context.Context, project, name string) (Policy, error)
	// ListPolicies lists a project's policies by name.
	ListPolicies(ctx context.Context, project string) ([]Policy, error)
	// PoliciesNaming lists the policies that name user as approver or
	// submitter.
	PoliciesNaming(ctx context.Context, user string) ([]Policy, error)
	// UpdatePolicy changes a policy under a lock (project, name, signer
	// and key are kept).
	UpdatePolicy(ctx context.Context, project, name string, fn func(*Policy) ([]audit.Event, error)) (Policy, error)
	// DeletePolicy removes a policy; *InUseError while it has pending
	// requests.
	DeletePolicy(ctx context.Context, project, name string, events []audit.Event) error

	// CreateRequest stores a new request of an existing policy, with its
	// effects. When r has a RunKey and a pending request with that key
	// exists, nothing is stored and that request is returned with
	// created=false.
	CreateRequest(ctx context.Context, r Request, fx Effects) (got Request, created bool, err error)
	GetRequest(ctx context.Context, id string) (Request, error)
	// ListRequests lists requests newest first.
	ListRequests(ctx context.Context, f RequestFilter) ([]Request, error)
	// UpdateRequest changes a request under a lock: fn gets the stored
	// request and changes what may change (status, decisions, reason,
	// signing progress: signed roles, cosign signatures, started, done;
	// expiry, attempts, claim, status token, updated) and returns the
	// effects of the change.
	UpdateRequest(ctx context.Context, id string, fn func(*Request) (Effects, error)) (Request, error)
	// UpdateRequests changes several requests in one transaction, each as
	// UpdateRequest does, in the order of ids; ErrUnchanged from fn leaves
	// that request as it is, any other error rolls back all of them. It
	// returns the requests as they stand after.
	UpdateRequests(ctx context.Context, ids []string, fn func(*Request) (Effects, error)) ([]Request, error)
	// CountRequests counts a project's requests created at or after since.
	CountRequests(ctx context.Context, project string, since time.Time) (int, error)
	// CountRequestsPerDay counts the requests of the projects created on
	// each of days days of 24 hours from since: element d counts those
	// created in [since+d days, since+d+1 days). days is 1 to MaxCountDays;
	// no projects count nothing.
	CountRequestsPerDay(ctx context.Context, projects []string, since time.Time, days int) ([]int, error)
	// ClaimSigning leases up to limit requests in StatusSigning whose claim
	// is free (none, or expired at now) to holder until now+lease, oldest
	// first, and returns them. Concurrent claims never lease one request
	// to two holders.
	ClaimSigning(ctx context.Context, holder string, now time.Time, lease time.Duration, limit int) ([]Request, error)
	// DueRequests lists the IDs of up to limit requests awaiting approval
	// whose Expires is not after now.
	DueRequests(ctx context.Context, now time.Time, limit int) ([]string, error)
	// FinishedBefore lists the IDs of up to limit requests in a final
	// status last updated before t.
	FinishedBefore(ctx context.Context, t time.Time, limit int) ([]string, error)
	// DeleteRequest removes a request in a final status (store.ErrConflict
	// for a pending one).
	DeleteRequest(ctx context.Context, id string, events []audit.Event) error

	// Commit records effects of something that changed nothing else: the
	// audit events of a submission refused for its origin claims, or
	// notifications on their own.
	Commit(ctx context.Context, fx Effects) error

	// ClaimDeliveries returns up to limit pending deliveries due at now,
	// earliest first, and moves their NextAttempt to now+lease atomically,
	// so that no other claim returns them before the lease ends.
	ClaimDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]Delivery, error)
	// RecordDelivery stores the outcome of an attempt at a delivery: its
	// state, attempts, next attempt (pending) and last error, at time at.
	RecordDelivery(ctx context.Context, id, state string, attempts int, next time.Time, lastError string, at time.Time) error
	// ListDeliveries lists the deliveries of a request's notifications
	// (whose notification names it), oldest first.
	ListDeliveries(ctx context.Context, requestID string) ([]Delivery, error)
	// GetDelivery reads one delivery.
	GetDelivery(ctx context.Context, id string) (Delivery, error)
}
