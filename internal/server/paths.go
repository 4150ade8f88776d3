package server

import (
	"regexp"
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

// Role names as the reference routes match them: looser than a valid role
// (a miss is then a 404 from storage, as there).
var (
	metaRole     = `(root|targets(?:/[^/\s]+)*|snapshot|timestamp)`
	reChecksum   = regexp.MustCompile(`^` + metaRole + `\.([a-fA-F0-9]{64}|[a-fA-F0-9]{96}|[a-fA-F0-9]{128})\.json$`)
	reVersion    = regexp.MustCompile(`^([1-9]*[0-9]+)\.` + metaRole + `\.json$`)
	reCurrent    = regexp.MustCompile(`^` + metaRole + `\.json$`)
	reKey        = regexp.MustCompile(`^(snapshot|timestamp)\.key$`)
	maxVersionOK = 1<<31 - 1
)

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
	switch {
	case file == "":
		return route{kind: routeTUF, gun: gun}
	case reKey.MatchString(file):
		return route{kind: routeKey, gun: gun, role: strings.TrimSuffix(file, ".key")}
	}
	if m := reChecksum.FindStringSubmatch(file); m != nil {
		return route{kind: routeMetaChecksum, gun: gun, role: m[1], checksum: strings.ToLower(m[2])}
	}
	if m := reVersion.FindStringSubmatch(file); m != nil {
		v, err := strconv.Atoi(m[1])
		if err != nil || v > maxVersionOK {
			v = 0 // no such version; answered 404
		}
		return route{kind: routeMetaVersion, gun: gun, role: m[2], version: v}
	}
	if m := reCurrent.FindStringSubmatch(file); m != nil {
		return route{kind: routeMetaCurrent, gun: gun, role: m[1]}
	}
	return route{}
}

func validGUN(gun string) bool {
	return gun != "" && !strings.Contains(gun, "*")
}
