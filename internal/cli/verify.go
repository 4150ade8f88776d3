package cli

// `signet verify IMAGE:TAG|IMAGE@DIGEST` for deploy pipelines, and notary's
// `verify GUN TARGET` (two arguments) on the same command name.

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/signet-trust/signet/internal/atomicfile"
	"github.com/signet-trust/signet/internal/client"
	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/policy"
	"github.com/signet-trust/signet/internal/printable"
	"github.com/signet-trust/signet/internal/tuf"
	"github.com/signet-trust/signet/internal/tuf/trust"
)

type verifyOptions struct {
	signers      []string
	threshold    int
	thresholdSet bool
	cosignKey    string // --cosign-key (cosign.go)
	auditKey     string // --audit-key (auditcheck.go)
	// rootKey pins the repository's root (a PEM file); saveRootKey writes
	// the verified root's certificates to a file.
	rootKey, saveRootKey string
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

The first time a machine sees a repository it trusts the root the server sends (trust on
first use), unless the root is pinned: --root-key FILE (the root's certificate or public key,
PEM; write it on a machine you trust with --save-root-key FILE), or trust_pinning in the
notary configuration given with -c FILE. A notice on standard error says when a root was
trusted on first use.

With two arguments (GUN TARGET) this is notary's verify: data from standard input (or -i) is
checked against the target and passed on.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 2 {
				return d.notaryVerify(cmd, args, o)
			}
			o.thresholdSet = cmd.Flags().Changed("threshold")
			return d.verify(cmd.Context(), args[0], o)
		},
	}
	d.addInsecureFlag(c)
	c.Flags().StringSliceVar(&o.signers, "require-signer", nil, "signers (targets/NAME) that must sign the tag; comma-separated or repeated")
	c.Flags().IntVar(&o.threshold, "threshold", 0, "how many of the required signers must sign the same digest, at least 1 (default all)")
	c.Flags().StringVar(&o.auditKey, "audit-key", "", "the trust server's audit log verifier key (or a `file` holding it): the timestamp received must be in the log (default audit_key in the -c configuration file)")
	c.Flags().StringVar(&o.cosignKey, "cosign-key", "", "cosign public key `file`: alone, the image's cosign signatures decide; with --require-signer, they must sign the signers' digest too")
	c.Flags().StringVar(&o.rootKey, "root-key", "", "PEM `file` with the repository's root certificate or public key: the root must be signed by it")
	c.Flags().StringVar(&o.saveRootKey, "save-root-key", "", "after verifying, write the repository's root certificates (PEM) to `file`, for --root-key elsewhere")
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
	if o.thresholdSet && o.threshold < 1 {
		return usageError("--threshold %d: at least 1 of the required signers must sign (leave it out to require all of them)", o.threshold)
	}
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
	if o.rootKey != "" {
		if d.rootKeys, err = readRootKeys(o.rootKey); err != nil {
			return err
		}
	}
	r, err := d.openRepo(ref, "pull")
	if err != nil {
		return err
	}
	firstUse, err := r.trustsOnFirstUse()
	if err != nil {
		return err
	}
	v, err := r.update(ctx)
	if errors.Is(err, client.ErrNoTrustData) {
		return withCode(ExitNotFound, r.settings.explainGuess(policy.NoRepository(ref.GUN())))
	}
	if err != nil {
		return err
	}
	if key := r.settings.auditKey(o.auditKey); key != "" {
		flag := "--audit-key"
		if o.auditKey == "" {
			flag = "audit_key"
		}
		if err := d.a.checkTimestampLogged(ctx, r, key, flag); err != nil {
			return err
		}
	}
	if len(d.rootKeys) > 0 {
		if err := checkRootKeys(v, d.rootKeys, o.rootKey); err != nil {
			return err
		}
	}
	if firstUse {
		fmt.Fprintf(d.a.env.Stderr, "Notice: trusting the root of %s on first use (root key %s): nothing pins it and this machine had not seen it; pin it with --root-key or trust_pinning (docs/verify.md)\n",
			ref.GUN(), strings.Join(rootKeyIDs(v), ", "))
	}
	if o.saveRootKey != "" {
		if err := saveRootCerts(v, o.saveRootKey); err != nil {
			return err
		}
	}
	if err := requireDelegates(v, p); err != nil {
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

// trustsOnFirstUse reports whether the next update trusts the root on
// first use: no root of the repository is cached and nothing pins it.
func (r *repo) trustsOnFirstUse() (bool, error) {
	cached, err := r.cache.Get(tuf.RoleRoot)
	if err != nil || cached != nil {
		return false, err
	}
	return !r.reader.Pinning.Rule(r.remote.GUN()).Pins(), nil
}

// readRootKeys reads --root-key: PEM certificates or public keys.
func readRootKeys(file string) ([]*keys.PublicKey, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, usageError("--root-key: %v", err)
	}
	var out []*keys.PublicKey
	for block, rest := pem.Decode(b); block != nil; block, rest = pem.Decode(rest) {
		k, err := keys.ParsePublicKeyPEM(pem.EncodeToMemory(&pem.Block{Type: block.Type, Bytes: block.Bytes}))
		if err != nil {
			return nil, usageError("--root-key %s: %v", file, err)
		}
		out = append(out, k)
	}
	if len(out) == 0 {
		return nil, usageError("--root-key %s holds no PEM certificate or public key", file)
	}
	return out, nil
}

