package cli

// `signet verify IMAGE:TAG|IMAGE@DIGEST` for deploy pipelines, and notary's
// `verify GUN TARGET` (two arguments) on the same command name.

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/signet-trust/signet/internal/client"
	"github.com/signet-trust/signet/internal/tuf"
	"github.com/signet-trust/signet/internal/tuf/trust"
)

type verifyOptions struct {
	signers   []string
	threshold int
	cosignKey string // --cosign-key (cosign.go)
	// notary verify GUN TARGET's flags.
	input, outputFile string
	quiet             bool
}

// verifyResult is the JSON of --output json.
type verifyResult struct {
	Image     string   `json:"image"`
	GUN       string   `json:"gun"`
	Tag       string   `json:"tag,omitempty"`
	Tags      []string `json:"tags,omitempty"`
	Digest    string   `json:"digest"`
	Size      int64    `json:"size"`
	Signers   []string `json:"signers"`
	Threshold int      `json:"threshold,omitempty"`
	Warnings  []string `json:"warnings,omitempty"`
}

func (d *dockerTrust) verifyCommand() *cobra.Command {
	var o verifyOptions
	c := &cobra.Command{
		Use:   "verify IMAGE:TAG|IMAGE@DIGEST  (or: verify GUN TARGET, as notary)",
		Short: "Check that an image tag or digest is signed, and print the signed digest",
		Long: `With one argument, check an image's signature as a deploy gate and print the signed digest.

Without --require-signer the tag is resolved as docker does: targets/releases, then targets.
With --require-signer NAME[,NAME…] it is resolved only from the named signers' own roles
(targets/NAME) — never from targets/releases, which every signer can rewrite — and at least
--threshold of them (default: all) must sign the same digest. A warning goes to standard error
when targets/releases points the tag elsewhere. IMAGE@DIGEST succeeds when some tag resolved
by the same rules has that digest.

Exit codes: 0 verified; 1 error; 2 bad command line; 3 not signed as required; 4 no trust data
for the repository or the tag.

The trust server, CA and trust directory come from the flags (-s, --tlscacert, -d), else from
DOCKER_CONTENT_TRUST_SERVER and $DOCKER_CONFIG as for signet trust.

With two arguments (GUN TARGET) this is notary's verify: data from standard input (or -i) is
checked against the target and passed on.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 2 {
				return d.notaryVerify(cmd, args, o)
			}
			return d.verify(cmd.Context(), args[0], o)
		},
	}
	d.addInsecureFlag(c)
	c.Flags().StringSliceVar(&o.signers, "require-signer", nil, "signers (targets/NAME) that must sign the tag; comma-separated or repeated")
	c.Flags().IntVar(&o.threshold, "threshold", 0, "how many of the required signers must sign the same digest (default all)")
	c.Flags().StringVar(&o.cosignKey, "cosign-key", "", "cosign public key `file`: alone, the image's cosign signatures decide; with --require-signer, they must sign the signers' digest too")
	c.Flags().StringVarP(&o.input, "input", "i", "", "notary form: file to verify (default standard input)")
	c.Flags().StringVar(&o.outputFile, "output-file", "", "notary form: file to write verified data to (default standard output)")
	c.Flags().BoolVarP(&o.quiet, "quiet", "q", false, "notary form: print nothing on success")
	return c
}

// notaryVerify runs notary's verify GUN TARGET with this command's flags.
func (d *dockerTrust) notaryVerify(cmd *cobra.Command, args []string, o verifyOptions) error {
	if o.cosignKey != "" {
		return usageError("--cosign-key checks an image (IMAGE:TAG or IMAGE@DIGEST), not notary's GUN TARGET form")
	}
	nc := d.a.verifyTargetCmd()
	nc.SetContext(cmd.Context())
	for name, v := range map[string]string{"input": o.input, "output-file": o.outputFile} {
		if v != "" {
			if err := nc.Flags().Set(name, v); err != nil {
				return err
			}
		}
	}
	if o.quiet {
		if err := nc.Flags().Set("quiet", "true"); err != nil {
			return err
		}
	}
	return nc.RunE(nc, args)
}

// signedTarget is a tag as one role signs it.
type signedTarget struct {
	role string
	t    client.Target
}

func digestOf(t client.Target) string { return "sha256:" + hex.EncodeToString(t.Meta.Hashes["sha256"]) }

func (d *dockerTrust) verify(ctx context.Context, arg string, o verifyOptions) error {
	if o.cosignKey != "" && len(o.signers) == 0 && o.threshold == 0 {
		return d.verifyCosign(ctx, arg, o.cosignKey)
	}
	ref, err := parseRef(arg)
	if err != nil {
		return err
	}
	if ref.Tag == "" && ref.Digest == "" {
		ref.Tag = "latest"
	}
	var required []string
	seen := map[string]bool{}
	for _, s := range o.signers {
		s = strings.TrimPrefix(strings.TrimSpace(s), "targets/")
		if s == "" || seen[s] {
			continue
		}
		if s == "releases" || !validSignerName.MatchString(s) {
			return usageError("--require-signer %q is not a signer name (targets/releases is never a required signer)", s)
		}
		seen[s] = true
		required = append(required, s)
	}
	threshold := o.threshold
	switch {
	case len(required) == 0 && threshold != 0:
		return usageError("--threshold needs --require-signer")
	case threshold == 0:
		threshold = len(required)
	case threshold < 0 || threshold > len(required):
		return usageError("--threshold %d must be between 1 and the %d required signer(s)", threshold, len(required))
	}
	r, err := d.openRepo(ref, "pull")
	if err != nil {
		return err
	}
	v, err := r.update(ctx)
	if errors.Is(err, client.ErrNoTrustData) {
		return withCode(ExitNotFound, fmt.Errorf("no trust data for %s", ref.GUN()))
	}
	if err != nil {
		return err
	}
	res := verifyResult{Image: arg, GUN: ref.GUN(), Signers: []string{}}
	if len(required) > 0 {
		res.Threshold = threshold
	}
	var tags []string
	if ref.Tag != "" && ref.Digest == "" {
		tags = []string{ref.Tag}
	} else {
		tags = allTagNames(v)
	}
	var matched []string
	var lastErr error
	for _, tag := range tags {
		t, signers, warn, err := resolveTag(v, tag, required, threshold)
		if err != nil {
			lastErr = err
			continue
		}
		if ref.Digest != "" && digestOf(t) != ref.Digest {
			continue
		}
		if ref.Tag != "" && ref.Digest != "" && tag != ref.Tag {
			continue
		}
		if warn != "" {
			fmt.Fprintf(d.a.env.Stderr, "WARNING: %s\n", warn)
			res.Warnings = append(res.Warnings, warn)
		}
		res.Digest, res.Size = digestOf(t), t.Meta.Length
		for _, s := range signers {
			if !contains(res.Signers, s) {
				res.Signers = append(res.Signers, s)
			}
		}
		matched = append(matched, tag)
	}
	if len(matched) == 0 {
		if ref.Digest == "" {
			return lastErr
		}
		how := "by targets/releases or targets"
		if len(required) > 0 {
			how = fmt.Sprintf("by %d of %s", threshold, strings.Join(prefixed(required), ", "))
		}
		return withCode(ExitVerify, fmt.Errorf("no tag of %s signed %s has the digest %s", ref.GUN(), how, ref.Digest))
	}
	sort.Strings(res.Signers)
	if o.cosignKey != "" {
		if err := d.cosignAgrees(ctx, &res, o.cosignKey); err != nil {
			return err
		}
	}
	if ref.Digest != "" {
		res.Tags = matched
	} else {
		res.Tag = matched[0]
	}
	if d.a.jsonOutput() {
		return d.a.printJSON(res)
	}
	fmt.Fprintln(d.a.env.Stdout, res.Digest)
	return nil
}

func prefixed(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = "targets/" + n
	}
	return out
}

// allTagNames lists every target name any loaded role lists.
func allTagNames(v *trust.Repo) []string {
	set := map[string]bool{}
	for _, role := range v.TargetsRoles() {
		for name := range v.Targets(role).Signed.Targets {
			set[name] = true
		}
	}
	out := make([]string, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// resolveTag resolves one tag. Without required signers: targets/releases,
// then targets (docker). With them: each targets/NAME on its own; the one
// digest at least threshold of them sign. warn is set when
// targets/releases disagrees with the required signers.
func resolveTag(v *trust.Repo, tag string, required []string, threshold int) (client.Target, []string, string, error) {
	if len(required) == 0 {
		t, ok := releasedTarget(v, tag)
		if !ok {
			return client.Target{}, nil, "", withCode(ExitNotFound, fmt.Errorf("no trust data for %s:%s (neither targets/releases nor targets signs it)", v.GUN(), tag))
		}
		var signers []string
		if t.Role == releasesRole {
			signers = []string{releasesRole}
		} else {
			signers = []string{tuf.RoleTargets}
		}
		return t, signers, "", nil
	}
	byDigest := map[string][]signedTarget{}
	var missing []string
	for _, name := range required {
		role := "targets/" + name
		t, ok := client.RoleTarget(v, role, tag)
		if !ok {
			missing = append(missing, role)
			continue
		}
		byDigest[digestOf(t)] = append(byDigest[digestOf(t)], signedTarget{role, t})
	}
	var winners []string
	for dg, sts := range byDigest {
		if len(sts) >= threshold {
			winners = append(winners, dg)
		}
	}
	if len(winners) != 1 {
		if len(byDigest) == 0 && !anyRoleLists(v, tag) {
			return client.Target{}, nil, "", withCode(ExitNotFound, fmt.Errorf("no trust data for %s:%s", v.GUN(), tag))
		}
		var parts []string
		for dg, sts := range byDigest {
			var rs []string
			for _, st := range sts {
				rs = append(rs, st.role)
			}
			sort.Strings(rs)
			parts = append(parts, fmt.Sprintf("%s signs %s", strings.Join(rs, ", "), dg))
		}
		sort.Strings(parts)
		if len(missing) > 0 {
			parts = append(parts, strings.Join(missing, ", ")+" do(es) not sign it")
		}
		what := "no digest is"
		if len(winners) > 1 {
			what = "more than one digest is"
		}
		return client.Target{}, nil, "", withCode(ExitVerify, fmt.Errorf("%s:%s is not signed as required: %s signed by %d of %s (%s)",
			v.GUN(), tag, what, threshold, strings.Join(prefixed(required), ", "), strings.Join(parts, "; ")))
	}
	sts := byDigest[winners[0]]
	var signers []string
	for _, st := range sts {
		signers = append(signers, st.role)
	}
	sort.Strings(signers)
	warn := ""
	if rt, ok := client.RoleTarget(v, releasesRole, tag); ok && digestOf(rt) != winners[0] {
		warn = fmt.Sprintf("%s points %s:%s to %s, but the required signers sign %s; the signers' digest is used", releasesRole, v.GUN(), tag, digestOf(rt), winners[0])
	}
	return sts[0].t, signers, warn, nil
}

// anyRoleLists reports whether any loaded role lists the tag.
func anyRoleLists(v *trust.Repo, tag string) bool {
	for _, role := range v.TargetsRoles() {
		if _, ok := v.Targets(role).Signed.Targets[tag]; ok {
			return true
		}
	}
	return false
}
