package service

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"

	"github.com/signet-trust/signet/internal/audit"
	"github.com/signet-trust/signet/internal/store"
)

// Passwords are hashed with Argon2id (RFC 9106) at OWASP's recommended
// cost of 19 MiB, 2 passes, 1 lane, into a PHC string.
const (
	argonMemory  = 19 * 1024
	argonTime    = 2
	argonThreads = 1
	argonKeyLen  = 32
	argonSaltLen = 16
	// MinPassword is the shortest password accepted.
	MinPassword = 12
)

// HashPassword returns the PHC string of password's Argon2id hash.
func HashPassword(password string) string {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		panic("service: no randomness: " + err.Error())
	}
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(key))
}

// CheckPassword reports whether password matches a PHC string of
// HashPassword (with whatever cost it was made at).
func CheckPassword(phc, password string) bool {
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[1] != "argon2id" || parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return false
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m == 0 || t == 0 || p == 0 || m > 1<<22 || t > 16 {
		return false
	}
	b64 := base64.RawStdEncoding
	salt, err1 := b64.DecodeString(parts[4])
	want, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false
	}
	got := argon2.IDKey([]byte(password), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// Prefixes of the bearer tokens the service issues.
const (
	apiTokenPrefix    = "sgn_"
	statusTokenPrefix = "sgs_"
)

// randomToken returns prefix and 32 random bytes in base64url.
func randomToken(prefix string) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("service: no randomness: " + err.Error())
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

func tokenHash(tok string) []byte {
	h := sha256.Sum256([]byte(tok))
	return h[:]
}

// PrincipalKind says what kind of credential a request carries.
type PrincipalKind string

// Kinds of principal.
const (
	KindUser        PrincipalKind = "user"         // an API token of a user
	KindAdminToken  PrincipalKind = "admin_token"  // SIGNET_ADMIN_TOKEN
	KindCI          PrincipalKind = "ci"           // a CI ID token, checked against a policy by the handler
	KindStatusToken PrincipalKind = "status_token" // a request's status token, checked by the handler
)

// Principal is who a request's credentials say it is.
type Principal struct {
	Kind PrincipalKind
	User User   // KindUser
	Raw  string // KindCI: the ID token; KindStatusToken: the token
}

// Admin reports whether p may do everything.
func (p Principal) Admin() bool {
	return p.Kind == KindAdminToken || p.Kind == KindUser && p.User.Admin
}

// Reader reports whether p may read everything (admins and auditors).
func (p Principal) Reader() bool { return p.Admin() || p.Kind == KindUser && p.User.Auditor }

// Actor is p in the audit log.
func (p Principal) Actor() audit.Actor {
	if p.Kind == KindUser {
		return audit.Actor{Kind: audit.ActorUser, Name: p.User.Name}
	}
	return audit.Actor{Kind: audit.ActorSystem, Name: string(p.Kind)}
}

// Roles of the route table: what a route needs before its handler runs.
// Finer checks (an approver of this policy, a manager of this project)
// are the handler's.
const (
	// RoleAdmin: an admin user or SIGNET_ADMIN_TOKEN.
	RoleAdmin = "admin"
	// RoleReader: an admin or an auditor.
	RoleReader = "reader"
	// RoleUser: any user's API token, or SIGNET_ADMIN_TOKEN.
	RoleUser = "user"
	// RoleBearer: any bearer credential — a user's API token, the admin
	// token, a request's status token, or a CI ID token (checked against
	// the policy by the handler).
	RoleBearer = "bearer"
)

// Roles lists every role, for the route table's check.
var Roles = []string{RoleAdmin, RoleReader, RoleUser, RoleBearer}

// bearer returns the request's bearer credential, or "".
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	scheme, cred, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(cred)
}

