package cli

// `signet verify IMAGE:TAG|IMAGE@DIGEST` for deploy pipelines, and notary's
// `verify GUN TARGET` (two arguments) on the same command name.

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/signet-trust/signet/internal/client"
	"github.com/signet-trust/signet/internal/policy"
	"github.com/signet-trust/signet/internal/printable"
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

func (d *dockerTrust) verify(ctx context.Context, arg string, o verifyOptions) error {
	if o.cosignKey != "" && len(o.signers) == 0 && o.threshold == 0 {
		return d.verifyCosign(ctx, arg, o.cosignKey)
	}
	ref, err := parseRef(arg)
	if err != nil {
		return err
	}
	p, err := policy.New(o.signers, o.threshold, policy.ReleasesDocker)
	if err != nil {
		return verifyUsage(err)
	}
	r, err := d.openRepo(ref, "pull")
	if err != nil {
		return err
	}
	v, err := r.update(ctx)
	if errors.Is(err, client.ErrNoTrustData) {
		return withCode(ExitNotFound, policy.NoRepository(ref.GUN()))
	}
	if err != nil {
		return err
	}
	dec, err := p.Decide(policy.NewView(v), policy.Query{Tag: ref.Tag, Digest: ref.Digest})
	switch {
	case errors.Is(err, policy.ErrNotSigned):
		return withCode(ExitVerify, err)
	case errors.Is(err, policy.ErrNoTrustData):
		return withCode(ExitNotFound, err)
	case err != nil:
		return err
	}
	for _, w := range dec.Warnings {
		fmt.Fprintf(d.a.env.Stderr, "WARNING: %s\n", printable.Lines(w))
	}
	res := verifyResult{Image: arg, GUN: ref.GUN(), Digest: dec.Digest, Size: dec.Size, Signers: dec.Signers, Threshold: dec.Threshold, Warnings: dec.Warnings}
	if o.cosignKey != "" {
		if err := d.cosignAgrees(ctx, &res, o.cosignKey); err != nil {
			return err
		}
	}
	if ref.Digest != "" {
		res.Tags = dec.Tags
	} else {
		res.Tag = dec.Tag
	}
	if d.a.jsonOutput() {
		return d.a.printJSON(res)
	}
	fmt.Fprintln(d.a.env.Stdout, res.Digest)
	return nil
}

// verifyUsage words a policy the flags cannot make in terms of the flags.
func verifyUsage(err error) error {
	var se *policy.SignerError
	var te *policy.ThresholdError
	switch {
	case errors.As(err, &se):
		return usageError("--require-signer %v", se)
	case errors.As(err, &te) && te.Signers == 0:
		return usageError("--threshold needs --require-signer")
	case errors.As(err, &te):
		return usageError("--%v", te)
	}
	return usageError("%v", err)
}
