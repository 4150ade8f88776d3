package service

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/signet-trust/signet/internal/audit"
)

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
	// signed roles, expiry, attempts, claim, status token, updated) and
	// returns the effects of the change.
	UpdateRequest(ctx context.Context, id string, fn func(*Request) (Effects, error)) (Request, error)
	// UpdateRequests changes several requests in one transaction, each as
	// UpdateRequest does, in the order of ids; ErrUnchanged from fn leaves
	// that request as it is, any other error rolls back all of them. It
	// returns the requests as they stand after.
	UpdateRequests(ctx context.Context, ids []string, fn func(*Request) (Effects, error)) ([]Request, error)
	// CountRequests counts a project's requests created at or after since.
	CountRequests(ctx context.Context, project string, since time.Time) (int, error)
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
