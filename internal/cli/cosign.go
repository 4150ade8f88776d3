package cli

// `signet cosign …`: cosign-compatible signatures and attestations written
// and verified by Signet's own code (internal/oci), and the --cosign-key
// check of `signet verify`. Registry credentials come from the Docker
// configuration ($DOCKER_CONFIG/config.json), as for signet trust; loopback
// registries are spoken to over plain HTTP, every other over TLS.

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/oci"
	"github.com/signet-trust/signet/internal/printable"
	"github.com/signet-trust/signet/internal/registry"
	"github.com/signet-trust/signet/internal/signer/signerapi"
	"github.com/signet-trust/signet/internal/trustdir"
)

// Environment of the cosign commands.
const (
	envCosignPassword = "COSIGN_PASSWORD"             // the key file's password, as cosign
	envSignerCert     = "SIGNET_SIGNER_CERT"          // client certificate for signet-signer keys
	envSignerKey      = "SIGNET_SIGNER_KEY"           // its private key
	envSignerCA       = "SIGNET_SIGNER_CA"            // the CA the signer's certificate chains to
	signerKeyScheme   = "signet-signer"               // --key signet-signer://HOST:PORT/KEYID?gun=GUN
	maxPredicateFile  = 32 << 20                      // bytes of a --predicate file
	cosignVerifyHint  = "--insecure-ignore-tlog=true" // what cosign needs to verify without a log
)

// cosignCmd holds the flags of `signet cosign`.
type cosignCmd struct {
	a *app

	key         string
	annotations []string
	form        string
	// attestations
	predicateType string
	predicate     string
	// signet-signer keys
	signerCert, signerKey, signerCA string
}

func (c *cosignCmd) command() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cosign",
		Short: "Sign, attest and verify images in cosign's formats (no cosign needed)",
		Long: `Signatures and attestations cosign v2 and v3 verify, written by signet itself.

Each is written in both of cosign's storage forms: the Sigstore bundle (v0.3, DSSE) as an OCI
1.1 referrer of the image — with the sha256-<hex> index tag on registries without the
Referrers API — and the legacy sha256-<hex>.sig / .att tag. Signing again with the same key
adds nothing. Nothing is sent to a transparency log, so cosign verifies them with --key and
` + cosignVerifyHint + `.

Keys (--key): a cosign key file (cosign.key; password from ` + envCosignPassword + ` or a prompt), a PEM
private key (PKCS#8, EC or RSA), a PKCS#11 URI (pkcs11:…, in a signet built with -tags
pkcs11), or a key held by signet-signer: ` + signerKeyScheme + `://HOST:PORT/KEYID?gun=GUN with
--signer-cert/--signer-key/--signer-ca (or ` + envSignerCert + `, ` + envSignerKey + `, ` + envSignerCA + `).
Verification takes the PEM public key (cosign.pub).

Registry credentials come from $DOCKER_CONFIG/config.json (docker login). Loopback registries
(localhost, 127.0.0.1, ::1) are reached over plain HTTP, all others over TLS.`,
	}
	// Each subcommand binds its flags to its own cosignCmd.
	sub := func() *cosignCmd { return &cosignCmd{a: c.a} }
	cmd.AddCommand(sub().signCommand(), sub().attestCommand(), sub().verifyCommand(false), sub().verifyCommand(true))
	return cmd
}

func (c *cosignCmd) addFormFlag(cmd *cobra.Command) {
	cmd.Flags().StringVar(&c.form, "form", "both", "storage form: both, bundle (OCI referrer) or legacy (sha256-<hex>.sig/.att tag)")
}

func (c *cosignCmd) addSignerFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&c.signerCert, "signer-cert", "", "client certificate `file` for a "+signerKeyScheme+":// key (default $"+envSignerCert+")")
	cmd.Flags().StringVar(&c.signerKey, "signer-key", "", "private key `file` of --signer-cert (default $"+envSignerKey+")")
	cmd.Flags().StringVar(&c.signerCA, "signer-ca", "", "CA certificate `file` the signer's certificate must chain to (default $"+envSignerCA+")")
}

func (c *cosignCmd) signCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sign --key KEY IMAGE[:TAG|@DIGEST]",
		Short: "Sign an image's manifest digest as cosign sign does",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.sign(cmd.Context(), args[0], "")
		},
	}
	cmd.Flags().StringVar(&c.key, "key", "", "signing key (see signet cosign --help)")
	cmd.Flags().StringArrayVarP(&c.annotations, "annotations", "a", nil, "annotation KEY=VALUE to sign with the digest (repeatable)")
	c.addFormFlag(cmd)
	c.addSignerFlags(cmd)
	return cmd
}

