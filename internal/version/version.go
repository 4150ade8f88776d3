// Package version says which build of Signet a binary is, from the Go
// build information the linker embeds (runtime/debug.ReadBuildInfo): the
// module version, the VCS revision and time, and whether the work tree had
// uncommitted changes. Nothing is set by hand or by -ldflags, so every
// binary — signet, signet-server, signet-signer and the ones to come —
// reports the same way with one call:
//
//	fmt.Fprintln(stdout, version.String("signet-server"))
//
// Invariants: String never fails; what the build information lacks (a
// build outside a VCS checkout, `go run`, a test binary) is reported as
// unknown rather than guessed.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Info is what is known about this build.
type Info struct {
	// Version is the main module's version: a tag such as v0.3.0, or a
	// pseudo-version, or "(devel)" for a build from a work tree.
	Version string
	// Revision is the VCS commit (full hash); empty when unknown.
	Revision string
	// Time is the commit time (RFC 3339); empty when unknown.
	Time string
	// Dirty reports uncommitted changes in the work tree the binary was
	// built from.
	Dirty bool
	// GoVersion is the toolchain that built the binary.
	GoVersion string
	// Platform is GOOS/GOARCH.
	Platform string
}

// Read returns this binary's build information.
func Read() Info {
	bi, ok := debug.ReadBuildInfo()
	return fromBuildInfo(bi, ok)
}

func fromBuildInfo(bi *debug.BuildInfo, ok bool) Info {
	in := Info{Version: "unknown", GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if !ok || bi == nil {
		return in
	}
	if v := bi.Main.Version; v != "" {
		in.Version = v
	}
	if bi.GoVersion != "" {
		in.GoVersion = bi.GoVersion
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			in.Revision = s.Value
		case "vcs.time":
			in.Time = s.Value
		case "vcs.modified":
			in.Dirty = s.Value == "true"
		case "GOOS":
			in.Platform = s.Value + in.Platform[strings.Index(in.Platform, "/"):]
		case "GOARCH":
			in.Platform = in.Platform[:strings.Index(in.Platform, "/")+1] + s.Value
		}
	}
	return in
}

// String is the one line a binary prints for --version, e.g.
//
//	signet-server (devel) commit 0123456789ab (modified) 2026-01-02T03:04:05Z go1.26.8 linux/amd64
func (in Info) String(program string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", program, in.Version)
	if in.Revision != "" {
		rev := in.Revision
		if len(rev) > 12 {
			rev = rev[:12]
		}
		fmt.Fprintf(&b, " commit %s", rev)
		if in.Dirty {
			b.WriteString(" (modified)")
		}
		if in.Time != "" {
			fmt.Fprintf(&b, " %s", in.Time)
		}
	} else {
		b.WriteString(" commit unknown")
	}
	fmt.Fprintf(&b, " %s %s", in.GoVersion, in.Platform)
	return b.String()
}

// String is Read().String(program).
func String(program string) string { return Read().String(program) }
