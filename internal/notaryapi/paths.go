package notaryapi

import (
	"strconv"
	"strings"
)

// PathKind is a route of the Notary v1 API, as the reference's route table
// (§2.1) distinguishes them by path.
type PathKind uint8

// The routes, in the reference's matching order for the file part.
const (
	// PathOther is any other path: the reference's catch-all (route 13).
	PathOther        PathKind = iota
	PathBase                  // /v2/
	PathChangesAll            // /v2/_trust/changefeed
	PathChangesGUN            // /v2/{gun}/_trust/changefeed
	PathTUF                   // /v2/{gun}/_trust/tuf/ (upload, delete)
	PathMetaChecksum          // /v2/{gun}/_trust/tuf/{role}.{checksum}.json
	PathMetaVersion           // /v2/{gun}/_trust/tuf/{version}.{role}.json
	PathMetaCurrent           // /v2/{gun}/_trust/tuf/{role}.json
	PathKey                   // /v2/{gun}/_trust/tuf/{snapshot|timestamp}.key

	// NumPathKinds is the number of kinds, for tables indexed by kind.
	NumPathKinds
)

// patterns are the reference's route patterns, simplified (§2.1).
var patterns = [NumPathKinds]string{
	PathOther:        "/{other...}",
	PathBase:         "/v2/",
	PathChangesAll:   "/v2/_trust/changefeed",
	PathChangesGUN:   "/v2/{gun}/_trust/changefeed",
	PathTUF:          "/v2/{gun}/_trust/tuf/",
	PathMetaChecksum: "/v2/{gun}/_trust/tuf/{role}.{checksum}.json",
	PathMetaVersion:  "/v2/{gun}/_trust/tuf/{version}.{role}.json",
	PathMetaCurrent:  "/v2/{gun}/_trust/tuf/{role}.json",
	PathKey:          "/v2/{gun}/_trust/tuf/{role}.key",
}

// Pattern is the kind's route pattern as the route table writes it
// ("/v2/{gun}/_trust/tuf/{role}.json"). It documents the route;
// ParsePath, not a pattern matcher, decides what matches.
func (k PathKind) Pattern() string {
	if k >= NumPathKinds {
		return ""
	}
	return patterns[k]
}

// KindOfPattern returns the kind whose Pattern is p.
func KindOfPattern(p string) (PathKind, bool) {
	for k, q := range patterns {
		if q == p {
			return PathKind(k), true
		}
	}
	return PathOther, false
}

// HasGUN reports whether paths of the kind name a repository.
func (k PathKind) HasGUN() bool {
	return k >= PathChangesGUN && k < NumPathKinds
}

// Path is a parsed request path.
type Path struct {
	Kind PathKind
	// GUN is the path's repository, for kinds that have one (HasGUN),
	// checked by ParseGUN. When the name matched the reference's route
	// pattern but ParseGUN refused it, GUN is "" and GUNError says why:
	// the route is still Kind, and the server answers INVALID_GUN.
	GUN      GUN
	GUNError *InvalidGUNError
	Role     string
	Version  int    // PathMetaVersion; 0 when the URL's number is no version (answered 404)
	Checksum string // PathMetaChecksum, lowercase hex
}

// MaxVersion is the highest version a URL can name.
const MaxVersion = 1<<31 - 1

const (
	prefix       = "/v2/"
	tufInfix     = "/_trust/tuf/"
	changeSuffix = "/_trust/changefeed"
)

// ParsePath maps a URL path onto a route of the reference server. A GUN
// that is empty or holds '*' does not match the reference's pattern (the
// path is PathOther); any other is checked by ParseGUN (see Path.GUNError).
// Like the reference's greedy pattern, the last "/_trust/tuf/" splits GUN
// from file.
func ParsePath(p string) Path {
	rest, ok := strings.CutPrefix(p, prefix)
	if !ok {
		return Path{}
	}
	if rest == "" {
		return Path{Kind: PathBase}
	}
	if rest == "_trust/changefeed" {
		return Path{Kind: PathChangesAll}
	}
	if gun, ok := strings.CutSuffix(rest, changeSuffix); ok {
		if matchesGUN(gun) {
			return withGUN(Path{Kind: PathChangesGUN}, gun)
		}
		return Path{}
	}
	i := strings.LastIndex(p[len(prefix)-1:], tufInfix) // in "/"+rest, without building it
	if i <= 0 {
		return Path{}
	}
	gun, file := rest[:i-1], rest[i-1+len(tufInfix):]
	if !matchesGUN(gun) {
		return Path{}
	}
	route := parseFile(file)
	if route.Kind == PathOther {
		return Path{}
	}
	return withGUN(route, gun)
}

