package oidc

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"time"

	"github.com/signet-trust/signet/internal/jose"
)

// MaxTokenBytes bounds the ID tokens Verify reads; GitHub's and GitLab's
// are 1–2 KiB.
const MaxTokenBytes = 16 << 10

// idToken is a parsed, unverified ID token.
type idToken struct {
	jws      *jose.Compact
	issuer   string
	subject  string
	audience []string
	exp, iat time.Time
	nbf      time.Time // zero when absent
	claims   map[string]any
}

// parseIDToken decodes raw and its registered claims, refusing anything
// that is not a signed JWT of an asymmetric algorithm with string iss and
// sub, an aud, and numeric exp and iat.
func parseIDToken(raw string) (*idToken, error) {
	if len(raw) > MaxTokenBytes {
		return nil, invalid(CheckSize, "the token is %d bytes, more than the %d accepted", len(raw), MaxTokenBytes)
	}
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, invalid(CheckFormat, "no token")
	}
	jws, err := jose.Parse(raw, MaxTokenBytes)
	if err != nil {
		return nil, invalid(CheckFormat, "the token is not a compact JWS (%s)", strings.TrimPrefix(err.Error(), "jose: malformed token: "))
	}
	if alg := jws.Header.Algorithm; !jose.Asymmetric(alg) {
		return nil, invalid(CheckAlgorithm, "the token's algorithm %q is not accepted (only ES256/384/512, RS256/384/512, PS256/384/512 and EdDSA; never none or HMAC)", alg)
	}
	if len(jws.Signature) == 0 {
		return nil, invalid(CheckSignature, "the token has no signature")
	}
	claims, err := decodeClaims(jws.Payload)
	if err != nil {
		return nil, invalid(CheckFormat, "the token's payload is not a JSON object of claims: %v", err)
	}
	t := &idToken{jws: jws, claims: claims}
	var ok bool
	if t.issuer, ok = claims["iss"].(string); !ok || t.issuer == "" {
		return nil, invalid(CheckIssuer, "the token has no iss (issuer) string")
	}
	if t.subject, ok = claims["sub"].(string); !ok || t.subject == "" {
		return nil, invalid(CheckSubject, "the token has no sub (subject) string")
	}
	switch aud := claims["aud"].(type) {
	case string:
		t.audience = []string{aud}
	case []any:
		for _, a := range aud {
			s, ok := a.(string)
			if !ok {
				return nil, invalid(CheckAudience, "the token's aud holds a value that is not a string")
			}
			t.audience = append(t.audience, s)
		}
	}
	if len(t.audience) == 0 {
		return nil, invalid(CheckAudience, "the token has no aud (audience)")
	}
	var present bool
	if t.exp, present, err = numericDate(claims, "exp"); err != nil || !present {
		return nil, invalid(CheckExpiry, "the token has no numeric exp (expiry)")
	}
	if t.iat, present, err = numericDate(claims, "iat"); err != nil || !present {
		return nil, invalid(CheckIssuedAt, "the token has no numeric iat (issued at)")
	}
	if t.nbf, _, err = numericDate(claims, "nbf"); err != nil {
		return nil, invalid(CheckNotBefore, "the token's nbf (not before) is not a number")
	}
	return t, nil
}

// decodeClaims decodes a JSON object keeping numbers as json.Number and
// refusing trailing data.
func decodeClaims(b []byte) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("null")
	}
	if _, err := d.Token(); err == nil {
		return nil, errors.New("trailing data after the object")
	}
	return m, nil
}

// numericDate reads a NumericDate claim (seconds since the epoch; fractions
// truncated).
func numericDate(claims map[string]any, name string) (time.Time, bool, error) {
	v, ok := claims[name]
	if !ok || v == nil {
		return time.Time{}, false, nil
	}
	n, ok := v.(json.Number)
	if !ok {
		return time.Time{}, true, errors.New("not a number")
	}
	if i, err := n.Int64(); err == nil {
		return time.Unix(i, 0), true, nil
	}
	f, err := n.Float64()
	// Bounded to what time.Unix represents sensibly (year ±292e9 is far
	// beyond any token); NaN and infinities are refused.
	if err != nil || math.IsNaN(f) || f > 1e15 || f < -1e15 {
		return time.Time{}, true, errors.New("not a usable number")
	}
	return time.Unix(int64(f), 0), true, nil
}

// checkTimes applies exp, nbf and iat at now with leeway.
func (t *idToken) checkTimes(now time.Time, leeway time.Duration) error {
	const f = time.RFC3339
	if now.After(t.exp.Add(leeway)) {
		return invalid(CheckExpiry, "the token expired at %s (now %s, leeway %s)", t.exp.UTC().Format(f), now.UTC().Format(f), leeway)
	}
	if !t.nbf.IsZero() && now.Before(t.nbf.Add(-leeway)) {
		return invalid(CheckNotBefore, "the token is not valid before %s (now %s, leeway %s)", t.nbf.UTC().Format(f), now.UTC().Format(f), leeway)
	}
	if now.Before(t.iat.Add(-leeway)) {
		return invalid(CheckIssuedAt, "the token was issued in the future, at %s (now %s, leeway %s)", t.iat.UTC().Format(f), now.UTC().Format(f), leeway)
	}
	return nil
}
