package audit

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// EventType names what happened. Types read "<area>.<action>".
type EventType string

// Signing requests (the signing service).
const (
	RequestSubmit  EventType = "request.submit"  // submitted, with its origin claims
	RequestApprove EventType = "request.approve" // an approver approved
	RequestDeny    EventType = "request.deny"    // an approver denied, with a comment
	RequestSign    EventType = "request.sign"    // signed: GUN, tag, digest, role and version
	RequestFail    EventType = "request.fail"    // signing failed, with the reason
	RequestExpire  EventType = "request.expire"  // expired without a decision
)

// Administration of the signing service.
const (
	UserCreate    EventType = "user.create"
	UserUpdate    EventType = "user.update"
	UserDelete    EventType = "user.delete"
	TokenCreate   EventType = "token.create"
	TokenRevoke   EventType = "token.revoke"
	ProjectCreate EventType = "project.create"
	ProjectUpdate EventType = "project.update"
	ProjectDelete EventType = "project.delete"
	PolicyCreate  EventType = "policy.create"
	PolicyUpdate  EventType = "policy.update"
	PolicyDelete  EventType = "policy.delete"
)

// Keys held by the server or its custodian.
const (
	KeyCreate EventType = "key.create"
	KeyRotate EventType = "key.rotate"
	KeyRekey  EventType = "key.rekey"
)

// TUF metadata.
const (
	// TUFPublish is every accepted upload: each role's new version and the
	// SHA-256 of its bytes as served.
	TUFPublish EventType = "tuf.publish"
	// TUFResign is the server re-signing its timestamp (and snapshot).
	TUFResign EventType = "tuf.resign"
	// TUFDelete is the deletion of a repository's metadata.
	TUFDelete EventType = "tuf.delete"
)

// Admission decisions posted by the webhook (signet-admission): the
// images in Images (and the first in Subject.Image), the namespace, the
// Kubernetes user in Subject.User and the request in Origin (kind, name,
// operation, uid, username, groups).
const (
	AdmissionAllow      EventType = "admission.allow"       // admitted: verified, or unverified in warn/audit mode (Reason)
	AdmissionDeny       EventType = "admission.deny"        // refused, with the reason
	AdmissionBreakGlass EventType = "admission.break_glass" // admitted unverified by break-glass: Comment is the reason given
	// AdmissionUnverified is an admitted image that no longer verifies
	// (continuous validation: a signature revoked or expired since).
	AdmissionUnverified EventType = "admission.unverified"
)

// EventTypes lists every event type, in the order above.
var EventTypes = []EventType{
	RequestSubmit, RequestApprove, RequestDeny, RequestSign, RequestFail, RequestExpire,
	UserCreate, UserUpdate, UserDelete, TokenCreate, TokenRevoke,
	ProjectCreate, ProjectUpdate, ProjectDelete, PolicyCreate, PolicyUpdate, PolicyDelete,
	KeyCreate, KeyRotate, KeyRekey,
	TUFPublish, TUFResign, TUFDelete,
	AdmissionAllow, AdmissionDeny, AdmissionBreakGlass, AdmissionUnverified,
}

// AdmissionTypes are the event types the webhook may post through the
// append API.
var AdmissionTypes = []EventType{AdmissionAllow, AdmissionDeny, AdmissionBreakGlass, AdmissionUnverified}

// Known reports whether t is one of EventTypes.
func (t EventType) Known() bool {
	for _, k := range EventTypes {
		if t == k {
			return true
		}
	}
	return false
}

// ActorKind says who acted.
type ActorKind string

// Kinds of actor.
const (
	ActorUser   ActorKind = "user"   // a person (or their API token), by user name
	ActorCI     ActorKind = "ci"     // a CI job, by its OIDC issuer and subject
	ActorSystem ActorKind = "system" // the server itself (Name: which part, optional)
)

// Actor is who caused an event.
type Actor struct {
	Kind    ActorKind `json:"kind"`
	Name    string    `json:"name,omitempty"`
	Issuer  string    `json:"issuer,omitempty"`
	Subject string    `json:"subject,omitempty"`
}

// System is the actor of what the server does on its own.
var System = Actor{Kind: ActorSystem}

func (a Actor) validate() error {
	switch a.Kind {
	case ActorUser:
		if a.Name == "" || a.Issuer != "" || a.Subject != "" {
			return errors.New("a user actor has a name and nothing else")
		}
	case ActorCI:
		if a.Issuer == "" || a.Subject == "" {
			return errors.New("a CI actor needs its issuer and subject")
		}
	case ActorSystem:
		if a.Issuer != "" || a.Subject != "" {
			return errors.New("the system actor has no issuer or subject")
		}
	default:
		return fmt.Errorf("actor kind %q is not user, ci or system", a.Kind)
	}
	return nil
}

// String returns the actor as a short text: the user name, issuer#subject,
// or system[/name].
func (a Actor) String() string {
	switch a.Kind {
	case ActorCI:
		return a.Issuer + "#" + a.Subject
	case ActorSystem:
		if a.Name != "" {
			return "system/" + a.Name
		}
		return "system"
	default:
		return a.Name
	}
}

// Subject identifies what an event is about; only the identifiers that
// apply are set.
type Subject struct {
	RequestID string `json:"request_id,omitempty"`
	GUN       string `json:"gun,omitempty"`
	Tag       string `json:"tag,omitempty"`
	Digest    string `json:"digest,omitempty"`
	Role      string `json:"role,omitempty"`
	KeyID     string `json:"key_id,omitempty"`
	User      string `json:"user,omitempty"`
	Token     string `json:"token,omitempty"`
	Project   string `json:"project,omitempty"`
	Policy    string `json:"policy,omitempty"`
	Image     string `json:"image,omitempty"`
	Namespace string `json:"namespace,omitempty"`
}

