package notaryapi

import (
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"testing"
)

func TestParsePath(t *testing.T) {
	tests := []struct {
		path string
		want Path
	}{
		{"/v2/", Path{Kind: PathBase}},
		{"/v2/_trust/changefeed", Path{Kind: PathChangesAll}},
		{"/v2/example.com/a/_trust/changefeed", Path{Kind: PathChangesGUN, GUN: "example.com/a"}},
		{"/v2/example.com/a/_trust/tuf/", Path{Kind: PathTUF, GUN: "example.com/a"}},
		{"/v2/example.com/a/_trust/tuf", Path{}},
		{"/v2/localhost:5000/x/_trust/tuf/root.json", Path{Kind: PathMetaCurrent, GUN: "localhost:5000/x", Role: "root"}},
		{"/v2/g/_trust/tuf/targets/releases.json", Path{Kind: PathMetaCurrent, GUN: "g", Role: "targets/releases"}},
		{"/v2/g/_trust/tuf/3.root.json", Path{Kind: PathMetaVersion, GUN: "g", Role: "root", Version: 3}},
		{"/v2/g/_trust/tuf/0.root.json", Path{Kind: PathMetaVersion, GUN: "g", Role: "root", Version: 0}},
		{"/v2/g/_trust/tuf/2.targets/a/b.json", Path{Kind: PathMetaVersion, GUN: "g", Role: "targets/a/b", Version: 2}},
		{"/v2/g/_trust/tuf/snapshot.0123456789abcdef0123456789abcdef0123456789abcdef0123456789ABCDEF.json",
			Path{Kind: PathMetaChecksum, GUN: "g", Role: "snapshot", Checksum: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}},
		{"/v2/g/_trust/tuf/timestamp.key", Path{Kind: PathKey, GUN: "g", Role: "timestamp"}},
		{"/v2/g/_trust/tuf/root.key", Path{}},
		{"/v2/g/_trust/tuf/nothing.json", Path{}},
		{"/v2/a*b/_trust/tuf/root.json", Path{}},
		{"/v2//_trust/tuf/root.json", Path{}},
		{"/v2/a/_trust/tuf/b/_trust/tuf/root.json", Path{Kind: PathMetaCurrent, GUN: "a/_trust/tuf/b", Role: "root"}},
		{"/v1/g/_trust/tuf/root.json", Path{}},
	}
	for _, tt := range tests {
		if got := ParsePath(tt.path); got != tt.want {
			t.Errorf("ParsePath(%q) = %+v, want %+v", tt.path, got, tt.want)
		}
	}
}

func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"/v2/", "/v2/g/_trust/tuf/", "/v2/g/_trust/tuf/1.targets/x.json", "/v2/a/_trust/changefeed", "/v2/g/_trust/tuf/timestamp.key"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		r := ParsePath(p)
		if r.Kind == PathOther {
			return
		}
		if r.Kind != PathBase && r.Kind != PathChangesAll && !ValidGUN(r.GUN) {
			t.Fatalf("invalid GUN %q accepted from %q", r.GUN, p)
		}
		if r.Version < 0 {
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

func oracleFile(file string) (PathKind, string) {
	if m := oracleChecksum.FindStringSubmatch(file); m != nil {
		return PathMetaChecksum, m[1]
	}
	if m := oracleVersion.FindStringSubmatch(file); m != nil {
		return PathMetaVersion, m[2]
	}
	if m := oracleCurrent.FindStringSubmatch(file); m != nil {
		return PathMetaCurrent, m[1]
	}
	return PathOther, ""
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
		got := ParsePath("/v2/g/_trust/tuf/" + file)
		if file == "" {
			return
		}
		if got.Kind != want || (want != PathOther && got.Role != wantRole) {
			t.Fatalf("%q: parsed %v %q, the reference's patterns say %v %q", file, got.Kind, got.Role, want, wantRole)
		}
	})
}

// TestBuildersParseBack checks that every path a client builds is routed by
// the server's parser to the route and values it names, for GUNs and roles
// of every shape the API carries.
func TestBuildersParseBack(t *testing.T) {
	sum := make([]byte, 32)
	for i := range sum {
		sum[i] = byte(i * 37)
	}
	long := make([]byte, 64)
	for _, gun := range []string{"g", "example.com/a", "localhost:5000/x/y", "a/_trust/tuf/b", "docker.io/library/alpine"} {
		for _, role := range []string{"root", "targets", "snapshot", "timestamp", "targets/releases", "targets/a/b"} {
			tests := []struct {
				path string
				want Path
			}{
				{CurrentPath(gun, role), Path{Kind: PathMetaCurrent, GUN: gun, Role: role}},
				{VersionPath(gun, role, 7), Path{Kind: PathMetaVersion, GUN: gun, Role: role, Version: 7}},
				{VersionPath(gun, role, MaxVersion), Path{Kind: PathMetaVersion, GUN: gun, Role: role, Version: MaxVersion}},
				{ChecksumPath(gun, role, sum), Path{Kind: PathMetaChecksum, GUN: gun, Role: role, Checksum: hex.EncodeToString(sum)}},
				{ChecksumPath(gun, role, long), Path{Kind: PathMetaChecksum, GUN: gun, Role: role, Checksum: hex.EncodeToString(long)}},
				{TUFPath(gun), Path{Kind: PathTUF, GUN: gun}},
				{ChangefeedPath(gun), Path{Kind: PathChangesGUN, GUN: gun}},
			}
			if role == "snapshot" || role == "timestamp" {
				tests = append(tests, struct {
					path string
					want Path
				}{KeyPath(gun, role), Path{Kind: PathKey, GUN: gun, Role: role}})
			}
			for _, tt := range tests {
				if got := ParsePath(tt.path); got != tt.want {
					t.Errorf("ParsePath(%q) = %+v, want %+v", tt.path, got, tt.want)
				}
			}
		}
	}
	if got := ParsePath(ChangefeedPath("")); got != (Path{Kind: PathChangesAll}) {
		t.Errorf("ChangefeedPath(\"\") parses as %+v", got)
	}
	if got, want := ChecksumPath("g", "root", sum), "/v2/g/_trust/tuf/root."+fmt.Sprintf("%x", sum)+".json"; got != want {
		t.Errorf("ChecksumPath = %q, want %q", got, want)
	}
}

func TestPatterns(t *testing.T) {
	seen := map[string]bool{}
	for k := range NumPathKinds {
		p := k.Pattern()
		if p == "" || seen[p] {
			t.Errorf("kind %d: pattern %q empty or repeated", k, p)
		}
		seen[p] = true
		if got, ok := KindOfPattern(p); !ok || got != k {
			t.Errorf("KindOfPattern(%q) = %d %v, want %d", p, got, ok, k)
		}
		if k.HasGUN() != strings.Contains(p, "{gun}") {
			t.Errorf("kind %d (%s): HasGUN %v", k, p, k.HasGUN())
		}
	}
	if _, ok := KindOfPattern("/v2/{gun}"); ok {
		t.Error("an unknown pattern has a kind")
	}
}
