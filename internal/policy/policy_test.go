package policy_test

import (
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/policy"
	"github.com/signet-trust/signet/internal/tuf"
	"github.com/signet-trust/signet/internal/tuf/trust"
	"github.com/signet-trust/signet/internal/tuf/tuftest"
)

const gun = "example.com/policy/app"

var now = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func digest(content string) string {
	return "sha256:" + hex.EncodeToString(tuf.NewFileMeta([]byte(content)).Hashes["sha256"])
}

// verified loads every file of r through the state machine, delegations
// in the order the snapshot reaches them, as the client Reader does.
func verified(t testing.TB, r *tuftest.Repo) *trust.Repo {
	t.Helper()
	v := trust.New(r.GUN, now, trust.Options{})
	for _, step := range []func() error{
		func() error { return v.LoadRoot(r.Signed[tuf.RoleRoot]) },
		func() error { return v.LoadTimestamp(r.Signed[tuf.RoleTimestamp]) },
		func() error { return v.LoadSnapshot(r.Signed[tuf.RoleSnapshot]) },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	queue := []string{tuf.RoleTargets}
	for len(queue) > 0 {
		role := queue[0]
		queue = queue[1:]
		b := r.Signed[role]
		if b == nil {
			continue
		}
		if err := v.LoadTargets(role, b); err != nil {
			t.Fatal(err)
		}
		for _, d := range v.Targets(role).Signed.Delegations.Roles {
			queue = append(queue, d.Name)
		}
	}
	return v
}

// fixture is one repository with every situation the rules tell apart:
//
//	targets          v1=admin, v3=admin3, latest=latest, v4x=admin4
//	targets/releases v1=X, v2=Y, v3=Z, v4=W (keys of alice and bob)
//	targets/alice    v1=X, v2=X, v3=X, v8=X
//	targets/bob      v1=X, v2=Y, v7=Y, v8=X
//	targets/carol    delegated, never published
//	targets/dave     paths "other/": lists v6 (outside) and other/v5
func fixture(t *testing.T) *policy.View {
	r := tuftest.NewRepo(t, gun, now)
	alice, bob := tuftest.NewKey(t), tuftest.NewKey(t)
	r.Delegate(policy.ReleasesRole, []string{""}, alice, bob)
	r.Delegate("targets/alice", []string{""}, alice)
	r.Delegate("targets/bob", []string{""}, bob)
	r.Delegate("targets/carol", []string{""})
	delete(r.Targets, "targets/carol")
	r.Delegate("targets/dave", []string{"other/"})
	for _, e := range [][3]string{
		{"targets", "v1", "admin"}, {"targets", "v3", "admin3"}, {"targets", "latest", "latest"},
		{policy.ReleasesRole, "v1", "X"}, {policy.ReleasesRole, "v2", "Y"}, {policy.ReleasesRole, "v3", "Z"}, {policy.ReleasesRole, "v4", "W"},
		{"targets/alice", "v1", "X"}, {"targets/alice", "v2", "X"}, {"targets/alice", "v3", "X"}, {"targets/alice", "v8", "X"},
		{"targets/bob", "v1", "X"}, {"targets/bob", "v2", "Y"}, {"targets/bob", "v7", "Y"}, {"targets/bob", "v8", "X"},
		{"targets/dave", "v6", "D"}, {"targets/dave", "other/v5", "D5"},
	} {
		r.AddTarget(e[0], e[1], []byte(e[2]))
	}
	r.SignAll()
	return policy.NewView(verified(t, r))
}

func mustPolicy(t *testing.T, signers []string, threshold int, rel policy.Releases) policy.Policy {
	t.Helper()
	p, err := policy.New(signers, threshold, rel)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDecide covers every rule of a decision: docker's resolution and the
// releases rules, required signers and thresholds, delegated paths,
// digests, and the sentence each failure gives.
func TestDecide(t *testing.T) {
	w := fixture(t)
	type want struct {
		kind     error // nil: success
		msg      string
		digest   string
		tags     []string
		signers  []string
		warnings int
		diverted []string // tags
	}
	docker, ignored, must := policy.ReleasesDocker, policy.ReleasesIgnored, policy.ReleasesMustAgree
	X, Y, Z := digest("X"), digest("Y"), digest("Z")
	tests := []struct {
		name      string
		signers   []string
		threshold int
		rel       policy.Releases
		q         policy.Query
		want      want
	}{
		// Without required signers: docker's resolution.
		{"docker: releases wins over targets", nil, 0, docker, policy.Query{Tag: "v1"}, want{digest: X, signers: []string{policy.ReleasesRole}}},
		{"docker: targets when releases lacks the tag", nil, 0, docker, policy.Query{Tag: "latest"}, want{digest: digest("latest"), signers: []string{"targets"}}},
		{"docker: no tag means latest", nil, 0, docker, policy.Query{}, want{digest: digest("latest"), signers: []string{"targets"}}},
		{"docker: a signer's own role is not read", nil, 0, docker, policy.Query{Tag: "v7"}, want{kind: policy.ErrNoTrustData,
			msg: "no trust data for " + gun + ":v7 (neither targets/releases nor targets signs it)"}},
		{"releases ignored: targets only", nil, 0, ignored, policy.Query{Tag: "v1"}, want{digest: digest("admin"), signers: []string{"targets"}}},
		{"releases ignored: a releases-only tag has no trust data", nil, 0, ignored, policy.Query{Tag: "v2"}, want{kind: policy.ErrNoTrustData,
			msg: "no trust data for " + gun + ":v2 (targets does not sign it)"}},
		{"releases must agree: no signers is docker's rule", nil, 0, must, policy.Query{Tag: "v1"}, want{digest: X, signers: []string{policy.ReleasesRole}}},

		// Required signers and thresholds.
		{"all signers agree", []string{"alice", "bob"}, 0, docker, policy.Query{Tag: "v1"}, want{digest: X, signers: []string{"targets/alice", "targets/bob"}}},
		{"threshold not met", []string{"alice", "bob"}, 2, docker, policy.Query{Tag: "v2"}, want{kind: policy.ErrNotSigned,
			msg: gun + ":v2 is not signed as required: no digest is signed by 2 of targets/alice, targets/bob (targets/alice signs " + X + "; targets/bob signs " + Y + ")"}},
		{"threshold 1 with two digests is ambiguous", []string{"alice", "bob"}, 1, docker, policy.Query{Tag: "v2"}, want{kind: policy.ErrNotSigned,
			msg: gun + ":v2 is not signed as required: more than one digest is signed by 1 of targets/alice, targets/bob (targets/alice signs " + X + "; targets/bob signs " + Y + ")"}},
		{"a signer that does not sign the tag", []string{"alice", "bob"}, 0, docker, policy.Query{Tag: "v3"}, want{kind: policy.ErrNotSigned,
			msg: "(targets/alice signs " + X + "; targets/bob do(es) not sign it)"}},
		{"threshold met without the missing signer", []string{"alice", "bob"}, 1, docker, policy.Query{Tag: "v3"}, want{digest: X, signers: []string{"targets/alice"}, warnings: 1, diverted: []string{"v3"}}},
		{"a tag no role lists", []string{"alice"}, 0, docker, policy.Query{Tag: "nope"}, want{kind: policy.ErrNoTrustData, msg: "no trust data for " + gun + ":nope"}},
		{"a tag only targets/releases lists", []string{"alice"}, 0, docker, policy.Query{Tag: "v4"}, want{kind: policy.ErrNotSigned,
			msg: "no digest is signed by 1 of targets/alice (targets/alice do(es) not sign it)"}},
		{"a signer that never published", []string{"carol"}, 0, docker, policy.Query{Tag: "v1"}, want{kind: policy.ErrNotSigned, msg: "targets/carol do(es) not sign it"}},
		{"a signer's tag outside its delegated paths", []string{"dave"}, 0, docker, policy.Query{Tag: "v6"}, want{kind: policy.ErrNotSigned, msg: "targets/dave do(es) not sign it"}},
		{"a signer's tag inside its delegated paths", []string{"dave"}, 0, docker, policy.Query{Tag: "other/v5"}, want{digest: digest("D5"), signers: []string{"targets/dave"}}},
		{"a signer whose role is not delegated", []string{"zed"}, 0, docker, policy.Query{Tag: "v1"}, want{kind: policy.ErrNotSigned, msg: "targets/zed do(es) not sign it"}},

		// targets/releases against the signers: the DCT hole.
		{"releases points elsewhere: warning", []string{"alice"}, 0, docker, policy.Query{Tag: "v2"}, want{digest: X, signers: []string{"targets/alice"}, warnings: 1, diverted: []string{"v2"}}},
		{"releases points elsewhere: refused when it must agree", []string{"alice"}, 0, must, policy.Query{Tag: "v2"}, want{kind: policy.ErrNotSigned,
			msg: gun + ":v2 is not signed as required: targets/releases points it to " + Y + ", but targets/alice sign " + X}},
		{"releases agrees", []string{"alice", "bob"}, 0, must, policy.Query{Tag: "v1"}, want{digest: X, signers: []string{"targets/alice", "targets/bob"}}},
		{"releases lacks the tag: nothing to disagree", []string{"alice", "bob"}, 0, must, policy.Query{Tag: "v8"}, want{digest: X, signers: []string{"targets/alice", "targets/bob"}}},
		{"releases ignored: not even compared", []string{"alice"}, 0, ignored, policy.Query{Tag: "v2"}, want{digest: X, signers: []string{"targets/alice"}}},

		// Digests.
		{"digest: the tags resolved to it", nil, 0, docker, policy.Query{Digest: Y}, want{digest: Y, tags: []string{"v2"}, signers: []string{policy.ReleasesRole}}},
		{"digest hidden by targets/releases", nil, 0, docker, policy.Query{Digest: digest("admin")}, want{kind: policy.ErrNotSigned,
			msg: "no tag of " + gun + " signed by targets/releases or targets has the digest " + digest("admin")}},
		{"digest by targets alone", nil, 0, ignored, policy.Query{Digest: digest("admin")}, want{digest: digest("admin"), tags: []string{"v1"}, signers: []string{"targets"}}},
		{"digest by targets alone: message", nil, 0, ignored, policy.Query{Digest: Y}, want{kind: policy.ErrNotSigned, msg: "signed by targets has the digest"}},
		{"digest by a signer: every tag, warnings in tag order", []string{"alice"}, 0, docker, policy.Query{Digest: X}, want{digest: X, tags: []string{"v1", "v2", "v3", "v8"},
			signers: []string{"targets/alice"}, warnings: 2, diverted: []string{"v2", "v3"}}},
		{"digest by signers that disagree", []string{"alice", "bob"}, 0, docker, policy.Query{Digest: Y}, want{kind: policy.ErrNotSigned,
			msg: "no tag of " + gun + " signed by 2 of targets/alice, targets/bob has the digest " + Y}},
		{"digest and tag", []string{"alice"}, 0, docker, policy.Query{Tag: "v1", Digest: X}, want{digest: X, tags: []string{"v1"}, signers: []string{"targets/alice"}}},
		{"digest and tag that resolves elsewhere", []string{"alice"}, 0, docker, policy.Query{Tag: "v2", Digest: Y}, want{kind: policy.ErrNotSigned, msg: "has the digest " + Y}},
		{"digest nobody lists", nil, 0, docker, policy.Query{Digest: Z + "0"}, want{kind: policy.ErrNotSigned, msg: "has the digest"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := mustPolicy(t, tc.signers, tc.threshold, tc.rel)
			d, err := p.Decide(w, tc.q)
			if tc.want.kind != nil {
				var pe *policy.Error
				if !errors.Is(err, tc.want.kind) || !errors.As(err, &pe) || !strings.Contains(err.Error(), tc.want.msg) {
					t.Fatalf("error %v, want %v saying %q", err, tc.want.kind, tc.want.msg)
				}
				if pe.GUN != gun {
					t.Errorf("error names GUN %q", pe.GUN)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.Digest != tc.want.digest || !slices.Equal(d.Tags, tc.want.tags) || !slices.Equal(d.Signers, tc.want.signers) || len(d.Warnings) != tc.want.warnings {
				t.Fatalf("decision %+v", d)
			}
			var diverted []string
			for _, dv := range d.Diverted {
				diverted = append(diverted, dv.Tag)
				if dv.SignersDigest != d.Digest || dv.ReleasesDigest == dv.SignersDigest {
					t.Errorf("diversion %+v", dv)
				}
			}
			if !slices.Equal(diverted, tc.want.diverted) {
				t.Errorf("diverted %v, want %v", diverted, tc.want.diverted)
			}
			wantThreshold := 0
			if len(tc.signers) > 0 {
				wantThreshold = max(tc.threshold, 0)
				if wantThreshold == 0 {
					wantThreshold = len(p.Signers)
				}
			}
			if d.Threshold != wantThreshold || d.GUN != gun {
				t.Errorf("threshold %d, GUN %q", d.Threshold, d.GUN)
			}
			if wantTag := tc.q.Tag; tc.q.Digest == "" {
				if wantTag == "" {
					wantTag = policy.DefaultTag
				}
				if d.Tag != wantTag {
					t.Errorf("tag %q, want %q", d.Tag, wantTag)
				}
			}
		})
	}
}

func TestDecideSizeAndWarningText(t *testing.T) {
	w := fixture(t)
	d, err := mustPolicy(t, []string{"alice"}, 0, policy.ReleasesDocker).Decide(w, policy.Query{Tag: "v2"})
	if err != nil {
		t.Fatal(err)
	}
	want := "targets/releases points " + gun + ":v2 to " + digest("Y") + ", but the required signers sign " + digest("X") + "; the signers' digest is used"
	if d.Size != 1 || d.Tag != "v2" || len(d.Warnings) != 1 || d.Warnings[0] != want {
		t.Fatalf("decision %+v", d)
	}
	if err := policy.NoRepository(gun); !errors.Is(err, policy.ErrNoTrustData) || err.Error() != "no trust data for "+gun {
		t.Fatalf("NoRepository: %v", err)
	}
}

// TestViewSharedByDecisions: one view answers many decisions at once (a
// webhook's request), each the same as alone.
func TestViewSharedByDecisions(t *testing.T) {
	w := fixture(t)
	p := mustPolicy(t, []string{"alice", "bob"}, 1, policy.ReleasesDocker)
	alone, err := p.Decide(w, policy.Query{Digest: digest("X")})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q := policy.Query{Digest: digest("X")}
			if i%2 == 1 {
				q = policy.Query{Tag: "v2"}
			}
			d, err := p.Decide(w, q)
			switch {
			case i%2 == 0 && (err != nil || !slices.Equal(d.Tags, alone.Tags)):
				errs <- fmt.Errorf("digest decision %+v %v", d, err)
			case i%2 == 1 && !errors.Is(err, policy.ErrNotSigned):
				errs <- fmt.Errorf("tag decision %+v %v", d, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestNewAndValidate(t *testing.T) {
	for _, tc := range []struct {
		name      string
		signers   []string
		threshold int
		rel       policy.Releases
		want      []policy.Signer
		err       string
	}{
		{"trimmed, prefix optional, repeats and empties dropped", []string{" bob ", "targets/alice", "alice", "", "targets/"}, 0, policy.ReleasesDocker,
			[]policy.Signer{"bob", "alice"}, ""},
		{"none", nil, 0, policy.ReleasesDocker, nil, ""},
		{"releases is never a signer", []string{"alice", "targets/releases"}, 0, policy.ReleasesDocker, nil, `"releases" is not a signer name`},
		{"docker's name rule", []string{"Alice"}, 0, policy.ReleasesDocker, nil, `"Alice" is not a signer name`},
		{"a delegation below a signer is not a signer", []string{"targets/alice/x"}, 0, policy.ReleasesDocker, nil, `"alice/x" is not a signer name`},
		{"threshold without signers", nil, 1, policy.ReleasesDocker, nil, "a threshold needs required signers"},
		{"threshold above the signers", []string{"a", "b"}, 3, policy.ReleasesDocker, nil, "threshold 3 must be between 1 and the 2 required signer(s)"},
		{"negative threshold", []string{"a"}, -1, policy.ReleasesDocker, nil, "threshold -1 must be between 1 and the 1 required signer(s)"},
		{"unknown releases rule", nil, 0, policy.Releases(7), nil, "unknown releases rule"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := policy.New(tc.signers, tc.threshold, tc.rel)
			if tc.err != "" {
				if !errors.Is(err, policy.ErrInvalid) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || !slices.Equal(p.Signers, tc.want) {
				t.Fatalf("policy %+v, %v", p, err)
			}
		})
	}
	var se *policy.SignerError
	if _, err := policy.New([]string{"releases"}, 0, 0); !errors.As(err, &se) || se.Name != "releases" {
		t.Fatalf("signer error %v", err)
	}
	var te *policy.ThresholdError
	if _, err := policy.New(nil, 2, 0); !errors.As(err, &te) || te.Signers != 0 || te.Threshold != 2 {
		t.Fatalf("threshold error %v", err)
	}
	// A policy built by hand is validated by Decide.
	w := fixture(t)
	for _, p := range []policy.Policy{
		{Signers: []policy.Signer{"alice", "alice"}},
		{Signers: []policy.Signer{"targets/alice"}},
		{Signers: []policy.Signer{"releases"}},
		{Threshold: 1},
	} {
		if _, err := p.Decide(w, policy.Query{Tag: "v1"}); !errors.Is(err, policy.ErrInvalid) {
			t.Errorf("policy %+v decided: %v", p, err)
		}
	}
	if got := policy.Signer("alice").Role(); got != "targets/alice" {
		t.Errorf("role %q", got)
	}
}

// BenchmarkDecide: a webhook's decisions over one view of a repository
// with many tags (the view is built once per repository, outside the loop).
func BenchmarkDecide(b *testing.B) {
	r := tuftest.NewRepo(b, gun, now)
	alice := tuftest.NewKey(b)
	r.Delegate(policy.ReleasesRole, []string{""}, alice)
	r.Delegate("targets/alice", []string{""}, alice)
	for i := range 5000 {
		tag, content := fmt.Sprintf("v%d", i), fmt.Sprintf("image %d", i)
		r.AddTarget(policy.ReleasesRole, tag, []byte(content))
		r.AddTarget("targets/alice", tag, []byte(content))
	}
	r.SignAll()
	v := verified(b, r)
	w := policy.NewView(v)
	p, err := policy.New([]string{"alice"}, 0, policy.ReleasesMustAgree)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		q := policy.Query{Tag: fmt.Sprintf("v%d", i%5000)}
		if i%2 == 1 {
			q = policy.Query{Digest: digest(fmt.Sprintf("image %d", i%5000))}
		}
		if _, err := p.Decide(w, q); err != nil {
			b.Fatal(err)
		}
	}
}
