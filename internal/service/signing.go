package service

import (
	"context"
	"crypto"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/signet-trust/signet/internal/audit"
	"github.com/signet-trust/signet/internal/client"
	"github.com/signet-trust/signet/internal/client/changes"
	"github.com/signet-trust/signet/internal/custody"
	"github.com/signet-trust/signet/internal/policy"
	"github.com/signet-trust/signet/internal/store"
	"github.com/signet-trust/signet/internal/tuf"
	"github.com/signet-trust/signet/internal/tuf/trust"
)

// Bounds of the signing worker.
const (
	claimBatch       = 64 // requests claimed at once
	parallelGUNs     = 4  // repositories signed at once
	maxConflictTries = 10 // publishes retried after another writer's
)

// wake makes the worker look for signing jobs at once.
func (s *Service) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *Service) runWorker(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		if _, err := s.SignDue(ctx); err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "signing worker pass failed", "error", err.Error())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.kick:
		}
	}
}

// job is a claimed request with what signing it needs, and what this
// attempt did.
type job struct {
	r       Request
	proj    Project
	pol     Policy
	formats []Format
	role    string // targets/<signer>
	keyID   string
	book    mailbook

	roles  []SignedRole      // what the DCT publish stored (or found)
	cosign []CosignSignature // the cosign signatures written (or found)
}

// has reports whether j signs in format f; done whether f is complete
// (in an earlier attempt too).
func (j *job) has(f Format) bool  { return slices.Contains(j.formats, f) }
func (j *job) done(f Format) bool { return slices.Contains(j.r.Done, f) }

func (j *job) tags() []string {
	out := make([]string, len(j.r.Images))
	for i, im := range j.r.Images {
		out[i] = im.Tag
	}
	return out
}

// SignDue claims the signing jobs that are due and signs them, the jobs of
// one repository together (in as few publishes as their tags allow), a
// few repositories at a time. It returns how many jobs it handled.
func (s *Service) SignDue(ctx context.Context) (int, error) {
	total := 0
	for {
		reqs, err := s.st.ClaimSigning(ctx, s.holder, s.now(), s.cfg.SigningLease, claimBatch)
		if err != nil {
			return total, err
		}
		if len(reqs) == 0 {
			return total, nil
		}
		total += len(reqs)
		byGUN := map[string][]*job{}
		var order []string
		for _, r := range reqs {
			j, err := s.prepare(ctx, r)
			if err != nil {
				s.retryLater(ctx, r, err)
				continue
			}
			if j == nil {
				continue
			}
			gun := j.proj.Repository
			if byGUN[gun] == nil {
				order = append(order, gun)
			}
			byGUN[gun] = append(byGUN[gun], j)
		}
		var wg sync.WaitGroup
		sem := make(chan struct{}, parallelGUNs)
		for _, gun := range order {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				s.signGUN(ctx, gun, byGUN[gun])
			}()
		}
		wg.Wait()
		if ctx.Err() != nil {
			return total, ctx.Err()
		}
	}
}

