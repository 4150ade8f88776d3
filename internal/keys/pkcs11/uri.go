package pkcs11

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// ErrInvalidURI reports a pkcs11: URI that cannot be used.
var ErrInvalidURI = errors.New("pkcs11: invalid URI")

// URI is the part of an RFC 7512 PKCS#11 URI that selects a key:
//
//	pkcs11:token=signet;object=root-example.com%2Fapp;id=%01%02?module-path=/usr/lib/softhsm/libsofthsm2.so
//
// Path attributes: token (the token label) or serial (its serial number),
// object (the key's CKA_LABEL), id (its CKA_ID, percent-encoded bytes) and
// type (only "private" is meaningful here). Query attributes: module-path
// (the PKCS#11 library) and pin-source (a file holding the PIN, as
// "file:/path" or a plain path). pin-value is refused: a PIN does not
// belong on a command line. Other RFC 7512 attributes (manufacturer,
// model, library-*, slot-*) are accepted and ignored, as the RFC allows.
type URI struct {
	ModulePath string // query module-path
	Token      string // path token: token label
	Serial     string // path serial: token serial number
	Object     string // path object: key label (CKA_LABEL)
	ID         []byte // path id: key ID (CKA_ID)
	PINSource  string // query pin-source, without a "file:" prefix
}

// ignoredAttrs are RFC 7512 attributes a URI may carry that do not change
// which key is meant here.
var ignoredAttrs = map[string]bool{
	"manufacturer": true, "model": true, "type": true,
	"library-manufacturer": true, "library-description": true, "library-version": true,
	"slot-manufacturer": true, "slot-description": true, "slot-id": true,
	"module-name": true,
}

// ParseURI parses a pkcs11: URI. It checks the syntax only; whether the
// module, the token and the key exist is for Open and Token.Find.
func ParseURI(s string) (URI, error) {
	var u URI
	rest, ok := strings.CutPrefix(s, "pkcs11:")
	if !ok {
		return u, fmt.Errorf("%w: %q does not start with \"pkcs11:\" (RFC 7512), e.g. pkcs11:token=signet;object=root?module-path=/usr/lib/softhsm/libsofthsm2.so", ErrInvalidURI, redact(s))
	}
	path, query, _ := strings.Cut(rest, "?")
	seen := map[string]bool{}
	for _, attr := range strings.Split(path, ";") {
		if attr == "" {
			continue
		}
		name, raw, ok := strings.Cut(attr, "=")
		if !ok {
			return u, fmt.Errorf("%w: path attribute %q has no value", ErrInvalidURI, attr)
		}
		if seen[name] {
			return u, fmt.Errorf("%w: path attribute %q given twice", ErrInvalidURI, name)
		}
		seen[name] = true
		v, err := url.PathUnescape(raw)
		if err != nil {
			return u, fmt.Errorf("%w: %s=%q: %v", ErrInvalidURI, name, raw, err)
		}
		switch name {
		case "token":
			u.Token = v
		case "serial":
			u.Serial = v
		case "object":
			u.Object = v
		case "id":
			u.ID = []byte(v)
		case "type":
			if v != "private" && v != "public" && v != "cert" {
				return u, fmt.Errorf("%w: type=%q (want private)", ErrInvalidURI, v)
			}
		default:
			if !ignoredAttrs[name] {
				return u, fmt.Errorf("%w: unknown path attribute %q (known: token, serial, object, id, type)", ErrInvalidURI, name)
			}
		}
	}
	for _, attr := range strings.Split(query, "&") {
		if attr == "" {
			continue
		}
		name, raw, _ := strings.Cut(attr, "=")
		v, err := url.PathUnescape(raw)
		if err != nil {
			return u, fmt.Errorf("%w: %s: %v", ErrInvalidURI, name, err)
		}
		switch name {
		case "module-path":
			u.ModulePath = v
		case "pin-source":
			u.PINSource = strings.TrimPrefix(v, "file:")
		case "pin-value":
			return u, fmt.Errorf("%w: pin-value puts the PIN on the command line; use pin-source=file:/path, or the environment", ErrInvalidURI)
		default:
			if !ignoredAttrs[name] {
				return u, fmt.Errorf("%w: unknown query attribute %q (known: module-path, pin-source)", ErrInvalidURI, name)
			}
		}
	}
	if u.Token != "" && u.Serial != "" {
		return u, fmt.Errorf("%w: give the token by label (token=) or by serial (serial=), not both", ErrInvalidURI)
	}
	return u, nil
}

// redact hides a pin-value in a URI quoted in an error.
func redact(s string) string {
	if i := strings.Index(s, "pin-value="); i >= 0 {
		end := strings.IndexAny(s[i:], "&;")
		if end < 0 {
			return s[:i] + "pin-value=REDACTED"
		}
		return s[:i] + "pin-value=REDACTED" + s[i+end:]
	}
	return s
}

// String formats the URI as RFC 7512 does, percent-encoding every value
// byte outside the unreserved set (so a GUN's "/" in a label is %2F).
func (u URI) String() string {
	var path []string
	add := func(name, v string) {
		if v != "" {
			path = append(path, name+"="+escape(v, false))
		}
	}
	add("token", u.Token)
	add("serial", u.Serial)
	add("object", u.Object)
	add("id", string(u.ID))
	var query []string
	if u.ModulePath != "" {
		query = append(query, "module-path="+escape(u.ModulePath, true))
	}
	if u.PINSource != "" {
		query = append(query, "pin-source="+escape("file:"+u.PINSource, true))
	}
	s := "pkcs11:" + strings.Join(path, ";")
	if len(query) > 0 {
		s += "?" + strings.Join(query, "&")
	}
	return s
}

// escape percent-encodes v for a path attribute, or (query) for a query
// attribute, where "/" and ":" may stay as they are.
func escape(v string, query bool) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '.', c == '_', c == '~':
			b.WriteByte(c)
		case query && (c == '/' || c == ':'):
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// TokenName describes the token for messages: its label or its serial.
func (u URI) TokenName() string {
	switch {
	case u.Token != "":
		return fmt.Sprintf("token %q", u.Token)
	case u.Serial != "":
		return fmt.Sprintf("token with serial %q", u.Serial)
	}
	return "the token"
}