// authenticate finds who cred is: the admin token, a user's API token, a
// status token or an ID token (a JWT; verified later against a policy).
func (s *Service) authenticate(ctx context.Context, cred string) (Principal, error) {
	if cred == "" {
		return Principal{}, unauthenticated("no credentials: send Authorization: Bearer <token> (an API token in SIGNET_TOKEN, or a CI ID token)")
	}
	if len(cred) > 16<<10 {
		return Principal{}, unauthenticated("the bearer credential is too long")
	}
	if s.cfg.AdminToken != "" && subtle.ConstantTimeCompare([]byte(cred), []byte(s.cfg.AdminToken)) == 1 {
		return Principal{Kind: KindAdminToken}, nil
	}
	switch {
	case strings.HasPrefix(cred, apiTokenPrefix):
		tok, u, err := s.st.TokenByHash(ctx, tokenHash(cred))
		if errors.Is(err, store.ErrNotFound) {
			return Principal{}, unauthenticated("the API token is not valid")
		}
		if err != nil {
			return Principal{}, asError(err, "")
		}
		if !tok.Active(s.now()) {
			if !tok.Revoked.IsZero() {
				return Principal{}, unauthenticated("the API token %s was revoked", tok.ID)
			}
			return Principal{}, unauthenticated("the API token %s has expired", tok.ID)
		}
		return Principal{Kind: KindUser, User: u}, nil
	case strings.HasPrefix(cred, statusTokenPrefix):
		return Principal{Kind: KindStatusToken, Raw: cred}, nil
	case strings.Count(cred, ".") == 2:
		return Principal{Kind: KindCI, Raw: cred}, nil
	}
	return Principal{}, unauthenticated("the bearer credential is not an API token, a status token or an ID token")
}

// AuthorizeService is the service's authorizer of the route table
// (server.ServiceAuthorizer): whether the request's credentials hold role.
// It sets the WWW-Authenticate challenge on a 401. The principal found is
// kept for the handler of the same request.
func (s *Service) AuthorizeService(w http.ResponseWriter, r *http.Request, role string) error {
	p, err := s.authenticate(r.Context(), bearer(r))
	if err == nil {
		err = checkRole(p, role)
	}
	if err != nil {
		if e := asError(err, ""); e.Status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="signet"`)
		}
		return err
	}
	s.stashMu.Lock()
	s.stash[r] = p
	s.stashMu.Unlock()
	return nil
}

func checkRole(p Principal, role string) error {
	switch role {
	case RoleBearer:
		return nil
	case RoleUser:
		if p.Kind == KindUser || p.Kind == KindAdminToken {
			return nil
		}
		return forbidden("this needs a user's API token")
	case RoleReader:
		if p.Reader() {
			return nil
		}
		return forbidden("this needs an admin or an auditor")
	case RoleAdmin:
		if p.Admin() {
			return nil
		}
		if p.Kind == KindUser && p.User.Auditor {
			return forbidden("auditors read everything and change nothing; this needs an admin")
		}
		return forbidden("this needs an admin")
	}
	return forbidden("unknown role %q", role)
}

// principal returns the principal AuthorizeService found for r, or
// authenticates r itself (a handler served without the route table's
// guard, as in tests), holding it to role.
func (s *Service) principal(r *http.Request, role string) (Principal, error) {
	s.stashMu.Lock()
	p, ok := s.stash[r]
	delete(s.stash, r)
	s.stashMu.Unlock()
	if ok {
		return p, nil
	}
	p, err := s.authenticate(r.Context(), bearer(r))
	if err != nil {
		return Principal{}, err
	}
	return p, checkRole(p, role)
}

// Actor returns who the credentials of r (authorized by AuthorizeService
// for RoleUser or above, or authenticated now) are, as the audit log's
// actor: the append API records events with it.
func (s *Service) Actor(r *http.Request) (audit.Actor, error) {
	p, err := s.principal(r, RoleUser)
	if err != nil {
		return audit.Actor{}, err
	}
	return p.Actor(), nil
}

// mayManage reports whether p may change project proj (admins and its
// managers).
func mayManage(p Principal, proj Project) bool {
	return p.Admin() || p.Kind == KindUser && slices.Contains(proj.Managers, p.User.Name)
}
