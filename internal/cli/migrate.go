package cli

// `signet migrate cosign GUN --key KEY`: carry Docker Content Trust
// signatures over to cosign's formats. Every tag that TUF verification and
// the verification policy (internal/policy) say is signed — by docker's
// resolution, or by the named signers' own roles — gets a cosign signature
// of the digest DCT signs, written by internal/oci in both storage forms.
// Tags DCT does not sign are left unsigned. Signing is idempotent, so a run
// that was interrupted is resumed by running it again: what the registry
// already holds is found and not written twice.

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/signet-trust/signet/internal/client"
	"github.com/signet-trust/signet/internal/oci"
	"github.com/signet-trust/signet/internal/policy"
	"github.com/signet-trust/signet/internal/printable"
	"github.com/signet-trust/signet/internal/registry"
	"github.com/signet-trust/signet/internal/tuf/trust"
)

// Results of one tag in a migration.
const (
	migrateSigned    = "signed"     // a cosign signature was written
	migrateExisting  = "existing"   // the registry already held one by the key, in both forms
	migrateWouldSign = "would-sign" // --dry-run: it would be signed
	migrateUnsigned  = "unsigned"   // DCT does not sign the tag (as the policy reads it): left unsigned
	migrateMissing   = "missing"    // the registry no longer holds the digest DCT signs
	migrateFailed    = "failed"     // an error; running again retries it
	migratePending   = "pending"    // not attempted: the run stopped first; running again does it
)

// Bounds of a migration.
const (
	defaultMigrateWorkers = 8
	maxMigrateWorkers     = 64
	// migrateGiveUp is how many digests in a row may fail before the run
	// stops scheduling more (the registry is down: no point in failing the
	// rest one by one).
	migrateGiveUp = 20
)

// migrateTransport wraps the transport a migration talks to the registry
// with; the benchmark counts the requests with it.
var migrateTransport = func(rt http.RoundTripper) http.RoundTripper { return rt }

type migrateCmd struct {
	a      *app
	d      *dockerTrust
	cosign *cosignCmd

	signers   []string
	threshold int
	dryRun    bool
	workers   int
}

func (m *migrateCmd) command() *cobra.Command {
	c := &cobra.Command{
		Use:   "migrate",
		Short: "Carry Docker Content Trust signatures over to other formats",
	}
	c.AddCommand(m.cosignCommand())
	return c
}

