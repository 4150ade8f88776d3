package service

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"sync"
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
	FormatCosign Format = "cosign" // cosign signatures (the cosign issue)
)

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
	Signed      []SignedRole
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

// approvedBy reports whether user has approved r.
func (r Request) approvedBy(user string) bool {
	return slices.ContainsFunc(r.Approvals, func(d Decision) bool { return d.User == user })
}

// IDs are UUIDv7 strings: opaque, unique, and sortable by creation time.
// The 12 bits after the version count within a millisecond, so one
// generator's IDs are strictly increasing even within a millisecond or
// when the clock steps back.
type idGen struct {
	mu      sync.Mutex
	lastMS  uint64
	counter uint16
}

// next returns a new ID for time now.
func (g *idGen) next(now time.Time) string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("service: no randomness: " + err.Error())
	}
	ms := uint64(max(now.UnixMilli(), 0))
	g.mu.Lock()
	if ms <= g.lastMS {
		ms = g.lastMS
		g.counter++
		if g.counter > 0x0fff {
			ms++
			g.counter = 0
		}
	} else {
		g.counter = binary.BigEndian.Uint16(b[6:8]) & 0x07ff // room to count
	}
	g.lastMS = ms
	c := g.counter
	g.mu.Unlock()
	binary.BigEndian.PutUint64(b[:8], ms<<16|uint64(0x7000|c))
	b[8] = 0x80 | b[8]&0x3f // variant 10
	h := hex.EncodeToString(b[:])
	return fmt.Sprintf("%s-%s-%s-%s-%s", h[:8], h[8:12], h[12:16], h[16:20], h[20:])
}