// withGUN sets the GUN of p, or its GUNError.
func withGUN(p Path, gun string) Path {
	g, err := ParseGUN(gun)
	if err != nil {
		p.GUNError = err.(*InvalidGUNError)
		return p
	}
	p.GUN = g
	return p
}

// parseFile maps the file part of a /_trust/tuf/ path onto its route
// (PathOther for none).
func parseFile(file string) Path {
	if file == "" {
		return Path{Kind: PathTUF}
	}
	if name, ok := strings.CutSuffix(file, ".key"); ok {
		if name == "snapshot" || name == "timestamp" {
			return Path{Kind: PathKey, Role: name}
		}
		return Path{}
	}
	base, ok := strings.CutSuffix(file, ".json")
	if !ok {
		return Path{}
	}
	// The reference's routes, in its order: {role}.{checksum}.json,
	// {version}.{role}.json, {role}.json.
	if i := strings.LastIndexByte(base, '.'); i > 0 {
		if sum := base[i+1:]; isChecksum(sum) && metaRole(base[:i]) {
			return Path{Kind: PathMetaChecksum, Role: base[:i], Checksum: strings.ToLower(sum)}
		}
	}
	if i := strings.IndexByte(base, '.'); i > 0 && isDigits(base[:i]) && metaRole(base[i+1:]) {
		v, err := strconv.Atoi(base[:i])
		if err != nil || v > MaxVersion {
			v = 0 // no such version; answered 404
		}
		return Path{Kind: PathMetaVersion, Role: base[i+1:], Version: v}
	}
	if metaRole(base) {
		return Path{Kind: PathMetaCurrent, Role: base}
	}
	return Path{}
}

// metaRole matches role names as the reference's routes do (looser than a
// valid role; a miss is then a 404 from storage, as there):
// root|targets(/[^/\s]+)*|snapshot|timestamp.
func metaRole(s string) bool {
	switch s {
	case "root", "targets", "snapshot", "timestamp":
		return true
	}
	rest, ok := strings.CutPrefix(s, "targets/")
	if !ok {
		return false
	}
	for _, seg := range strings.Split(rest, "/") {
		if seg == "" || strings.ContainsFunc(seg, isRegexpSpace) {
			return false
		}
	}
	return true
}

// isRegexpSpace is \s of Go's regexp (RE2): ASCII space, \t, \n, \f, \r.
func isRegexpSpace(r rune) bool {
	return r == ' ' || r == '\t' || r == '\n' || r == '\f' || r == '\r'
}

func isChecksum(s string) bool {
	if n := len(s); n != 64 && n != 96 && n != 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// matchesGUN reports whether gun matches the reference's route pattern
// {gun:[^*]+}: not empty, and no '*'.
func matchesGUN(gun string) bool {
	return gun != "" && !strings.Contains(gun, "*")
}

// The paths a client asks for. gun and role are put in as they are (the
// reference's clients do not escape them either); Remote-style callers
// add them to the server's base URL.

// TUFPath is /v2/{gun}/_trust/tuf/, where updates are POSTed and a
// repository is DELETEd.
func TUFPath(gun string) string { return prefix + gun + tufInfix }

// AuditIndexHeader is signet-server's header on timestamp.json responses
// naming the index, in its audit log, of the entry that recorded that
// timestamp (docs/notary-compat.md). The reference server sends none.
const AuditIndexHeader = "Signet-Audit-Index"

// CurrentPath is the path of the current version of a role.
func CurrentPath(gun, role string) string { return TUFPath(gun) + role + ".json" }

// VersionPath is the path of one version of a role.
func VersionPath(gun, role string, version int) string {
	return TUFPath(gun) + strconv.Itoa(version) + "." + role + ".json"
}

// ChecksumPath is the path of a role by the SHA-256 (or SHA-512) of its
// bytes, in lowercase hex.
func ChecksumPath(gun, role string, sum []byte) string {
	const hexDigits = "0123456789abcdef"
	b := make([]byte, 0, 2*len(sum))
	for _, c := range sum {
		b = append(b, hexDigits[c>>4], hexDigits[c&0xf])
	}
	return TUFPath(gun) + role + "." + string(b) + ".json"
}

// KeyPath is the path of the server's key of a role (snapshot or
// timestamp): GET returns it, POST rotates it.
func KeyPath(gun, role string) string { return TUFPath(gun) + role + ".key" }

// ChangefeedPath is the changefeed of gun, or of every repository when
// gun is "".
func ChangefeedPath(gun string) string {
	if gun == "" {
		return prefix + "_trust/changefeed"
	}
	return prefix + gun + changeSuffix
}
