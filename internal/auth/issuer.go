package auth

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/signet-trust/signet/internal/jose"
	"github.com/signet-trust/signet/internal/server"
)

// TokenPath is where signet-server serves its built-in token service.
const TokenPath = "/auth/token"

// Passwords checks user credentials (an *Htpasswd).
type Passwords interface {
	Authenticate(user, password string) error
}

// IssuerConfig configures an Issuer.
type IssuerConfig struct {
	// Issuer is the iss of every token.
	Issuer string
	// Audiences are the services tokens may be requested for (this
	// server's, and a registry's sharing the users).
	Audiences []string
	// Users checks credentials; Admins are the users granted "*" on
	// repositories and access to the registry catalog.
	Users  Passwords
	Admins []string
	// AnonymousPull lists services for which a request without credentials
	// gets a token granting pull on repositories. The notary CLI reads
	// (list, lookup, verify) anonymously, so they need this for this
	// server's own service.
	AnonymousPull []string
	// Signer signs tokens; Chain certifies its key (leaf first) and is sent
	// in the x5c header.
	Signer crypto.Signer
	Chain  []*x509.Certificate
	// TTL is the lifetime of a token (default 5 minutes).
	TTL    time.Duration
	Now    func() time.Time
	Logger *slog.Logger
}

// Issuer is a registry token service (the Docker registry token
// specification): GET with HTTP Basic credentials, or POST with an OAuth2
// password grant, returns a signed token. Every authenticated user gets
// pull and push on any repository; admins get whatever they ask for;
// requests without credentials, for services listed in AnonymousPull, get
// pull on repositories, and otherwise a Basic challenge.
type Issuer struct {
	cfg   IssuerConfig
	alg   string
	kid   string
	x5c   []string
	admin map[string]bool
}