func (c *cosignCmd) attestCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "attest --key KEY --type TYPE --predicate FILE IMAGE[:TAG|@DIGEST]",
		Short: "Attest an image with an in-toto statement as cosign attest does",
		Long: `Write an in-toto Statement about the image's manifest digest, signed in a DSSE envelope.

--type is one of cosign's names — custom (the file's text as Data, with a timestamp),
slsaprovenance, slsaprovenance02, slsaprovenance1, spdxjson, cyclonedx, link, vuln, openvex —
or a predicate type URI; for every type but custom the file must hold a JSON object.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if c.predicate == "" {
				return usageError("--predicate FILE is required")
			}
			return c.sign(cmd.Context(), args[0], c.predicateType)
		},
	}
	cmd.Flags().StringVar(&c.key, "key", "", "signing key (see signet cosign --help)")
	cmd.Flags().StringVar(&c.predicateType, "type", "custom", "predicate type: a cosign name or a URI")
	cmd.Flags().StringVar(&c.predicate, "predicate", "", "`file` holding the predicate")
	c.addFormFlag(cmd)
	c.addSignerFlags(cmd)
	return cmd
}

func (c *cosignCmd) verifyCommand(attestations bool) *cobra.Command {
	use, short := "verify --key PUBLIC_KEY IMAGE[:TAG|@DIGEST]", "Verify an image's cosign signatures (both forms) and print the digest"
	if attestations {
		use, short = "verify-attestation --key PUBLIC_KEY [--type TYPE] IMAGE[:TAG|@DIGEST]", "Verify an image's cosign attestations and print their statements"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Long: short + `.

Signatures are verified with the public key alone (what cosign does with --key and
` + cosignVerifyHint + `), in both storage forms; the output lists each one that verifies.

Exit codes: 0 verified; 1 error; 2 bad command line; 3 signatures found, none verifies;
4 no cosign signature for the image.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.verify(cmd.Context(), args[0], attestations)
		},
	}
	cmd.Flags().StringVar(&c.key, "key", "", "PEM public key `file` (cosign.pub)")
	cmd.Flags().StringArrayVarP(&c.annotations, "annotations", "a", nil, "annotation KEY=VALUE the signature must carry (repeatable)")
	if attestations {
		cmd.Flags().StringVar(&c.predicateType, "type", "", "predicate type (a cosign name or a URI); default any")
	}
	c.addFormFlag(cmd)
	return cmd
}

// forms parses --form.
func (c *cosignCmd) forms() (oci.Form, error) {
	switch c.form {
	case "", "both":
		return oci.FormBoth, nil
	case "bundle":
		return oci.FormBundle, nil
	case "legacy":
		return oci.FormLegacy, nil
	}
	return 0, usageError("--form %q: want both, bundle or legacy", c.form)
}

func (c *cosignCmd) parseAnnotations() (map[string]string, error) {
	if len(c.annotations) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, kv := range c.annotations {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usageError("-a %q: want KEY=VALUE", kv)
		}
		out[k] = v
	}
	return out, nil
}

// cosignTarget resolves IMAGE[:TAG|@DIGEST] in its registry. A missing
// manifest is reported as such.
func cosignTarget(ctx context.Context, a *app, image, actions string) (oci.Target, registry.Reference, error) {
	ref, err := parseRef(image)
	if err != nil {
		return oci.Target{}, ref, err
	}
	kc, err := (&dockerTrust{a: a}).keychain()
	if err != nil {
		return oci.Target{}, ref, err
	}
	rc := &registry.Client{Keychain: kc, UserAgent: "signet"}
	repo := rc.Repository(ref, actions)
	id := ref.Digest
	if id == "" {
		id = ref.Tag
	}
	if id == "" {
		id = "latest"
	}
	t, err := oci.Resolve(ctx, repo, id)
	if err != nil {
		return t, ref, err
	}
	return t, ref, nil
}

