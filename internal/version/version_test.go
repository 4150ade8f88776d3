package version

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/signet-trust/signet", Version: "(devel)"},
		Settings: []debug.BuildSetting{
			{Key: "GOOS", Value: "linux"}, {Key: "GOARCH", Value: "arm64"},
			{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
			{Key: "vcs.time", Value: "2026-01-02T03:04:05Z"},
			{Key: "vcs.modified", Value: "true"},
		}}
	in := fromBuildInfo(bi, true)
	if in.Revision != "0123456789abcdef0123456789abcdef01234567" || !in.Dirty || in.Platform != "linux/arm64" || in.Version != "(devel)" {
		t.Fatalf("%+v", in)
	}
	want := "signet (devel) commit 0123456789ab (modified) 2026-01-02T03:04:05Z go1.26.8 linux/arm64"
	if got := in.String("signet"); got != want {
		t.Errorf("String:\n got %s\nwant %s", got, want)
	}
	bi.Settings[4].Value = "false"
	if got := fromBuildInfo(bi, true).String("signet"); strings.Contains(got, "modified") {
		t.Errorf("clean build says modified: %s", got)
	}
}

func TestNoBuildInfo(t *testing.T) {
	got := fromBuildInfo(nil, false).String("signet-server")
	if !strings.HasPrefix(got, "signet-server unknown commit unknown go") {
		t.Errorf("without build information: %q", got)
	}
	bi := &debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}}
	if got := fromBuildInfo(bi, true).String("x"); !strings.HasPrefix(got, "x v1.2.3 commit unknown ") {
		t.Errorf("tagged module without VCS: %q", got)
	}
}