func (m *migrateCmd) cosignCommand() *cobra.Command {
	m.d = &dockerTrust{a: m.a}
	m.cosign = &cosignCmd{a: m.a}
	c := &cobra.Command{
		Use:   "cosign GUN --key KEY [--require-signer NAME[,NAME…]] [--dry-run]",
		Short: "Sign with cosign every tag Docker Content Trust signs",
		Long: `Give every tag of an image repository that Docker Content Trust signs a cosign signature of
the same digest, in both of cosign's storage forms (see signet cosign --help). Tags DCT does
not sign stay unsigned.

Which tags are signed, and to which digest, is decided as signet verify decides: the trust
data is verified (root chain, timestamp, snapshot, targets, delegations), then without
--require-signer each tag resolves as docker resolves it (targets/releases, then targets), and
with --require-signer NAME[,NAME…] only from the named signers' own roles, at least
--threshold of them (default all) agreeing. As notary and docker do, a delegation that expired
or lacks valid signatures is left out (and reported), not fatal.

Signing is idempotent: what the registry already holds is found and not written twice, so a
run that was interrupted (or whose registry went away) is resumed by running it again. Digests
are signed in parallel (--workers); on a terminal a progress bar goes to standard error.
With -o json the report lists every tag with its digest and result: signed, existing,
would-sign (--dry-run), unsigned, missing (the registry no longer holds the digest), failed or
pending (not attempted). Exit code 1 when a tag failed or is pending: run again to resume.

The trust server, its CA and the trust directory are found as for signet trust (flags, then
DOCKER_CONTENT_TRUST_SERVER and $DOCKER_CONFIG); keys (--key) as for signet cosign sign.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return m.run(cmd.Context(), args[0])
		},
	}
	m.d.addInsecureFlag(c)
	c.Flags().StringVar(&m.cosign.key, "key", "", "signing key (see signet cosign --help)")
	m.cosign.addSignerFlags(c)
	c.Flags().StringSliceVar(&m.signers, "require-signer", nil, "sign only tags these signers (targets/NAME) sign; comma-separated or repeated")
	c.Flags().IntVar(&m.threshold, "threshold", 0, "how many of the required signers must sign the same digest (default all)")
	c.Flags().BoolVar(&m.dryRun, "dry-run", false, "report what would be signed; write nothing")
	c.Flags().IntVar(&m.workers, "workers", defaultMigrateWorkers, "digests signed at the same time")
	return c
}

// migrateTag is one tag of the report.
type migrateTag struct {
	Tag     string   `json:"tag"`
	Digest  string   `json:"digest,omitempty"`
	Result  string   `json:"result"`
	Signers []string `json:"signers,omitempty"`
	Error   string   `json:"error,omitempty"`
}

// migrateReport is the JSON of -o json.
type migrateReport struct {
	GUN     string         `json:"gun"`
	Key     string         `json:"key"`
	DryRun  bool           `json:"dryRun,omitempty"`
	Policy  string         `json:"policy"`
	Skipped []string       `json:"skippedDelegations,omitempty"`
	Summary map[string]int `json:"summary"`
	Tags    []migrateTag   `json:"tags"`
}

// migrateDigest is the work of one digest: every tag DCT signs to it.
type migrateDigest struct {
	digest string
	tags   []int // indexes into the report's tags
}

func (m *migrateCmd) run(ctx context.Context, gun string) error {
	ref, err := parseRef(gun)
	if err != nil {
		return err
	}
	if ref.Tag != "" || ref.Digest != "" {
		return usageError("%s: give the repository (GUN), without a tag or digest", gun)
	}
	if m.cosign.key == "" {
		return usageError("--key is required")
	}
	if m.workers < 1 || m.workers > maxMigrateWorkers {
		return usageError("--workers %d: between 1 and %d", m.workers, maxMigrateWorkers)
	}
	p, err := policy.New(m.signers, m.threshold, policy.ReleasesDocker)
	if err != nil {
		return verifyUsage(err)
	}
	// The key first: a wrong password stops the run before anything is read
	// or written.
	key, closeKey, err := m.cosign.signingKey(ctx)
	if err != nil {
		return err
	}
	defer closeKey()
	hint, err := oci.KeyHint(key.Public())
	if err != nil {
		return fmt.Errorf("--key: %w", err)
	}

	// What DCT signs.
	r, err := m.d.openRepo(ref, "pull")
	if err != nil {
		return err
	}
	skipped := map[string]string{}
	r.reader.SkipDelegation = func(role string, err error) { skipped[role] = trust.Message(err) }
	v, err := r.update(ctx)
	if errors.Is(err, client.ErrNoTrustData) {
		return withCode(ExitNotFound, policy.NoRepository(ref.GUN()))
	}
	if err != nil {
		return err
	}
	rep := &migrateReport{GUN: ref.GUN(), Key: hint, DryRun: m.dryRun, Policy: policyText(p), Summary: map[string]int{}, Tags: []migrateTag{}}
	for _, role := range sortedKeys(skipped) {
		rep.Skipped = append(rep.Skipped, role+": "+skipped[role])
	}
	view := policy.NewView(v)
	names := map[string]bool{}
	for _, role := range v.TargetsRoles() {
		for name := range v.Targets(role).Signed.Targets {
			names[name] = true
		}
	}
	byDigest := map[string]*migrateDigest{}
	for _, name := range sortedKeys(names) {
		t := migrateTag{Tag: name}
		dec, err := p.Decide(view, policy.Query{Tag: name})
		switch {
		case errors.Is(err, policy.ErrNotSigned), errors.Is(err, policy.ErrNoTrustData):
			t.Result, t.Error = migrateUnsigned, err.Error()
		case err != nil:
			return err
		default:
			t.Digest, t.Signers, t.Result = dec.Digest, dec.Signers, migratePending
		}
		rep.Tags = append(rep.Tags, t)
		if t.Result == migratePending {
			w := byDigest[t.Digest]
			if w == nil {
				w = &migrateDigest{digest: t.Digest}
				byDigest[t.Digest] = w
			}
			w.tags = append(w.tags, len(rep.Tags)-1)
		}
	}
	work := make([]*migrateDigest, 0, len(byDigest))
	for _, w := range byDigest {
		work = append(work, w)
	}
	sort.Slice(work, func(i, j int) bool { return work[i].digest < work[j].digest })

	// Where the signatures go.
	kc, err := m.d.keychain()
	if err != nil {
		return err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// Keep a connection per worker (and one spare) open between requests.
	tr.MaxIdleConnsPerHost = 2 * m.workers
	tr.MaxIdleConns = max(tr.MaxIdleConns, tr.MaxIdleConnsPerHost)
	repo := (&registry.Client{Transport: migrateTransport(tr), Keychain: kc, UserAgent: "signet"}).Repository(ref, "push,pull")
	m.sign(ctx, repo, key, rep, work)

	for _, t := range rep.Tags {
		rep.Summary[t.Result]++
	}
	if err := m.print(rep); err != nil {
		return err
	}
	if n := rep.Summary[migrateFailed] + rep.Summary[migratePending]; n > 0 {
		return fmt.Errorf("%d of %d tags not migrated (failed or not attempted); run the same command again to resume", n, len(rep.Tags))
	}
	return nil
}

// sign signs every digest of work with bounded parallelism, recording each
// tag's result in rep. After migrateGiveUp failures in a row it stops
// taking new digests, whose tags stay pending.
func (m *migrateCmd) sign(ctx context.Context, repo *registry.Repository, key crypto.Signer, rep *migrateReport, work []*migrateDigest) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu          sync.Mutex // guards rep.Tags and inRow
		inRow       int
		done, fails atomic.Int64
	)
	stopProgress := m.progress(len(work), &done, &fails)
	defer stopProgress()
	record := func(w *migrateDigest, result string, err error) {
		mu.Lock()
		defer mu.Unlock()
		for _, i := range w.tags {
			rep.Tags[i].Result = result
			if err != nil {
				rep.Tags[i].Error = err.Error()
			}
		}
		if result == migrateFailed {
			inRow++
			fails.Add(1)
			if inRow >= migrateGiveUp {
				cancel()
			}
		} else {
			inRow = 0
		}
		done.Add(1)
	}
	next := make(chan *migrateDigest)
	var wg sync.WaitGroup
	for range min(m.workers, max(len(work), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for w := range next {
				result, err := m.signOne(ctx, repo, key, w.digest)
				record(w, result, err)
			}
		}()
	}
	// The first digests go one at a time until one is signed: then the
	// blobs every signature shares (cosign's empty config) are in the
	// repository before parallel uploads could race on them, which
	// distribution 2.8 fails (HTTP 500, or a manifest whose blob is
	// "unknown").
	warmed := m.dryRun // a dry run writes nothing
	for _, w := range work {
		if !warmed {
			result, err := m.signOne(ctx, repo, key, w.digest)
			record(w, result, err)
			warmed = result == migrateSigned || result == migrateExisting
			if ctx.Err() != nil {
				break
			}
			continue
		}
		select {
		case next <- w:
			continue
		case <-ctx.Done():
		}
		break
	}
	close(next)
	wg.Wait()
}

// signOne signs one digest, trying again (twice, after a pause) when it
// fails: signing is idempotent, so a retry writes only what the failed
// attempt did not.
func (m *migrateCmd) signOne(ctx context.Context, repo *registry.Repository, key crypto.Signer, digest string) (string, error) {
	var (
		result string
		err    error
	)
	for attempt, pause := range []time.Duration{0, 250 * time.Millisecond, time.Second} {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return migratePending, nil
			case <-time.After(pause):
			}
		}
		if result, err = m.signDigest(ctx, repo, key, digest); result != migrateFailed {
			break
		}
	}
	return result, err
}

// signDigest signs one digest (or, with --dry-run, looks whether it is
// signed) and returns the result of its tags.
func (m *migrateCmd) signDigest(ctx context.Context, repo *registry.Repository, key crypto.Signer, digest string) (string, error) {
	if ctx.Err() != nil {
		return migratePending, nil
	}
	t, err := oci.Resolve(ctx, repo, digest)
	if errors.Is(err, oci.ErrNoImage) {
		return migrateMissing, fmt.Errorf("the registry no longer holds %s, which DCT signs; nothing to sign", digest)
	}
	if err != nil {
		return m.failed(ctx, err)
	}
	o := oci.Options{Now: m.a.now(), Forms: oci.FormBoth}
	if m.dryRun {
		rep, err := oci.Verify(ctx, t, key.Public(), o)
		if err != nil && !errors.Is(err, oci.ErrNoSignatures) && !errors.Is(err, oci.ErrNotVerified) {
			return m.failed(ctx, err)
		}
		var forms oci.Form
		if rep != nil {
			for _, s := range rep.Verified {
				forms |= s.Form
			}
		}
		if forms == oci.FormBoth {
			return migrateExisting, nil
		}
		return migrateWouldSign, nil
	}
	ws, err := oci.Sign(ctx, t, key, o)
	if err != nil {
		return m.failed(ctx, err)
	}
	for _, w := range ws {
		if !w.Existing {
			return migrateSigned, nil
		}
	}
	return migrateExisting, nil
}

// failed is the result of an error: pending when the run was stopped (by
// the user, or after too many failures), failed otherwise.
func (m *migrateCmd) failed(ctx context.Context, err error) (string, error) {
	if ctx.Err() != nil {
		return migratePending, nil
	}
	return migrateFailed, err
}

// progress draws a progress bar on standard error while the digests are
// signed, when it is a terminal and the output is not JSON. It returns the
// function that ends it.
func (m *migrateCmd) progress(total int, done, fails *atomic.Int64) func() {
	f, ok := m.a.env.Stderr.(*os.File)
	if !ok || m.a.jsonOutput() || total == 0 || !term.IsTerminal(int(f.Fd())) {
		return func() {}
	}
	start := time.Now()
	draw := func() {
		n := int(done.Load())
		const width = 30
		fill := width * n / total
		rate := float64(n) / max(time.Since(start).Seconds(), 0.001)
		fmt.Fprintf(f, "\r[%s%s] %d/%d digests, %d failed, %.0f/s ", strings.Repeat("=", fill), strings.Repeat(" ", width-fill), n, total, fails.Load(), rate)
	}
	stop := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				draw()
				fmt.Fprintln(f)
				return
			case <-t.C:
				draw()
			}
		}
	}()
	return func() {
		close(stop)
		<-finished
	}
}

// print writes the report: JSON, or a table of the tags and a summary.
func (m *migrateCmd) print(rep *migrateReport) error {
	for _, s := range rep.Skipped {
		fmt.Fprintf(m.a.env.Stderr, "WARNING: %s: left out, as notary and docker leave it out; its tags are not migrated\n", printable.Quote(s))
	}
	if m.a.jsonOutput() {
		return m.a.printJSON(rep)
	}
	tw := table(m.a.env.Stdout, "TAG", "DIGEST", "RESULT")
	for _, t := range rep.Tags {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", printable.Quote(t.Tag), printable.Quote(t.Digest), t.Result)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, t := range rep.Tags {
		if t.Result == migrateFailed || t.Result == migrateMissing {
			fmt.Fprintf(m.a.env.Stderr, "%s: %s\n", printable.Quote(t.Tag), printable.Lines(t.Error))
		}
	}
	var parts []string
	for _, r := range []string{migrateSigned, migrateExisting, migrateWouldSign, migrateUnsigned, migrateMissing, migrateFailed, migratePending} {
		if n := rep.Summary[r]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, r))
		}
	}
	what := "Migrated"
	if rep.DryRun {
		what = "Dry run of the migration of"
	}
	fmt.Fprintf(m.a.env.Stdout, "\n%s %s to cosign signatures by key %s (%s): %d tags: %s\n", what, rep.GUN, rep.Key, rep.Policy, len(rep.Tags), strings.Join(parts, ", "))
	return nil
}

// policyText describes a policy for people.
func policyText(p policy.Policy) string {
	if len(p.Signers) == 0 {
		return "tags as docker resolves them"
	}
	names := make([]string, len(p.Signers))
	for i, s := range p.Signers {
		names[i] = string(s)
	}
	th := p.Threshold
	if th == 0 {
		th = len(names)
	}
	return fmt.Sprintf("tags signed by %d of %s", th, strings.Join(names, ", "))
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