// sign runs cosign sign (predicateType "") or cosign attest.
func (c *cosignCmd) sign(ctx context.Context, image, predicateType string) error {
	forms, err := c.forms()
	if err != nil {
		return err
	}
	ann, err := c.parseAnnotations()
	if err != nil {
		return err
	}
	if c.key == "" {
		return usageError("--key is required")
	}
	var predicate json.RawMessage
	var ptype string
	now := c.a.now()
	if c.predicate != "" {
		if ptype, err = oci.PredicateType(predicateType); err != nil {
			return usageError("--type: %v", err)
		}
		b, err := readLimited(c.a.expand(c.predicate), maxPredicateFile)
		if err != nil {
			return fmt.Errorf("--predicate: %w", err)
		}
		if predicate, err = oci.Predicate(predicateType, b, now); err != nil {
			return fmt.Errorf("--predicate %s: %w", c.predicate, err)
		}
	}
	key, closeKey, err := c.signingKey(ctx)
	if err != nil {
		return err
	}
	defer closeKey()
	t, _, err := cosignTarget(ctx, c.a, image, "push,pull")
	if err != nil {
		return err
	}
	o := oci.Options{Now: now, Annotations: ann, Forms: forms}
	var ws []oci.Written
	if ptype == "" {
		ws, err = oci.Sign(ctx, t, key, o)
	} else {
		ws, err = oci.Attest(ctx, t, key, ptype, predicate, o)
	}
	if err != nil {
		return err
	}
	return c.printWritten(t, ptype, ws)
}

// writtenJSON is the JSON of --output json for sign and attest.
type writtenJSON struct {
	Image         string        `json:"image"`
	Digest        string        `json:"digest"`
	PredicateType string        `json:"predicateType,omitempty"`
	Written       []writtenForm `json:"written"`
}

type writtenForm struct {
	Form     string `json:"form"`
	Ref      string `json:"ref"`
	Existing bool   `json:"existing"`
}

func (c *cosignCmd) printWritten(t oci.Target, ptype string, ws []oci.Written) error {
	out := writtenJSON{Image: t.DockerReference(), Digest: t.Digest(), PredicateType: ptype, Written: []writtenForm{}}
	for _, w := range ws {
		out.Written = append(out.Written, writtenForm{Form: w.Form.String(), Ref: w.Ref, Existing: w.Existing})
	}
	if c.a.jsonOutput() {
		return c.a.printJSON(out)
	}
	what := "Signed"
	if ptype != "" {
		what = "Attested (" + ptype + ")"
	}
	fmt.Fprintf(c.a.env.Stdout, "%s %s\n", what, t)
	for _, w := range out.Written {
		state := "written"
		if w.Existing {
			state = "already there, nothing written"
		}
		fmt.Fprintf(c.a.env.Stdout, "  %-6s %s (%s)\n", w.Form, printable.Quote(w.Ref), state)
	}
	return nil
}

func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return b, nil
}

// signingKey opens --key: a signet-signer key, a PKCS#11 URI or a key
// file. close releases what opening it took.
func (c *cosignCmd) signingKey(ctx context.Context) (crypto.Signer, func(), error) {
	nothing := func() {}
	switch {
	case strings.HasPrefix(c.key, signerKeyScheme+"://"):
		return c.signerKeyRef(ctx)
	case strings.HasPrefix(c.key, "pkcs11:"):
		if err := needPKCS11("--key"); err != nil {
			return nil, nothing, err
		}
		k, err := c.a.openTokenKey(ctx, trustdir.TokenRef{URI: c.key})
		if err != nil {
			return nil, nothing, fmt.Errorf("--key %s: %w", c.key, err)
		}
		return k, nothing, nil
	}
	data, err := readLimited(c.a.expand(c.key), 1<<20)
	if err != nil {
		return nil, nothing, fmt.Errorf("--key: %w", err)
	}
	pass := c.passphrase()
	var k *keys.PrivateKey
	if keys.IsCosignPrivateKeyPEM(data) {
		k, err = keys.ParseCosignPrivateKeyPEM(data, pass)
	} else {
		k, err = keys.ParsePrivateKeyPEM(data, pass)
	}
	switch {
	case errors.Is(err, keys.ErrWrongPassphrase):
		return nil, nothing, fmt.Errorf("--key %s: wrong password (set %s)", c.key, envCosignPassword)
	case err != nil:
		return nil, nothing, fmt.Errorf("--key %s: %w", c.key, err)
	}
	return k, nothing, nil
}