// NewIssuer checks cfg and returns an Issuer.
func NewIssuer(cfg IssuerConfig) (*Issuer, error) {
	var errs []error
	if cfg.Issuer == "" {
		errs = append(errs, errors.New("auth: issuer: no issuer name"))
	}
	if len(cfg.Audiences) == 0 {
		errs = append(errs, errors.New("auth: issuer: no audience"))
	}
	if cfg.Users == nil {
		errs = append(errs, errors.New("auth: issuer: no user database"))
	}
	if cfg.Signer == nil || len(cfg.Chain) == 0 {
		errs = append(errs, errors.New("auth: issuer: no signing key and certificate"))
	}
	if cfg.Now == nil {
		errs = append(errs, errors.New("auth: issuer: no clock"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.TTL == 0 {
		cfg.TTL = 5 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	alg, err := jwsAlgorithm(cfg.Signer.Public())
	if err != nil {
		return nil, err
	}
	if !sameKey(cfg.Chain[0].PublicKey, cfg.Signer.Public()) {
		return nil, errors.New("auth: issuer: the certificate does not hold the signing key")
	}
	kid, err := LibtrustKeyID(cfg.Signer.Public())
	if err != nil {
		return nil, err
	}
	is := &Issuer{cfg: cfg, alg: alg, kid: kid, admin: map[string]bool{}}
	for _, c := range cfg.Chain {
		is.x5c = append(is.x5c, base64.StdEncoding.EncodeToString(c.Raw))
	}
	for _, a := range cfg.Admins {
		is.admin[a] = true
	}
	return is, nil
}

// tokenResponse is what docker, containerd and notary clients read.
type tokenResponse struct {
	Token       string `json:"token"`
	AccessToken string `json:"access_token"`
	ExpiresIn   int    `json:"expires_in"`
	IssuedAt    string `json:"issued_at"`
}

// Routes is the token service's group of signet-server's route table:
// TokenPath, any method (ServeHTTP answers 405 to those it does not
// take), public — the service checks passwords itself.
func (is *Issuer) Routes() server.Group {
	return server.Group{Name: "token service", Routes: []server.Route{
		{Pattern: TokenPath, Op: "Token", Access: server.Public(), Handler: is},
	}}
}

// ServeHTTP answers token requests.
func (is *Issuer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var user, pass, service, account string
	var scopes []string
	var hasCreds bool
	switch r.Method {
	case http.MethodGet:
		q := r.URL.Query()
		service, account, scopes = q.Get("service"), q.Get("account"), q["scope"]
		user, pass, hasCreds = r.BasicAuth()
	case http.MethodPost:
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil {
			writeTokenError(w, http.StatusBadRequest, "invalid_request", "malformed form")
			return
		}
		if gt := r.PostForm.Get("grant_type"); gt != "password" {
			writeTokenError(w, http.StatusBadRequest, "unsupported_grant_type", "only the password grant is supported")
			return
		}
		service, scopes = r.PostForm.Get("service"), r.PostForm["scope"]
		user, pass = r.PostForm.Get("username"), r.PostForm.Get("password")
		hasCreds = user != ""
	default:
		w.Header().Set("Allow", "GET, POST")
		writeTokenError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", "use GET or POST")
		return
	}
	log := is.cfg.Logger.With(slog.String("service", service), slog.String("user", user))
	if !slices.Contains(is.cfg.Audiences, service) {
		log.InfoContext(r.Context(), "token refused: unknown service")
		writeTokenError(w, http.StatusBadRequest, "DENIED", fmt.Sprintf("this token service does not issue tokens for service %q", service))
		return
	}
	anonymous := !hasCreds && r.Method == http.MethodGet && slices.Contains(is.cfg.AnonymousPull, service)
	if !hasCreds && !anonymous {
		w.Header().Set("Www-Authenticate", `Basic realm="signet token service"`)
		writeTokenError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
		return
	}
	if anonymous {
		user = ""
	} else if err := is.cfg.Users.Authenticate(user, pass); err != nil {
		log.InfoContext(r.Context(), "token refused: authentication failed", slog.Any("cause", err))
		w.Header().Set("Www-Authenticate", `Basic realm="signet token service"`)
		writeTokenError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
		return
	}
	if account != "" && account != user {
		log.InfoContext(r.Context(), "token refused: account differs from the authenticated user", slog.String("account", account))
		writeTokenError(w, http.StatusForbidden, "DENIED", "account does not match the credentials")
		return
	}
	requested, err := ParseScopes(scopes)
	if err != nil {
		writeTokenError(w, http.StatusBadRequest, "invalid_scope", err.Error())
		return
	}
	granted := is.Grant(user, requested)
	if anonymous {
		granted = grantAnonymous(requested)
	}
	now := is.cfg.Now()
	tok, err := is.Sign(user, service, granted, now)
	if err != nil {
		log.ErrorContext(r.Context(), "token signing failed", slog.Any("cause", err))
		writeTokenError(w, http.StatusInternalServerError, "UNKNOWN", "token signing failed")
		return
	}
	log.InfoContext(r.Context(), "token issued", slog.Bool("anonymous", anonymous), slog.Any("granted", granted))
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(tokenResponse{
		Token: tok, AccessToken: tok, ExpiresIn: int(is.cfg.TTL / time.Second),
		IssuedAt: now.UTC().Format(time.RFC3339),
	})
}

func writeTokenError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]any{"errors": []map[string]string{{"code": code, "message": msg}}})
	_, _ = w.Write(b)
}

// ParseScopes parses scope parameters "type:name:action,action", several
// per parameter separated by spaces. The name may itself contain ':' (a
// registry host with a port), so the type ends at the first ':' and the
// actions start after the last.
func ParseScopes(params []string) ([]ResourceActions, error) {
	var out []ResourceActions
	for _, p := range params {
		for s := range strings.FieldsSeq(p) {
			i, j := strings.Index(s, ":"), strings.LastIndex(s, ":")
			if i <= 0 || j <= i+1 || j == len(s)-1 {
				return nil, fmt.Errorf("invalid scope %q: want type:name:actions", s)
			}
			ra := ResourceActions{Type: s[:i], Name: s[i+1 : j]}
			for a := range strings.SplitSeq(s[j+1:], ",") {
				if a != "" && !slices.Contains(ra.Actions, a) {
					ra.Actions = append(ra.Actions, a)
				}
			}
			out = append(out, ra)
		}
	}
	return out, nil
}

// Grant is the issuer's policy: admins get every action they request;
// other users get pull and push on repositories and nothing else.
func (is *Issuer) Grant(user string, requested []ResourceActions) []ResourceActions {
	out := []ResourceActions{}
	for _, ra := range requested {
		g := ResourceActions{Type: ra.Type, Name: ra.Name}
		for _, a := range ra.Actions {
			if is.admin[user] || (ra.Type == "repository" && (a == "pull" || a == "push")) {
				g.Actions = append(g.Actions, a)
			}
		}
		if len(g.Actions) > 0 {
			out = append(out, g)
		}
	}
	return out
}

// grantAnonymous is the policy for requests without credentials (when
// allowed at all): pull on repositories.
func grantAnonymous(requested []ResourceActions) []ResourceActions {
	out := []ResourceActions{}
	for _, ra := range requested {
		if ra.Type == "repository" && slices.Contains(ra.Actions, "pull") {
			out = append(out, ResourceActions{Type: ra.Type, Name: ra.Name, Actions: []string{"pull"}})
		}
	}
	return out
}

// Sign makes a token for subject and audience granting access, valid from
// now for the issuer's TTL.
func (is *Issuer) Sign(subject, audience string, access []ResourceActions, now time.Time) (string, error) {
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", err
	}
	if access == nil {
		access = []ResourceActions{}
	}
	return SignToken(is.cfg.Signer, Header{Type: "JWT", Algorithm: is.alg, KeyID: is.kid, X5C: is.x5c}, Claims{
		Issuer: is.cfg.Issuer, Subject: subject, Audience: Audience{audience},
		Expiry: NumericDate(now.Add(is.cfg.TTL).Unix()), NotBefore: NumericDate(now.Unix()),
		IssuedAt: NumericDate(now.Unix()), ID: hex.EncodeToString(jti), Access: access,
	})
}

// SignToken encodes h and c and signs them with s as a JWS compact token;
// h.Algorithm must fit the key ("" picks the algorithm for the key).
func SignToken(s crypto.Signer, h Header, c Claims) (string, error) {
	if h.Algorithm == "" {
		alg, err := jwsAlgorithm(s.Public())
		if err != nil {
			return "", err
		}
		h.Algorithm = alg
	}
	hdr, err := json.Marshal(h)
	if err != nil {
		return "", err
	}
	claims, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	signed := jose.B64Encode(hdr) + "." + jose.B64Encode(claims)
	sig, err := jose.Sign(s, h.Algorithm, []byte(signed))
	if err != nil {
		return "", err
	}
	return signed + "." + jose.B64Encode(sig), nil
}

// jwsAlgorithm is the JWS algorithm used with a key.
func jwsAlgorithm(pub crypto.PublicKey) (string, error) {
	alg, err := jose.AlgorithmFor(pub)
	if err != nil {
		return "", fmt.Errorf("auth: %s", strings.TrimPrefix(err.Error(), "jose: "))
	}
	return alg, nil
}