// prepare reads what signing r needs; nil when r was failed instead.
func (s *Service) prepare(ctx context.Context, r Request) (*job, error) {
	proj, err := s.st.GetProject(ctx, r.Project)
	if errors.Is(err, store.ErrNotFound) {
		s.fail(ctx, &job{r: r}, "its project no longer exists")
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	pol, err := s.st.GetPolicy(ctx, r.Project, r.Policy)
	if errors.Is(err, store.ErrNotFound) {
		s.fail(ctx, &job{r: r, proj: proj}, "its policy no longer exists")
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	j := &job{r: r, proj: proj, pol: pol, formats: r.Formats, role: policy.Signer(pol.SignerName(proj)).Role(), keyID: pol.SigningKey(proj),
		book: s.mailbook(ctx, pol, r.Submitter)}
	if len(j.formats) == 0 {
		j.formats = formatsOf(pol)
	}
	if j.has(FormatCosign) && (s.cfg.Cosign == nil || proj.CosignKeyID == "") {
		s.fail(ctx, j, "this server does not write cosign signatures; "+progressNote(r, nil))
		return nil, nil
	}
	return j, nil
}

// signGUN signs the jobs of one repository: each in its formats, DCT
// first (the jobs of the repository together), then cosign.
func (s *Service) signGUN(ctx context.Context, gun string, jobs []*job) {
	unlock := s.lockGUN(gun)
	defer unlock()
	// Right before signing, each tag must still point at the digest it
	// pointed at when the request was submitted, and the registry must
	// take the cosign signature: checked before anything is written, so
	// that a request fails whole rather than half signed. A job that
	// started writing in an earlier attempt is not checked again: it
	// completes the digests it started on.
	type checked struct {
		reason string
		err    error
	}
	results := make([]checked, len(jobs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8) // registry requests at once
	for i, j := range jobs {
		if !j.r.Started.IsZero() {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			c := &results[i]
			c.reason, c.err = s.recheck(ctx, j)
			if c.reason == "" && c.err == nil && j.has(FormatCosign) {
				c.reason, c.err = s.cosignReady(ctx, j)
			}
		}()
	}
	wg.Wait()
	var ok, starting []*job
	for i, j := range jobs {
		switch c := results[i]; {
		case c.err != nil:
			s.retryLater(ctx, j.r, c.err)
		case c.reason != "":
			s.fail(ctx, j, c.reason)
		default:
			ok = append(ok, j)
			if j.r.Started.IsZero() && j.has(FormatCosign) {
				starting = append(starting, j)
			}
		}
	}
	// A job in more than one format records that it starts writing, so
	// that a retry after a crash between the formats completes it instead
	// of resolving the tags again. (A job in DCT alone needs no mark: its
	// one publish is atomic, and a retry finds it published.)
	ok = s.start(ctx, ok, starting)

	// DCT: publish in rounds in which no tag is signed twice, oldest
	// request first, so that a newer request for a tag wins, as it would
	// one publish at a time.
	var dct, next []*job
	for _, j := range ok {
		if j.has(FormatDCT) && !j.done(FormatDCT) {
			dct = append(dct, j)
		} else {
			next = append(next, j)
		}
	}
	var published []*job
	for len(dct) > 0 {
		var round, rest []*job
		taken := map[string]bool{}
		for _, j := range dct {
			clash := slices.ContainsFunc(j.tags(), func(t string) bool { return taken[t] })
			if clash {
				rest = append(rest, j)
				continue
			}
			for _, t := range j.tags() {
				taken[t] = true
			}
			round = append(round, j)
		}
		published = append(published, s.publish(ctx, gun, round)...)
		dct = rest
	}
	var final, progressed []*job
	for _, j := range published {
		if j.has(FormatCosign) {
			progressed = append(progressed, j)
		} else {
			final = append(final, j)
		}
	}
	s.signed(ctx, final)
	next = append(next, s.progress(ctx, progressed, FormatDCT)...)

	// cosign: one job at a time (appends to a legacy signature image are
	// read-modify-write).
	final = nil
	for _, j := range next {
		if !j.has(FormatCosign) || j.done(FormatCosign) {
			final = append(final, j)
			continue
		}
		if s.signCosign(ctx, j) {
			final = append(final, j)
		}
	}
	s.signed(ctx, final)
}

// cosignReady checks, before anything is written, that the registry
// takes the service's push to j's repository and that custody lends the
// project's cosign key: a reason to fail when either refuses, an error
// when they cannot answer now.
func (s *Service) cosignReady(ctx context.Context, j *job) (string, error) {
	err := s.cfg.Cosign.CheckPush(ctx, j.proj.Repository)
	if errors.Is(err, ErrRegistryAuth) {
		return fmt.Sprintf("the registry refuses the service's push to %s, which the cosign signature needs: %v; nothing was signed", j.proj.Repository, err), nil
	}
	if err != nil {
		return "", fmt.Errorf("checking the service's push access to %s: %w", j.proj.Repository, err)
	}
	if _, err := s.cosignKey(ctx, j); errors.Is(err, errKeyGone) {
		return err.Error() + "; nothing was signed", nil
	} else if err != nil {
		return "", err
	}
	return "", nil
}

// cosignKey lends the project's cosign key.
func (s *Service) cosignKey(ctx context.Context, j *job) (crypto.Signer, error) {
	k, err := s.cfg.Keys.Signer(ctx, "", j.proj.CosignKeyID)
	if errors.Is(err, custody.ErrNotHeld) || errors.Is(err, custody.ErrRetired) {
		return nil, fmt.Errorf("%w: the key custodian does not hold the project's cosign key %s", errKeyGone, shortID(j.proj.CosignKeyID))
	}
	return k, err
}

// signCosign writes the cosign signature of each of j's digests, and
// reports whether j is done; when not, j was failed or kept for a retry,
// with what was done recorded.
func (s *Service) signCosign(ctx context.Context, j *job) bool {
	key, err := s.cosignKey(ctx, j)
	if err == nil {
		for i, im := range j.r.Images {
			if slices.ContainsFunc(j.r.Images[:i], func(o Image) bool { return o.Digest == im.Digest }) {
				continue // two tags of one manifest
			}
			var sigs []CosignSignature
			sigs, err = s.cfg.Cosign.Sign(ctx, im.Ref, Manifest{Digest: im.Digest, Size: im.Size, MediaType: im.MediaType}, key, s.now())
			for _, sg := range sigs {
				sg.KeyID = j.proj.CosignKeyID
				j.cosign = append(j.cosign, sg)
			}
			if err != nil {
				err = fmt.Errorf("the cosign signature of %s@%s: %w", j.proj.Repository, im.Digest, err)
				break
			}
		}
	}
	switch {
	case err == nil:
		return true
	case errors.Is(err, ErrRegistryAuth), errors.Is(err, ErrCosignRefused), errors.Is(err, errKeyGone):
		s.fail(ctx, j, fmt.Sprintf("%v; %s", err, progressNote(j.r, j.cosign)))
	default:
		s.retryLater(ctx, j.r, err)
	}
	return false
}

// start records that jobs start writing; it returns ok without the jobs
// whose mark could not be recorded (kept for a retry).
func (s *Service) start(ctx context.Context, ok, starting []*job) []*job {
	if len(starting) == 0 {
		return ok
	}
	now := s.now()
	got, err := s.updateJobs(ctx, starting, func(r *Request, j *job) (Effects, error) {
		r.Started, r.Updated = now, now
		s.extendLease(r, now)
		return Effects{}, nil
	})
	if err != nil {
		for _, j := range starting {
			s.retryLater(ctx, j.r, fmt.Errorf("recording the start of the signing: %w", err))
		}
		return slices.DeleteFunc(ok, func(j *job) bool { return slices.Contains(starting, j) })
	}
	return slices.DeleteFunc(ok, func(j *job) bool { return slices.Contains(starting, j) && !got[j] })
}

// progress records that jobs completed format f (with the DCT role
// versions); it returns the jobs recorded.
func (s *Service) progress(ctx context.Context, jobs []*job, f Format) []*job {
	if len(jobs) == 0 {
		return nil
	}
	now := s.now()
	got, err := s.updateJobs(ctx, jobs, func(r *Request, j *job) (Effects, error) {
		if !slices.Contains(r.Done, f) {
			r.Done = append(r.Done, f)
		}
		if f == FormatDCT {
			r.Signed = j.roles
		}
		r.Updated = now
		s.extendLease(r, now)
		return Effects{}, nil
	})
	if err != nil {
		// The publish stands; a retry finds it and records it.
		for _, j := range jobs {
			s.retryLater(ctx, j.r, fmt.Errorf("recording the %s signature: %w", f, err))
		}
		return nil
	}
	var out []*job
	for _, j := range jobs {
		if got[j] {
			out = append(out, j)
		}
	}
	return out
}

// updateJobs changes the requests of jobs still in status signing, in one
// transaction, and refreshes each job's request; it reports which jobs
// were changed.
func (s *Service) updateJobs(ctx context.Context, jobs []*job, fn func(*Request, *job) (Effects, error)) (map[*job]bool, error) {
	byID := make(map[string]*job, len(jobs))
	ids := make([]string, 0, len(jobs))
	for _, j := range jobs {
		byID[j.r.ID], ids = j, append(ids, j.r.ID)
	}
	changed := map[*job]bool{}
	rs, err := s.st.UpdateRequests(ctx, ids, func(r *Request) (Effects, error) {
		if r.Status != StatusSigning {
			return Effects{}, ErrUnchanged
		}
		changed[byID[r.ID]] = true
		return fn(r, byID[r.ID])
	})
	if err != nil {
		return nil, err
	}
	for _, r := range rs {
		if j := byID[r.ID]; changed[j] {
			j.r = r
		}
	}
	return changed, nil
}

// extendLease renews this worker's lease on r as its signing progresses.
func (s *Service) extendLease(r *Request, now time.Time) {
	if r.ClaimedBy == s.holder {
		r.ClaimedUntil = now.Add(s.cfg.SigningLease)
	}
}

// progressNote says what a signing that stops at r's progress leaves
// behind, with cosign signatures written in this attempt.
func progressNote(r Request, cosign []CosignSignature) string {
	var parts []string
	for _, f := range r.Done {
		switch f {
		case FormatDCT:
			var vs []string
			for _, sr := range r.Signed {
				if sr.Role != tuf.RoleSnapshot && sr.Role != tuf.RoleTimestamp {
					vs = append(vs, fmt.Sprintf("%s v%d", sr.Role, sr.Version))
				}
			}
			parts = append(parts, fmt.Sprintf("the DCT signature is published (%s) and stays", strings.Join(vs, ", ")))
		case FormatCosign:
			parts = append(parts, "the cosign signature is written and stays")
		}
	}
	if all := mergeCosign(r.Cosign, cosign); len(all) > 0 && !slices.Contains(r.Done, FormatCosign) {
		var refs []string
		for _, c := range all {
			refs = append(refs, c.Form+" "+c.Ref)
		}
		parts = append(parts, "cosign signatures written so far stay ("+strings.Join(refs, ", ")+")")
	}
	if len(parts) == 0 {
		return "nothing was signed"
	}
	var missing []string
	for _, f := range r.Formats {
		if !slices.Contains(r.Done, f) {
			missing = append(missing, string(f))
		}
	}
	if len(missing) > 0 {
		parts = append(parts, "the "+strings.Join(missing, " and ")+" signature is not complete")
	}
	return strings.Join(parts, "; ")
}

// recheck resolves j's tags again: a reason to fail when a tag moved or is
// gone, an error when the registry cannot answer now.
func (s *Service) recheck(ctx context.Context, j *job) (string, error) {
	for _, im := range j.r.Images {
		m, err := s.cfg.Images.Resolve(ctx, im.Ref)
		if errors.Is(err, ErrTagNotFound) {
			return fmt.Sprintf("tag %s no longer exists in the registry; nothing was signed", im.Ref), nil
		}
		if err != nil {
			return "", fmt.Errorf("resolving %s again before signing: %w", im.Ref, err)
		}
		if m.Digest != im.Digest || m.Size != im.Size {
			return fmt.Sprintf("tag %s moved since the request was submitted: it pointed at %s (%d bytes) and now points at %s (%d bytes); nothing was signed",
				im.Ref, im.Digest, im.Size, m.Digest, m.Size), nil
		}
	}
	return "", nil
}

// loadRepo reads gun's current metadata, as the server stores it, into a
// trust.Repo to build changes on (each file passed the server's
// validation when it was stored).
func (s *Service) loadRepo(ctx context.Context, gun string) (*trust.Repo, error) {
	v := trust.New(gun, s.now(), trust.Options{})
	get := func(role string) ([]byte, error) {
		b, err := s.cfg.Repos.Current(ctx, gun, role)
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil
		}
		return b, err
	}
	root, err := get(tuf.RoleRoot)
	if err != nil {
		return nil, err
	}
	if root == nil {
		return nil, fmt.Errorf("%w: repository %s has no trust data", errNotReady, gun)
	}
	if err := v.TrustRoot(root); err != nil {
		return nil, err
	}
	targets, err := get(tuf.RoleTargets)
	if err != nil {
		return nil, err
	}
	if targets == nil {
		return nil, fmt.Errorf("%w: repository %s has no targets", errNotReady, gun)
	}
	if err := v.TrustTargets(tuf.RoleTargets, targets); err != nil {
		return nil, err
	}
	snap, err := get(tuf.RoleSnapshot)
	if err != nil {
		return nil, err
	}
	if snap == nil {
		return v, nil
	}
	if err := v.TrustSnapshot(snap); err != nil {
		return nil, err
	}
	var roles []string
	for role := range v.Snapshot().Signed.Meta {
		if tuf.IsDelegation(role) {
			roles = append(roles, role)
		}
	}
	slices.SortFunc(roles, func(a, b string) int {
		if d := tuf.Depth(a) - tuf.Depth(b); d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	for _, role := range roles {
		if v.Targets(tuf.Parent(role)) == nil || v.Delegation(role) == nil {
			continue // no longer delegated
		}
		b, err := get(role)
		if err != nil {
			return nil, err
		}
		if b == nil {
			continue
		}
		if err := v.TrustTargets(role, b); err != nil {
			return nil, err
		}
	}
	return v, nil
}

var errNotReady = errors.New("not ready")

// delegationProblem says why v does not let keyID sign role and
// targets/releases alone, or "".
func delegationProblem(v *trust.Repo, role, keyID string) string {
	for _, r := range []string{role, policy.ReleasesRole} {
		d := v.Delegation(r)
		if d == nil {
			return fmt.Sprintf("the repository no longer delegates %s (the owner runs docker trust signer add)", r)
		}
		if !slices.Contains(d.KeyIDs, keyID) {
			return fmt.Sprintf("%s no longer lists the key %s", r, shortID(keyID))
		}
		if d.Threshold > 1 {
			return fmt.Sprintf("%s needs %d signatures and the service signs once", r, d.Threshold)
		}
	}
	return ""
}

// pathProblem reports a tag of j outside the paths delegated to its roles.
func pathProblem(v *trust.Repo, j *job) error {
	for _, im := range j.r.Images {
		for _, role := range []string{j.role, policy.ReleasesRole} {
			if !tuf.PathAllowed(v.Paths(role), im.Tag) {
				return fmt.Errorf("tag %s is outside the paths %q delegated to %s", im.Tag, v.Paths(role), role)
			}
		}
	}
	return nil
}

func targetMeta(im Image) (tuf.FileMeta, error) {
	sum, err := hex.DecodeString(strings.TrimPrefix(im.Digest, "sha256:"))
	if err != nil || len(sum) != 32 {
		return tuf.FileMeta{}, fmt.Errorf("digest %q is not sha256:<hex>", im.Digest)
	}
	return tuf.FileMeta{Length: im.Size, Hashes: map[string][]byte{"sha256": sum}}, nil
}

// changesOf are j's changes: each image's tag, digest and size into the
// signer's role and targets/releases, as docker trust sign writes them.
func changesOf(j *job) ([]changes.Change, error) {
	var cs []changes.Change
	for _, im := range j.r.Images {
		meta, err := targetMeta(im)
		if err != nil {
			return nil, err
		}
		for _, role := range []string{j.role, policy.ReleasesRole} {
			cs = append(cs, changes.AddTarget{Role: role, Name: im.Tag, Meta: meta})
		}
	}
	return cs, nil
}

// signedIn reports whether v already lists every image of j in both roles
// with its digest and size (a publish that committed before a crash).
func signedIn(v *trust.Repo, j *job) bool {
	for _, im := range j.r.Images {
		want, err := targetMeta(im)
		if err != nil {
			return false
		}
		for _, role := range []string{j.role, policy.ReleasesRole} {
			got, ok := v.RoleTarget(role, im.Tag)
			if !ok || got.Length != want.Length || hex.EncodeToString(got.Hashes["sha256"]) != hex.EncodeToString(want.Hashes["sha256"]) {
				return false
			}
		}
	}
	return true
}

// custodyKeys lends the project keys of a round to the client's signing,
// and nothing else (the snapshot is left to the server).
type custodyKeys struct {
	s   *Service
	gun string
	ids map[string]bool
}

func (k custodyKeys) Signer(ctx context.Context, id string) (crypto.Signer, bool, error) {
	if !k.ids[id] {
		return nil, false, nil
	}
	sg, err := k.s.cfg.Keys.Signer(ctx, k.gun, id)
	if errors.Is(err, custody.ErrNotHeld) {
		return nil, false, fmt.Errorf("%w: the key custodian does not hold the project key %s", errKeyGone, shortID(id))
	}
	if err != nil {
		return nil, false, err
	}
	return sg, true, nil
}

var errKeyGone = errors.New("key not held")

// publish signs one round of jobs of gun in one update, retrying when
// another writer published first. It returns the jobs published (or found
// published), with the role versions in their roles; the others were
// failed or kept for a retry.
func (s *Service) publish(ctx context.Context, gun string, jobs []*job) []*job {
	for try := 0; try < maxConflictTries; try++ {
		v, err := s.loadRepo(ctx, gun)
		if errors.Is(err, errNotReady) {
			for _, j := range jobs {
				s.fail(ctx, j, err.Error()+"; nothing was signed")
			}
			return nil
		}
		if err != nil {
			s.retryAll(ctx, jobs, err)
			return nil
		}
		w, err := client.NewWorking(v)
		if err != nil {
			s.retryAll(ctx, jobs, err)
			return nil
		}
		now := s.now()
		keysOf := custodyKeys{s: s, gun: gun, ids: map[string]bool{}}
		var toSign, already, live []*job
		for _, j := range jobs {
			if why := delegationProblem(v, j.role, j.keyID); why != "" {
				s.fail(ctx, j, why+"; nothing was signed")
				continue
			}
			if signedIn(v, j) {
				already = append(already, j)
				continue
			}
			// What would refuse j's changes is checked first, so that a
			// request that cannot apply fails alone.
			err := pathProblem(v, j)
			var cs []changes.Change
			if err == nil {
				cs, err = changesOf(j)
			}
			if err == nil {
				err = w.Apply(cs, now)
			}
			if err != nil {
				s.fail(ctx, j, fmt.Sprintf("the signature cannot be made: %v; nothing was signed", err))
				continue
			}
			keysOf.ids[j.keyID] = true
			toSign = append(toSign, j)
		}
		live = append(already, toSign...)
		if len(toSign) == 0 {
			return withRoles(v, already, nil)
		}
		files, err := w.Sign(ctx, keysOf, now)
		if err != nil {
			if errors.Is(err, errKeyGone) || errors.Is(err, client.ErrNoKey) {
				for _, j := range live {
					s.fail(ctx, j, err.Error()+"; nothing was signed")
				}
				return nil
			}
			s.retryAll(ctx, live, fmt.Errorf("signing: %w", err))
			return nil
		}
		stored, err := s.cfg.Repos.Publish(ctx, gun, files)
		if errors.Is(err, store.ErrOldVersion) {
			s.log.DebugContext(ctx, "another writer published first; signing again on its version", "gun", gun, "try", try+1)
			continue
		}
		if err != nil {
			if errors.Is(err, store.ErrUnavailable) || isTransient(err) {
				s.retryAll(ctx, live, fmt.Errorf("publishing: %w", err))
				return nil
			}
			for _, j := range live {
				s.fail(ctx, j, fmt.Sprintf("the server refused the signed metadata: %v; nothing was signed", err))
			}
			return nil
		}
		return withRoles(v, live, stored)
	}
	s.retryAll(ctx, jobs, fmt.Errorf("%d publishes in a row lost to other writers of %s", maxConflictTries, gun))
	return nil
}

// withRoles sets the role versions of published jobs.
func withRoles(v *trust.Repo, jobs []*job, stored []store.File) []*job {
	for _, j := range jobs {
		j.roles = rolesOf(v, stored, j)
	}
	return jobs
}

// isTransient: an error that says nothing about the request (the signer
// or database not reachable now).
func isTransient(err error) bool {
	var te interface{ Temporary() bool }
	if errors.As(err, &te) && te.Temporary() {
		return true
	}
	var se interface{ StatusCode() int }
	if errors.As(err, &se) && se.StatusCode() >= 500 {
		return true
	}
	return errors.Is(err, context.DeadlineExceeded)
}

// rolesOf are the role versions a publish stored (or, for a publish
// before a crash, the current versions of the roles a job signs).
func rolesOf(v *trust.Repo, stored []store.File, j *job) []SignedRole {
	if stored != nil {
		out := make([]SignedRole, 0, len(stored))
		for _, f := range stored {
			out = append(out, SignedRole{Role: f.Role, Version: int64(f.Version), SHA256: f.SHA256})
		}
		slices.SortFunc(out, func(a, b SignedRole) int { return strings.Compare(a.Role, b.Role) })
		return out
	}
	var out []SignedRole
	for _, role := range []string{j.role, policy.ReleasesRole} {
		if m := v.Targets(role); m != nil {
			fm := tuf.NewFileMeta(m.Raw)
			out = append(out, SignedRole{Role: role, Version: int64(m.Signed.Version), SHA256: hex.EncodeToString(fm.Hashes["sha256"])})
		}
	}
	return out
}

// signed records jobs as signed, in one transaction: one request.sign
// per image, with every format it was signed in.
func (s *Service) signed(ctx context.Context, jobs []*job) {
	if len(jobs) == 0 {
		return
	}
	var all Effects
	now := s.now()
	_, err := s.updateJobs(ctx, jobs, func(r *Request, j *job) (Effects, error) {
		if j.roles != nil {
			r.Signed = j.roles
		}
		r.Cosign = mergeCosign(r.Cosign, j.cosign)
		r.Done = slices.Clone(j.formats)
		r.Status, r.Reason, r.Updated, r.ClaimedBy, r.ClaimedUntil = StatusSigned, "", now, "", time.Time{}
		fx := Effects{Deliveries: s.deliveries(*r, j.pol, j.book, StatusSigned, "")}
		for _, im := range r.Images {
			subj := audit.Subject{RequestID: r.ID, Project: r.Project, Policy: r.Policy, GUN: im.GUN, Tag: im.Tag, Digest: im.Digest, Image: im.Ref}
			if j.has(FormatDCT) {
				subj.Role, subj.KeyID = j.role, j.keyID
			} else {
				subj.KeyID = j.proj.CosignKeyID
			}
			e := s.event(audit.RequestSign, audit.Actor{Kind: audit.ActorSystem, Name: "signing-service"}, subj)
			progressFields(&e, *r, im.Digest)
			fx.Events = append(fx.Events, e)
		}
		all.Events = append(all.Events, fx.Events...)
		all.Deliveries = append(all.Deliveries, fx.Deliveries...)
		return fx, nil
	})
	ids := make([]string, len(jobs))
	for i, j := range jobs {
		ids[i] = j.r.ID
	}
	if err != nil {
		s.log.ErrorContext(ctx, "recording signed requests failed; they will be found signed and recorded again", "requests", ids, "error", err.Error())
		return
	}
	s.committed(all)
	for _, j := range jobs {
		s.changed(j.r.ID)
	}
	s.log.InfoContext(ctx, "requests signed", "gun", jobs[0].proj.Repository, "requests", ids)
}

// progressFields records in e what r's signing did: the formats done, the
// DCT role versions, and the cosign signatures of digest ("" for all).
func progressFields(e *audit.Event, r Request, digest string) {
	for _, f := range r.Done {
		e.Formats = append(e.Formats, string(f))
	}
	if slices.Contains(r.Done, FormatDCT) {
		e.Roles = r.Signed
	}
	for _, c := range r.Cosign {
		if digest == "" || c.Digest == digest {
			e.Cosign = append(e.Cosign, c)
		}
	}
}

// mergeCosign adds the signatures of b to a, once each.
func mergeCosign(a, b []CosignSignature) []CosignSignature {
	out := slices.Clone(a)
	for _, c := range b {
		if !slices.ContainsFunc(out, func(o CosignSignature) bool { return o.Digest == c.Digest && o.Form == c.Form && o.KeyID == c.KeyID }) {
			out = append(out, c)
		}
	}
	return out
}

// fail records j as failed with reason.
func (s *Service) fail(ctx context.Context, j *job, reason string) {
	var fx Effects
	_, err := s.st.UpdateRequest(ctx, j.r.ID, func(r *Request) (Effects, error) {
		if r.Status.Final() {
			return Effects{}, ErrUnchanged
		}
		r.Status, r.Reason, r.Updated, r.ClaimedBy, r.ClaimedUntil = StatusFailed, reason, s.now(), "", time.Time{}
		r.Cosign = mergeCosign(r.Cosign, j.cosign)
		e := s.event(audit.RequestFail, audit.Actor{Kind: audit.ActorSystem, Name: "signing-service"}, audit.Subject{RequestID: r.ID, Project: r.Project, Policy: r.Policy})
		e.Reason = reason
		progressFields(&e, *r, "")
		fx = Effects{Events: []audit.Event{e}, Deliveries: s.deliveries(*r, j.pol, j.book, StatusFailed, reason)}
		return fx, nil
	})
	if err != nil {
		s.log.ErrorContext(ctx, "recording a failed request failed", "request", j.r.ID, "error", err.Error())
		return
	}
	s.committed(fx)
	s.changed(j.r.ID)
	s.log.InfoContext(ctx, "request failed", "request", j.r.ID, "reason", reason)
}

func (s *Service) retryAll(ctx context.Context, jobs []*job, cause error) {
	for _, j := range jobs {
		s.retryLater(ctx, j.r, cause)
	}
}

// retryLater keeps a job that failed for a transient cause for another
// attempt after a backoff, or fails it after MaxAttempts.
func (s *Service) retryLater(ctx context.Context, req Request, cause error) {
	var fx Effects
	var pol Policy
	var book mailbook
	if p, err := s.st.GetPolicy(ctx, req.Project, req.Policy); err == nil {
		pol, book = p, s.mailbook(ctx, p, req.Submitter)
	}
	_, err := s.st.UpdateRequest(ctx, req.ID, func(r *Request) (Effects, error) {
		if r.Status != StatusSigning {
			return Effects{}, ErrUnchanged
		}
		r.Attempts++
		now := s.now()
		if r.Attempts >= s.cfg.MaxAttempts {
			reason := fmt.Sprintf("signing failed %d times: %v; %s", r.Attempts, cause, progressNote(*r, nil))
			r.Status, r.Reason, r.Updated, r.ClaimedBy, r.ClaimedUntil = StatusFailed, reason, now, "", time.Time{}
			e := s.event(audit.RequestFail, audit.Actor{Kind: audit.ActorSystem, Name: "signing-service"}, audit.Subject{RequestID: r.ID, Project: r.Project, Policy: r.Policy})
			e.Reason = reason
			progressFields(&e, *r, "")
			fx = Effects{Events: []audit.Event{e}, Deliveries: s.deliveries(*r, pol, book, StatusFailed, reason)}
			return fx, nil
		}
		backoff := min(time.Second<<r.Attempts, time.Minute)
		r.ClaimedUntil = now.Add(backoff)
		return Effects{}, nil
	})
	if err != nil {
		s.log.ErrorContext(ctx, "recording a signing attempt failed", "request", req.ID, "error", err.Error())
		return
	}
	s.committed(fx)
	s.changed(req.ID)
	s.log.WarnContext(ctx, "signing attempt failed; will retry", "request", req.ID, "error", cause.Error())
}