// passphrase is cosign's: COSIGN_PASSWORD, else a prompt on a terminal,
// else the empty password (cosign's keys may have one).
func (c *cosignCmd) passphrase() keys.PassphraseFunc {
	return func(attempt int) ([]byte, error) {
		if v := c.a.env.Getenv(envCosignPassword); v != "" {
			if attempt > 0 {
				return nil, keys.ErrWrongPassphrase
			}
			return []byte(v), nil
		}
		if !c.a.env.Terminal || c.a.env.ReadPassword == nil {
			if attempt > 0 {
				return nil, keys.ErrWrongPassphrase
			}
			return nil, nil
		}
		if attempt >= 3 {
			return nil, keys.ErrWrongPassphrase
		}
		fmt.Fprint(c.a.env.Stderr, "Enter password for private key: ")
		p, err := c.a.env.ReadPassword()
		fmt.Fprintln(c.a.env.Stderr)
		return []byte(strings.TrimRight(string(p), "\r\n")), err
	}
}

// signerKeyRef reaches a key held by signet-signer:
// signet-signer://HOST:PORT/KEYID?gun=GUN, over mutual TLS.
func (c *cosignCmd) signerKeyRef(ctx context.Context) (crypto.Signer, func(), error) {
	nothing := func() {}
	u, err := url.Parse(c.key)
	id := strings.TrimPrefix(u.Path, "/")
	gun := u.Query().Get("gun")
	if err != nil || u.Host == "" || id == "" || strings.Contains(id, "/") || gun == "" {
		return nil, nothing, usageError("--key %q: want %s://HOST:PORT/KEYID?gun=GUN", c.key, signerKeyScheme)
	}
	cert := firstNonEmpty(c.signerCert, c.a.env.Getenv(envSignerCert))
	key := firstNonEmpty(c.signerKey, c.a.env.Getenv(envSignerKey))
	ca := firstNonEmpty(c.signerCA, c.a.env.Getenv(envSignerCA))
	if cert == "" || key == "" || ca == "" {
		return nil, nothing, usageError("a %s key needs --signer-cert, --signer-key and --signer-ca (or %s, %s, %s): the signer accepts only mutual TLS",
			signerKeyScheme, envSignerCert, envSignerKey, envSignerCA)
	}
	tc, err := signerapi.ClientTLSConfig(c.a.expand(cert), c.a.expand(key), c.a.expand(ca))
	if err != nil {
		return nil, nothing, err
	}
	cl, err := signerapi.NewClient("https://"+u.Host, tc, signerapi.ClientOptions{})
	if err != nil {
		return nil, nothing, err
	}
	s, err := cl.Signer(ctx, gun, id)
	if err != nil {
		cl.Close()
		return nil, nothing, fmt.Errorf("--key %s: %w", c.key, err)
	}
	return s, cl.Close, nil
}

// readCosignPublicKey reads a PEM public key (cosign.pub) or certificate.
func readCosignPublicKey(a *app, path string) (crypto.PublicKey, error) {
	data, err := readLimited(a.expand(path), 1<<20)
	if err != nil {
		return nil, err
	}
	return keys.ParseCosignPublicKeyPEM(data, path)
}

// cosignSignature is one verified signature in --output json.
type cosignSignature struct {
	Form          string            `json:"form"`
	Source        string            `json:"source"`
	Key           string            `json:"key"`
	PredicateType string            `json:"predicateType,omitempty"`
	Annotations   map[string]string `json:"annotations,omitempty"`
	Statement     json.RawMessage   `json:"statement,omitempty"`
}

type cosignVerifyJSON struct {
	Image      string            `json:"image"`
	Digest     string            `json:"digest"`
	Signatures []cosignSignature `json:"signatures"`
}

func (c *cosignCmd) verify(ctx context.Context, image string, attestations bool) error {
	forms, err := c.forms()
	if err != nil {
		return err
	}
	ann, err := c.parseAnnotations()
	if err != nil {
		return err
	}
	if c.key == "" {
		return usageError("--key PUBLIC_KEY is required")
	}
	pub, err := readCosignPublicKey(c.a, c.key)
	if err != nil {
		return fmt.Errorf("--key: %w", err)
	}
	ptype := ""
	if attestations && c.predicateType != "" {
		if ptype, err = oci.PredicateType(c.predicateType); err != nil {
			return usageError("--type: %v", err)
		}
	}
	t, _, err := cosignTarget(ctx, c.a, image, "pull")
	if err != nil {
		return err
	}
	o := oci.Options{Now: c.a.now(), Annotations: ann, Forms: forms}
	var rep *oci.Report
	if attestations {
		rep, err = oci.VerifyAttestations(ctx, t, pub, ptype, o)
	} else {
		rep, err = oci.Verify(ctx, t, pub, o)
	}
	if err != nil {
		return cosignExit(err)
	}
	out := cosignVerifyJSON{Image: image, Digest: t.Digest()}
	for _, s := range rep.Verified {
		cs := cosignSignature{Form: s.Form.String(), Source: s.Source, Key: s.KeyHint, PredicateType: s.PredicateType, Annotations: s.Annotations}
		if attestations {
			cs.Statement = s.Payload
		}
		out.Signatures = append(out.Signatures, cs)
	}
	if c.a.jsonOutput() {
		return c.a.printJSON(out)
	}
	if attestations {
		for _, s := range rep.Verified {
			fmt.Fprintf(c.a.env.Stdout, "%s\n", printable.Lines(string(s.Payload)))
		}
		return nil
	}
	fmt.Fprintln(c.a.env.Stdout, t.Digest())
	return nil
}

