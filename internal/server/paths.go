package server

import (
	"strconv"
	"strings"
)

// Route kinds of the Notary v1 API, after the /v2/ prefix.
type routeKind int

const (
	routeNone         routeKind = iota
	routeBase                   // /v2/
	routeChangesAll             // /v2/_trust/changefeed
	routeChangesGUN             // /v2/{gun}/_trust/changefeed
	routeTUF                    // /v2/{gun}/_trust/tuf/ (POST, DELETE)
	routeMetaChecksum           // /v2/{gun}/_trust/tuf/{role}.{checksum}.json
	routeMetaVersion            // /v2/{gun}/_trust/tuf/{version}.{role}.json
	routeMetaCurrent            // /v2/{gun}/_trust/tuf/{role}.json
	routeKey                    // /v2/{gun}/_trust/tuf/{snapshot|timestamp}.key
)

// route is a parsed request path.
type route struct {
	kind     routeKind
	gun      string
	role     string
	version  int
	checksum string
}

// maxVersionOK is the highest version a URL can name.
const maxVersionOK = 1<<31 - 1

const (
	tufInfix     = "/_trust/tuf/"
	changeSuffix = "/_trust/changefeed"
)

// parsePath maps a URL path onto a route of the reference server. GUNs may
// hold anything but '*' and must not be empty; like the reference's greedy
// pattern, the last "/_trust/tuf/" splits GUN from file.
func parsePath(p string) route {
	rest, ok := strings.CutPrefix(p, "/v2/")
	if !ok {
		return route{}
	}
	if rest == "" {
		return route{kind: routeBase}
	}
	if rest == "_trust/changefeed" {
		return route{kind: routeChangesAll}
	}
	if gun, ok := strings.CutSuffix(rest, changeSuffix); ok {
		if validGUN(gun) {
			return route{kind: routeChangesGUN, gun: gun}
		}
		return route{}
	}
	i := strings.LastIndex("/"+rest, tufInfix)
	if i <= 0 {
		return route{}
	}
	gun, file := rest[:i-1], rest[i-1+len(tufInfix):]
	if !validGUN(gun) {
		return route{}
	}
	if file == "" {
		return route{kind: routeTUF, gun: gun}
	}
	if name, ok := strings.CutSuffix(file, ".key"); ok {
		if name == "snapshot" || name == "timestamp" {
			return route{kind: routeKey, gun: gun, role: name}
		}
		return route{}
	}
	base, ok := strings.CutSuffix(file, ".json")
	if !ok {
		return route{}
	}
	// The reference's routes, in its order: {role}.{checksum}.json,
	// {version}.{role}.json, {role}.json.
	if i := strings.LastIndexByte(base, '.'); i > 0 {
		if sum := base[i+1:]; isChecksum(sum) && metaRole(base[:i]) {
			return route{kind: routeMetaChecksum, gun: gun, role: base[:i], checksum: strings.ToLower(sum)}
		}
	}
	if i := strings.IndexByte(base, '.'); i > 0 && isDigits(base[:i]) && metaRole(base[i+1:]) {
		v, err := strconv.Atoi(base[:i])
		if err != nil || v > maxVersionOK {
			v = 0 // no such version; answered 404
		}
		return route{kind: routeMetaVersion, gun: gun, role: base[i+1:], version: v}
	}
	if metaRole(base) {
		return route{kind: routeMetaCurrent, gun: gun, role: base}
	}
	return route{}
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

func validGUN(gun string) bool {
	return gun != "" && !strings.Contains(gun, "*")
}