// String returns the set identifiers as name=value pairs.
func (s Subject) String() string {
	var parts []string
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k+"="+v)
		}
	}
	add("request", s.RequestID)
	add("gun", s.GUN)
	add("tag", s.Tag)
	add("digest", s.Digest)
	add("role", s.Role)
	add("key", s.KeyID)
	add("user", s.User)
	add("token", s.Token)
	add("project", s.Project)
	add("policy", s.Policy)
	add("namespace", s.Namespace)
	add("image", s.Image)
	return strings.Join(parts, " ")
}

// RoleVersion is one role's new version and the SHA-256 (lowercase hex) of
// its bytes as served.
type RoleVersion struct {
	Role    string `json:"role"`
	Version int64  `json:"version"`
	SHA256  string `json:"sha256"`
}

// Event is one audit log entry.
type Event struct {
	Type    EventType `json:"type"`
	Time    time.Time `json:"time"`
	Actor   Actor     `json:"actor"`
	Subject Subject   `json:"subject"`
	// Roles: tuf.publish, tuf.resign, request.sign.
	Roles []RoleVersion `json:"roles,omitempty"`
	// Origin: the origin claims of request.submit (CI repository, ref,
	// workflow, run …); for admission.*, the Kubernetes request.
	Origin map[string]string `json:"origin,omitempty"`
	// Comment: request.deny, request.approve, admission.break_glass.
	Comment string `json:"comment,omitempty"`
	// Reason: request.fail, admission.deny.
	Reason string `json:"reason,omitempty"`
	// Changes: the names of the fields an update changed.
	Changes []string `json:"changes,omitempty"`
	// Images: the images an admission event is about.
	Images []string `json:"images,omitempty"`
}

// ErrInvalidEvent reports an event that cannot go into the log.
var ErrInvalidEvent = errors.New("audit: invalid event")

// Validate checks that the event has what its type needs.
func (e *Event) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrInvalidEvent, e.Type, fmt.Sprintf(format, args...))
	}
	if !e.Type.Known() {
		return fmt.Errorf("%w: unknown event type %q", ErrInvalidEvent, e.Type)
	}
	if e.Time.IsZero() {
		return bad("no time")
	}
	if err := e.Actor.validate(); err != nil {
		return bad("%v", err)
	}
	s := e.Subject
	need := func(what, v string) error {
		if v == "" {
			return bad("no %s", what)
		}
		return nil
	}
	var err error
	area, _, _ := strings.Cut(string(e.Type), ".")
	switch area {
	case "request":
		err = need("request ID", s.RequestID)
		if err == nil && e.Type == RequestSign {
			err = errors.Join(need("GUN", s.GUN), need("tag", s.Tag), need("digest", s.Digest), e.needRoles(bad))
		}
	case "user":
		err = need("user", s.User)
	case "token":
		err = need("token", s.Token)
	case "project":
		err = need("project", s.Project)
	case "policy":
		err = need("policy", s.Policy)
	case "key":
		err = need("key ID", s.KeyID)
	case "tuf":
		err = need("GUN", s.GUN)
		if err == nil && e.Type != TUFDelete {
			err = e.needRoles(bad)
		}
	case "admission":
		err = need("image", s.Image)
		for _, img := range e.Images {
			if img == "" {
				err = bad("an empty image")
			}
		}
	}
	if err != nil {
		return err
	}
	for k := range e.Origin {
		if k == "" {
			return bad("an origin claim without a name")
		}
	}
	return nil
}

func (e *Event) needRoles(bad func(string, ...any) error) error {
	if len(e.Roles) == 0 {
		return bad("no roles")
	}
	for _, r := range e.Roles {
		if r.Role == "" || r.Version < 1 {
			return bad("a role without a name or version")
		}
		if len(r.SHA256) != 64 || strings.ToLower(r.SHA256) != r.SHA256 {
			return bad("role %s: sha256 must be 64 lowercase hex digits", r.Role)
		}
		if _, err := hex.DecodeString(r.SHA256); err != nil {
			return bad("role %s: sha256 must be 64 lowercase hex digits", r.Role)
		}
	}
	return nil
}

// Encode validates the event and returns the bytes that go into the log:
// JSON with the fields in a fixed order, map keys sorted, no HTML
// escaping, the time in UTC to the microsecond. These bytes are stored,
// hashed and served as they are; nothing re-encodes them.
func (e Event) Encode() ([]byte, error) {
	e.Time = e.Time.UTC().Truncate(time.Microsecond)
	if err := e.Validate(); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil {
		return nil, fmt.Errorf("audit: encode event: %w", err)
	}
	out := bytes.TrimSuffix(b.Bytes(), []byte("\n"))
	if len(out) > MaxEntrySize {
		return nil, fmt.Errorf("%w: %s: %d bytes encoded, more than %d", ErrInvalidEvent, e.Type, len(out), MaxEntrySize)
	}
	return out, nil
}

// ParseEvent reads a log entry. Fields it does not know are ignored, so
// that a client reads entries of newer servers.
func ParseEvent(entry []byte) (Event, error) {
	var e Event
	if err := json.Unmarshal(entry, &e); err != nil {
		return Event{}, fmt.Errorf("audit: entry is not an event: %w", err)
	}
	return e, nil
}

// DecodeEvent reads one event strictly, as the append API takes it: one
// JSON object, no unknown fields, nothing after it.
func DecodeEvent(r io.Reader) (Event, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var e Event
	if err := dec.Decode(&e); err != nil {
		return Event{}, fmt.Errorf("%w: %w", ErrInvalidEvent, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Event{}, fmt.Errorf("%w: data after the event", ErrInvalidEvent)
	}
	return e, nil
}