// cosignExit maps verification errors to verify's exit codes.
func cosignExit(err error) error {
	switch {
	case errors.Is(err, oci.ErrNoSignatures):
		return withCode(ExitNotFound, err)
	case errors.Is(err, oci.ErrNotVerified):
		return withCode(ExitVerify, err)
	}
	return err
}

// cosignSignerName names a cosign key among verify's signers.
func cosignSignerName(pub crypto.PublicKey) string {
	h, err := oci.KeyHint(pub)
	if err != nil {
		return "cosign"
	}
	return "cosign:" + h
}

// verifyCosign is `signet verify IMAGE --cosign-key FILE` without
// --require-signer: the cosign signatures alone decide, and the output is
// verify's.
func (d *dockerTrust) verifyCosign(ctx context.Context, image, keyFile string) error {
	pub, err := readCosignPublicKey(d.a, keyFile)
	if err != nil {
		return usageError("--cosign-key: %v", err)
	}
	t, ref, err := cosignTarget(ctx, d.a, image, "pull")
	if err != nil {
		return err
	}
	if _, err := oci.Verify(ctx, t, pub, oci.Options{Now: d.a.now()}); err != nil {
		return cosignExit(err)
	}
	res := verifyResult{Image: image, GUN: ref.GUN(), Tag: ref.Tag, Digest: t.Digest(), Size: t.Manifest.Size, Signers: []string{cosignSignerName(pub)}}
	if ref.Digest != "" {
		res.Tag = ""
	} else if res.Tag == "" {
		res.Tag = "latest"
	}
	if d.a.jsonOutput() {
		return d.a.printJSON(res)
	}
	fmt.Fprintln(d.a.env.Stdout, res.Digest)
	return nil
}

// cosignAgrees is `signet verify --require-signer … --cosign-key FILE`'s
// second half: the digest the required signers sign must carry a cosign
// signature by the key too. The key is named among the result's signers.
func (d *dockerTrust) cosignAgrees(ctx context.Context, res *verifyResult, keyFile string) error {
	pub, err := readCosignPublicKey(d.a, keyFile)
	if err != nil {
		return usageError("--cosign-key: %v", err)
	}
	ref, err := parseRef(res.Image)
	if err != nil {
		return err
	}
	t, _, err := cosignTarget(ctx, d.a, ref.GUN()+"@"+res.Digest, "pull")
	if errors.Is(err, oci.ErrNoImage) {
		return withCode(ExitVerify, fmt.Errorf("the signers sign %s, which the registry does not hold, so it has no cosign signature", res.Digest))
	}
	if err != nil {
		return err
	}
	if _, err := oci.Verify(ctx, t, pub, oci.Options{Now: d.a.now()}); err != nil {
		msg := fmt.Sprintf("the signers sign %s, but no cosign signature by %s verifies for it", res.Digest, keyFile)
		if ref.Tag != "" && ref.Digest == "" {
			if cur, _, terr := cosignTarget(ctx, d.a, res.Image, "pull"); terr == nil && cur.Digest() != res.Digest {
				if _, verr := oci.Verify(ctx, cur, pub, oci.Options{Now: d.a.now()}); verr == nil {
					msg = fmt.Sprintf("the signers sign %s, the cosign key signs %s (what the registry's tag %s points to): they disagree", res.Digest, cur.Digest(), ref.Tag)
				}
			}
		}
		return withCode(ExitVerify, fmt.Errorf("%s: %w", msg, err))
	}
	res.Signers = append(res.Signers, cosignSignerName(pub))
	sort.Strings(res.Signers)
	return nil
}
