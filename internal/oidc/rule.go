package oidc

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"
)

// MaxPatternLen bounds a claim pattern.
const MaxPatternLen = 1024

// Rule is a signing policy's origin rule.
type Rule struct {
	// Issuer is the token issuer, an https URL compared exactly with the
	// token's iss and the discovery document's issuer.
	Issuer string `json:"issuer" yaml:"issuer"`
	// Audience must be one of the token's aud values.
	Audience string `json:"audience" yaml:"audience"`
	// Claims maps a claim name to the pattern its value must match (see
	// the package documentation for the syntax).
	Claims map[string]string `json:"claims" yaml:"claims"`
}

// Validate checks the rule itself; a policy holding an invalid rule must
// not be saved.
func (r Rule) Validate() error {
	if err := validateIssuer(r.Issuer); err != nil {
		return err
	}
	if strings.TrimSpace(r.Audience) == "" {
		return errors.New("oidc: origin rule: audience is empty")
	}
	if len(r.Claims) == 0 {
		return errors.New("oidc: origin rule: no claim to match; an issuer and audience alone admit every repository that can get a token from the issuer")
	}
	for _, name := range r.claimNames() {
		if name == "" {
			return errors.New("oidc: origin rule: empty claim name")
		}
		if err := ValidatePattern(r.Claims[name]); err != nil {
			return fmt.Errorf("oidc: origin rule: claim %q: %w", name, err)
		}
	}
	return nil
}

func validateIssuer(iss string) error {
	u, err := url.Parse(iss)
	switch {
	case iss == "":
		return errors.New("oidc: origin rule: issuer is empty")
	case err != nil:
		return fmt.Errorf("oidc: origin rule: issuer %q is not a URL: %v", iss, err)
	case u.Scheme != "https":
		return fmt.Errorf("oidc: origin rule: issuer %q is not an https URL", iss)
	case u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "":
		return fmt.Errorf("oidc: origin rule: issuer %q must be https://host[/path] without user, query or fragment", iss)
	}
	return nil
}

// claimNames are the rule's claim names in order, so refusals are stable.
func (r Rule) claimNames() []string {
	names := make([]string, 0, len(r.Claims))
	for n := range r.Claims {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// ValidatePattern checks a claim pattern: not empty, at most MaxPatternLen
// bytes of UTF-8, no dangling backslash.
func ValidatePattern(p string) error {
	switch {
	case p == "":
		return errors.New("empty pattern")
	case len(p) > MaxPatternLen:
		return fmt.Errorf("pattern of %d bytes is longer than %d", len(p), MaxPatternLen)
	case !utf8.ValidString(p):
		return errors.New("pattern is not UTF-8")
	}
	if _, err := compile(p); err != nil {
		return err
	}
	return nil
}

// Match reports whether value matches pattern; an invalid pattern matches
// nothing.
func Match(pattern, value string) bool {
	toks, err := compile(pattern)
	return err == nil && match(toks, []rune(value))
}

type tokKind uint8

const (
	lit      tokKind = iota
	star             // * : any run without '/'
	globstar         // **: any run
	one              // ? : one rune other than '/'
)

type tok struct {
	kind tokKind
	r    rune
}

func compile(p string) ([]tok, error) {
	var out []tok
	rs := []rune(p)
	for i := 0; i < len(rs); i++ {
		switch c := rs[i]; c {
		case '\\':
			if i+1 == len(rs) {
				return nil, errors.New(`pattern ends in a lone backslash (write \\ for a backslash)`)
			}
			i++
			out = append(out, tok{kind: lit, r: rs[i]})
		case '*':
			if i+1 < len(rs) && rs[i+1] == '*' {
				for i+1 < len(rs) && rs[i+1] == '*' {
					i++
				}
				out = append(out, tok{kind: globstar})
			} else {
				out = append(out, tok{kind: star})
			}
		case '?':
			out = append(out, tok{kind: one})
		default:
			out = append(out, tok{kind: lit, r: c})
		}
	}
	return out, nil
}

// match runs in O(len(toks)·len(v)) time whatever the pattern (no
// backtracking): reach[j] is whether the tokens so far can consume v[:j].
func match(toks []tok, v []rune) bool {
	reach := make([]bool, len(v)+1)
	next := make([]bool, len(v)+1)
	reach[0] = true
	for _, t := range toks {
		clear(next)
		for j := 0; j <= len(v); j++ {
			switch t.kind {
			case lit:
				next[j] = j > 0 && reach[j-1] && v[j-1] == t.r
			case one:
				next[j] = j > 0 && reach[j-1] && v[j-1] != '/'
			case star:
				next[j] = reach[j] || (j > 0 && next[j-1] && v[j-1] != '/')
			case globstar:
				next[j] = reach[j] || (j > 0 && next[j-1])
			}
		}
		reach, next = next, reach
	}
	return reach[len(v)]
}

// MatchClaims checks claims (as decoded with json.Decoder.UseNumber) against
// every pattern of rule, in claim-name order, and returns a *MismatchError
// for the first that fails.
func MatchClaims(rule Rule, claims map[string]any) error {
	for _, name := range rule.claimNames() {
		pattern := rule.Claims[name]
		raw, present := claims[name]
		if !present {
			return &MismatchError{Claim: name, Pattern: pattern}
		}
		value, ok := scalar(raw)
		if !ok {
			return &MismatchError{Claim: name, Pattern: pattern, Present: true, NotScalar: true}
		}
		if !Match(pattern, value) {
			return &MismatchError{Claim: name, Pattern: pattern, Present: true, Value: value}
		}
	}
	return nil
}

// scalar is a claim value as the text patterns match: a string itself, a
// number or boolean as JSON writes it. Null, arrays and objects are not
// scalars.
func scalar(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case bool:
		if x {
			return "true", true
		}
		return "false", true
	case json.Number:
		return x.String(), true
	case float64:
		b, _ := json.Marshal(x)
		return string(b), true
	}
	return "", false
}
