package server

import (
	"regexp"
	"strings"
	"testing"
)

func TestParsePath(t *testing.T) {
	tests := []struct {
		path string
		want route
	}{
		{"/v2/", route{kind: routeBase}},
		{"/v2/_trust/changefeed", route{kind: routeChangesAll}},
		{"/v2/example.com/a/_trust/changefeed", route{kind: routeChangesGUN, gun: "example.com/a"}},
		{"/v2/example.com/a/_trust/tuf/", route{kind: routeTUF, gun: "example.com/a"}},
		{"/v2/example.com/a/_trust/tuf", route{}},
		{"/v2/localhost:5000/x/_trust/tuf/root.json", route{kind: routeMetaCurrent, gun: "localhost:5000/x", role: "root"}},
		{"/v2/g/_trust/tuf/targets/releases.json", route{kind: routeMetaCurrent, gun: "g", role: "targets/releases"}},
		{"/v2/g/_trust/tuf/3.root.json", route{kind: routeMetaVersion, gun: "g", role: "root", version: 3}},
		{"/v2/g/_trust/tuf/0.root.json", route{kind: routeMetaVersion, gun: "g", role: "root", version: 0}},
		{"/v2/g/_trust/tuf/2.targets/a/b.json", route{kind: routeMetaVersion, gun: "g", role: "targets/a/b", version: 2}},
		{"/v2/g/_trust/tuf/snapshot.0123456789abcdef0123456789abcdef0123456789abcdef0123456789ABCDEF.json",
			route{kind: routeMetaChecksum, gun: "g", role: "snapshot", checksum: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}},
		{"/v2/g/_trust/tuf/timestamp.key", route{kind: routeKey, gun: "g", role: "timestamp"}},
		{"/v2/g/_trust/tuf/root.key", route{}},
		{"/v2/g/_trust/tuf/nothing.json", route{}},
		{"/v2/a*b/_trust/tuf/root.json", route{}},
		{"/v2//_trust/tuf/root.json", route{}},
		{"/v2/a/_trust/tuf/b/_trust/tuf/root.json", route{kind: routeMetaCurrent, gun: "a/_trust/tuf/b", role: "root"}},
		{"/v1/g/_trust/tuf/root.json", route{}},
	}
	for _, tt := range tests {
		if got := parsePath(tt.path); got != tt.want {
			t.Errorf("parsePath(%q) = %+v, want %+v", tt.path, got, tt.want)
		}
	}
}

func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"/v2/", "/v2/g/_trust/tuf/", "/v2/g/_trust/tuf/1.targets/x.json", "/v2/a/_trust/changefeed", "/v2/g/_trust/tuf/timestamp.key"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		r := parsePath(p)
		if r.kind == routeNone {
			return
		}
		if r.kind != routeBase && r.kind != routeChangesAll && !validGUN(r.gun) {
			t.Fatalf("invalid GUN %q accepted from %q", r.gun, p)
		}
		if r.version < 0 {
			t.Fatalf("negative version from %q", p)
		}
	})
}

// The reference's route patterns, as regular expressions: the oracle the
// hand-written parser is checked against.
var (
	oracleRole     = `(root|targets(?:/[^/\s]+)*|snapshot|timestamp)`
	oracleChecksum = regexp.MustCompile(`^` + oracleRole + `\.([a-fA-F0-9]{64}|[a-fA-F0-9]{96}|[a-fA-F0-9]{128})\.json$`)
	oracleVersion  = regexp.MustCompile(`^([1-9]*[0-9]+)\.` + oracleRole + `\.json$`)
	oracleCurrent  = regexp.MustCompile(`^` + oracleRole + `\.json$`)
)

func oracleFile(file string) (routeKind, string) {
	if m := oracleChecksum.FindStringSubmatch(file); m != nil {
		return routeMetaChecksum, m[1]
	}
	if m := oracleVersion.FindStringSubmatch(file); m != nil {
		return routeMetaVersion, m[2]
	}
	if m := oracleCurrent.FindStringSubmatch(file); m != nil {
		return routeMetaCurrent, m[1]
	}
	return routeNone, ""
}

func FuzzParseFileMatchesRegexps(f *testing.F) {
	for _, s := range []string{"root.json", "1.targets/a.json", "targets/a.b.json", "targets/x." + strings.Repeat("a", 64) + ".json", "01.root.json", "targets//x.json", "targets/ x.json", "12.targets/a.1.json"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, file string) {
		if strings.HasSuffix(file, ".key") || strings.Contains(file, "/_trust/tuf/") {
			return
		}
		want, wantRole := oracleFile(file)
		got := parsePath("/v2/g/_trust/tuf/" + file)
		if file == "" {
			return
		}
		if got.kind != want || (want != routeNone && got.role != wantRole) {
			t.Fatalf("%q: parsed %v %q, the reference's patterns say %v %q", file, got.kind, got.role, want, wantRole)
		}
	})
}
