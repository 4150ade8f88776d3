package admission

// Verifying one image under one rule: DCT through the client's Reader and
// the verification policy, cosign through internal/oci; both cached.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/signet-trust/signet/internal/client"
	"github.com/signet-trust/signet/internal/oci"
	"github.com/signet-trust/signet/internal/policy"
	"github.com/signet-trust/signet/internal/registry"
	"github.com/signet-trust/signet/internal/tuf"
)

// verifier verifies images; safe for concurrent use.
type verifier struct {
	p     *Policy
	trust *trustCache
	sigs  *sigCache
	reg   *registry.Client
	now   func() time.Time
}

func newVerifier(p *Policy, now func() time.Time, m *metrics) *verifier {
	cc := p.cfg.Cache
	v := &verifier{
		p:   p,
		now: now,
		reg: &registry.Client{Transport: p.registryHTTP, Keychain: p.keychain, UserAgent: "signet-admission"},
		sigs: &sigCache{
			verdicts: newLRU[verdict](cc.MaxEntries),
			tags:     newLRU[resolution](cc.MaxEntries),
			ttl:      cc.TTL.D(),
		},
	}
	v.trust = &trustCache{
		entries:  newLRU[*trustEntry](cc.MaxEntries),
		ttl:      cc.TTL.D(),
		maxStale: cc.MaxStale.D(),
		failTTL:  cc.FailureTTL.D(),
		now:      now,
		fetch:    v.fetchTrust,
		fetched:  m.trustFetched,
	}
	return v
}

// fetchTrust updates and verifies a repository's trust data, as `signet
// verify` does: the client's Reader over the entry's memory cache, under
// the rule's pinning.
func (v *verifier) fetchTrust(ctx context.Context, e *trustEntry, d *dctRule) (*policy.View, error) {
	gun, err := tuf.ParseGUN(e.gun)
	if err != nil {
		return nil, err
	}
	if e.hc == nil {
		e.hc = &http.Client{Transport: &registry.AuthTransport{
			Base: v.p.trustHTTP, Keychain: v.p.keychain, Server: v.p.cfg.TrustServer, Registry: e.host, Repository: e.gun, Actions: "pull",
		}}
	}
	remote, err := client.NewRemote(v.p.cfg.TrustServer, e.hc, gun)
	if err != nil {
		return nil, err
	}
	rd := &client.Reader{Remote: remote, Cache: e.mem, Now: v.now, Pinning: d.pinning}
	repo, err := rd.Update(ctx)
	if err != nil {
		return nil, err
	}
	return policy.NewView(repo), nil
}

// result is the verdict on one image.
type result struct {
	img  image
	rule *rulePolicy // nil: no rule covers the image
	// digest is the verified digest ("" unless verified).
	digest   string
	signers  []string
	warnings []string
	// err says why the image is not verified (nil: verified, or no rule).
	err error
	// unreachable: err is a failure to get trust data or signatures, not a
	// verdict about them.
	unreachable bool
}

func (r *result) verified() bool { return r.rule != nil && r.err == nil }

// verify decides one image under its rule.
func (v *verifier) verify(ctx context.Context, rule *rulePolicy, img image) *result {
	res := &result{img: img, rule: rule}
	digest := img.ref.Digest
	if d := rule.dct; d != nil {
		view, stale, err := v.trust.view(ctx, img.ref.Registry, img.repo(), d)
		if err != nil {
			res.fail(err)
			return res
		}
		if stale != nil {
			res.warnings = append(res.warnings, stale.warning(img.repo()))
		}
		q := policy.Query{Tag: img.ref.Tag, Digest: img.ref.Digest}
		dec, err := d.pol.Decide(view, q)
		if err != nil {
			res.fail(err)
			return res
		}
		digest = dec.Digest
		if q.Digest != "" {
			digest = q.Digest
		}
		res.signers = append(res.signers, dec.Signers...)
		res.warnings = append(res.warnings, dec.Warnings...)
	}
	if len(rule.cosign) > 0 {
		if digest == "" {
			d, err := v.resolveTag(ctx, img)
			if err != nil {
				res.fail(err)
				return res
			}
			digest = d
		}
		by, err := v.cosign(ctx, rule, img, digest)
		if err != nil {
			if rule.dct != nil {
				err = fmt.Errorf("the signers sign %s, but %w", digest, err)
			}
			res.fail(err)
			return res
		}
		res.signers = append(res.signers, "cosign:"+by)
	}
	sort.Strings(res.signers)
	res.digest = digest
	return res
}

func (r *result) fail(err error) {
	r.err = err
	var ue *unreachableError
	var ce *cosignUnreachable
	r.unreachable = errors.As(err, &ue) || errors.As(err, &ce)
}

// resolveTag asks the registry what a tag points to (cached for the TTL).
func (v *verifier) resolveTag(ctx context.Context, img image) (string, error) {
	key := img.ref.Registry + "/" + img.ref.Repository + ":" + img.ref.Tag
	if d, ok := v.sigs.tag(key, v.now()); ok {
		return d, nil
	}
	t, err := oci.Resolve(ctx, v.reg.Repository(img.ref, "pull"), img.ref.Tag)
	if errors.Is(err, oci.ErrNoImage) {
		return "", fmt.Errorf("the registry has no image %s", img.ref)
	}
	if err != nil {
		return "", &cosignUnreachable{err: err}
	}
	v.sigs.putTag(key, t.Digest(), v.now())
	return t.Digest(), nil
}

// cosignUnreachable is a registry that could not be asked.
type cosignUnreachable struct{ err error }

func (e *cosignUnreachable) Error() string {
	return fmt.Sprintf("the registry could not be read: %v", e.err)
}
func (e *cosignUnreachable) Unwrap() error { return e.err }

// cosign checks that one of the rule's keys signs digest, in either of
// cosign's storage forms. It returns the key's hint.
func (v *verifier) cosign(ctx context.Context, rule *rulePolicy, img image, digest string) (string, error) {
	hints := make([]string, len(rule.cosign))
	for i, k := range rule.cosign {
		hints[i] = k.hint
	}
	key := img.ref.Registry + "/" + img.ref.Repository + "@" + digest + "|" + strings.Join(hints, ",")
	if vd, ok := v.sigs.verdict(key, v.now()); ok {
		return vd.by, vd.err
	}
	repo := v.reg.Repository(img.ref, "pull")
	t, err := oci.Resolve(ctx, repo, digest)
	if errors.Is(err, oci.ErrNoImage) {
		err = fmt.Errorf("the registry does not hold %s, so it has no cosign signature", digest)
		v.sigs.putVerdict(key, verdict{err: err, at: v.now()})
		return "", err
	}
	if err != nil {
		return "", &cosignUnreachable{err: err}
	}
	var why []string
	for _, k := range rule.cosign {
		_, err := oci.Verify(ctx, t, k.pub, oci.Options{Now: v.now()})
		if err == nil {
			v.sigs.putVerdict(key, verdict{by: k.hint, at: v.now()})
			return k.hint, nil
		}
		if !errors.Is(err, oci.ErrNoSignatures) && !errors.Is(err, oci.ErrNotVerified) {
			return "", &cosignUnreachable{err: err}
		}
		why = append(why, err.Error())
	}
	files := make([]string, len(rule.cosign))
	for i, k := range rule.cosign {
		files[i] = k.file
	}
	err = fmt.Errorf("no cosign signature of %s verifies with %s (%s)", digest, strings.Join(files, " or "), strings.Join(why, "; "))
	v.sigs.putVerdict(key, verdict{err: err, at: v.now()})
	return "", err
}
