package oidc

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzParseIDToken: parsing never panics, refuses with a TokenError, and a
// token it accepts has the registered claims it promises.
func FuzzParseIDToken(f *testing.F) {
	f.Add("eyJhbGciOiJFUzI1NiIsImtpZCI6IngifQ.eyJpc3MiOiJodHRwczovL2kiLCJzdWIiOiJzIiwiYXVkIjoiYSIsImV4cCI6MiwiaWF0IjoxfQ.c2ln")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOlsiYSIsMV19.eA")
	f.Add("a.b.c")
	f.Add("...")
	f.Add("eyJhbGciOiJFUzI1NiIsImNyaXQiOlsiYiJdfQ.e30.eA")
	f.Fuzz(func(t *testing.T, raw string) {
		tok, err := parseIDToken(raw)
		if err != nil {
			var te *TokenError
			if !errors.As(err, &te) || te.Check == "" || te.Reason == "" {
				t.Fatalf("error %v (%T) is not a TokenError with a check and reason", err, err)
			}
			return
		}
		if tok.issuer == "" || tok.subject == "" || len(tok.audience) == 0 || tok.exp.IsZero() && tok.iat.IsZero() {
			t.Fatalf("accepted token without registered claims: %+v", tok)
		}
		if len(tok.jws.Signature) == 0 || tok.claims == nil {
			t.Fatalf("accepted token without signature or claims")
		}
		_ = tok.checkTimes(time.Unix(0, 0), time.Minute)
	})
}

// FuzzMatch compares Match with the same pattern translated to a regular
// expression.
func FuzzMatch(f *testing.F) {
	for _, s := range [][2]string{
		{"refs/tags/v*", "refs/tags/v1.2"}, {"org/**", "org/a/b"}, {"a?c", "abc"}, {`a\*`, "a*"},
		{"*a*", "bab"}, {"**/x", "a/b/x"}, {"ü?", "üx"}, {`\\`, `\`},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, value string) {
		if !utf8.ValidString(pattern) || !utf8.ValidString(value) || len(pattern) > 64 || len(value) > 256 {
			return
		}
		got := Match(pattern, value)
		re, ok := toRegexp(pattern)
		if !ok {
			if got {
				t.Fatalf("invalid pattern %q matched %q", pattern, value)
			}
			return
		}
		if want := re.MatchString(value); got != want {
			t.Fatalf("Match(%q, %q) = %v, regexp %s says %v", pattern, value, got, re, want)
		}
	})
}

func toRegexp(p string) (*regexp.Regexp, bool) {
	var b strings.Builder
	b.WriteString(`^(?s:`)
	rs := []rune(p)
	for i := 0; i < len(rs); i++ {
		switch rs[i] {
		case '\\':
			if i+1 == len(rs) {
				return nil, false
			}
			i++
			b.WriteString(regexp.QuoteMeta(string(rs[i])))
		case '*':
			if i+1 < len(rs) && rs[i+1] == '*' {
				for i+1 < len(rs) && rs[i+1] == '*' {
					i++
				}
				b.WriteString(`.*`)
			} else {
				b.WriteString(`[^/]*`)
			}
		case '?':
			b.WriteString(`[^/]`)
		default:
			b.WriteString(regexp.QuoteMeta(string(rs[i])))
		}
	}
	b.WriteString(`)$`)
	return regexp.MustCompile(b.String()), true
}