// rootKeys returns the keys of the verified root's root role.
func rootKeys(v *trust.Repo) []*keys.PublicKey {
	root := v.Root().Signed
	var out []*keys.PublicKey
	if rk := root.Roles[tuf.RoleRoot]; rk != nil {
		for _, id := range rk.KeyIDs {
			if k := root.Keys[id]; k != nil {
				out = append(out, k)
			}
		}
	}
	return out
}

// rootKeyIDs are the root keys' IDs as notary and docker name them (the
// canonical ID of the key in the certificate), sorted.
func rootKeyIDs(v *trust.Repo) []string {
	var ids []string
	for _, k := range rootKeys(v) {
		ids = append(ids, k.CanonicalID())
	}
	sort.Strings(ids)
	return ids
}

// checkRootKeys fails unless one of the root role's keys is one of want,
// naming the keys on both sides.
func checkRootKeys(v *trust.Repo, want []*keys.PublicKey, file string) error {
	var wantIDs []string
	for _, w := range want {
		for _, k := range rootKeys(v) {
			if k.CanonicalID() == w.CanonicalID() {
				return nil
			}
		}
		wantIDs = append(wantIDs, w.CanonicalID())
	}
	return fmt.Errorf("the root of %s is signed by root key %s, not by the key in --root-key %s (%s): this is not the repository you pinned",
		v.GUN(), strings.Join(rootKeyIDs(v), ", "), file, strings.Join(wantIDs, ", "))
}

// saveRootCerts writes the verified root's certificates (or public keys)
// as PEM, readable by --root-key.
func saveRootCerts(v *trust.Repo, file string) error {
	var out []byte
	for _, k := range rootKeys(v) {
		if certs := k.Certificates(); len(certs) > 0 {
			out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certs[0].Raw})...)
			continue
		}
		out = append(out, keys.MarshalPublicKeyPEM(k, "")...)
	}
	if err := atomicfile.Write(file, out, 0o644); err != nil {
		return fmt.Errorf("--save-root-key: %w", err)
	}
	return nil
}

// requireDelegates refuses required signers that are not delegates of the
// repository: a name that is not there is a mistake on the command line,
// not a missing signature.
func requireDelegates(v *trust.Repo, p policy.Policy) error {
	t := v.Targets(tuf.RoleTargets)
	have := map[string]bool{}
	var names []string
	if t != nil {
		for _, d := range t.Signed.Delegations.Roles {
			have[d.Name] = true
			if n, ok := strings.CutPrefix(d.Name, tuf.RoleTargets+"/"); ok && n != "releases" && !strings.Contains(n, "/") {
				names = append(names, n)
			}
		}
	}
	var missing []string
	for _, s := range p.Signers {
		if !have[s.Role()] {
			missing = append(missing, string(s))
		}
	}
	if len(missing) == 0 {
		return nil
	}
	sort.Strings(names)
	signers := "it has no signers"
	if len(names) > 0 {
		signers = "its signers are " + strings.Join(names, ", ")
	}
	return usageError("--require-signer %s: not a signer of %s (%s)", strings.Join(missing, ", "), v.GUN(), signers)
}
