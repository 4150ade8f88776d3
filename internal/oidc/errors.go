package oidc

import (
	"errors"
	"fmt"
	"time"
)

// The three classes of refusal. Every error Verify returns for a token
// wraps exactly one of them; errors.Is tells them apart.
var (
	// ErrInvalidToken: not a valid ID token of the rule's issuer for its
	// audience (401).
	ErrInvalidToken = errors.New("oidc: invalid token")
	// ErrClaimMismatch: a valid token whose claims do not match the rule
	// (403).
	ErrClaimMismatch = errors.New("oidc: the token's claims do not match the origin rule")
	// ErrIssuerUnavailable: the issuer's discovery document or keys could
	// not be fetched, so the token could not be checked (503).
	ErrIssuerUnavailable = errors.New("oidc: issuer unavailable")
)

// Checks a TokenError names.
const (
	CheckSize      = "size"
	CheckFormat    = "format"
	CheckAlgorithm = "alg"
	CheckIssuer    = "iss"
	CheckAudience  = "aud"
	CheckSubject   = "sub"
	CheckExpiry    = "exp"
	CheckNotBefore = "nbf"
	CheckIssuedAt  = "iat"
	CheckKey       = "kid"
	CheckSignature = "signature"
)

// TokenError is a token that is not a valid ID token for the rule.
type TokenError struct {
	// Check is the check that failed (one of the Check constants).
	Check string
	// Reason is a plain sentence.
	Reason string
}

func (e *TokenError) Error() string { return "oidc: invalid token: " + e.Reason }

// Unwrap returns ErrInvalidToken.
func (e *TokenError) Unwrap() error { return ErrInvalidToken }

func invalid(check, format string, args ...any) *TokenError {
	return &TokenError{Check: check, Reason: fmt.Sprintf(format, args...)}
}

// MismatchError is a valid token one of whose claims does not match the
// rule.
type MismatchError struct {
	// Claim is the claim name, Pattern the rule's pattern for it.
	Claim, Pattern string
	// Present is false when the token lacks the claim; NotScalar is set
	// when the claim is null, an array or an object; otherwise Value is the
	// claim's value.
	Present, NotScalar bool
	Value              string
}

func (e *MismatchError) Error() string {
	switch {
	case !e.Present:
		return fmt.Sprintf("oidc: the token has no %q claim, which the origin rule requires to match %q", e.Claim, e.Pattern)
	case e.NotScalar:
		return fmt.Sprintf("oidc: the token's %q claim is not a string, number or boolean, so it cannot match the origin rule's %q", e.Claim, e.Pattern)
	}
	return fmt.Sprintf("oidc: the token's %q claim is %q, which does not match the origin rule's %q", e.Claim, e.Value, e.Pattern)
}

// Unwrap returns ErrClaimMismatch.
func (e *MismatchError) Unwrap() error { return ErrClaimMismatch }

// UnavailableError is an issuer whose discovery document or keys could not
// be fetched.
type UnavailableError struct {
	// Issuer is the issuer URL; Reason says what failed.
	Issuer, Reason string
	// RetryAfter is when the verifier will next try the issuer.
	RetryAfter time.Duration
	// Err is the cause (network, TLS, HTTP status, parse), if any.
	Err error
}

func (e *UnavailableError) Error() string {
	msg := fmt.Sprintf("oidc: issuer %s is unavailable: %s", e.Issuer, e.Reason)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns ErrIssuerUnavailable and the cause.
func (e *UnavailableError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrIssuerUnavailable}
	}
	return []error{ErrIssuerUnavailable, e.Err}
}
