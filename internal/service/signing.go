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

// job is a claimed request with what signing it needs.
type job struct {
	r     Request
	proj  Project
	pol   Policy
	role  string // targets/<signer>
	keyID string
	book  mailbook
}

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
	return &job{r: r, proj: proj, pol: pol, role: policy.Signer(pol.SignerName(proj)).Role(), keyID: pol.SigningKey(proj),
		book: s.mailbook(ctx, pol, r.Submitter)}, nil
}

// signGUN signs the jobs of one repository.
func (s *Service) signGUN(ctx context.Context, gun string, jobs []*job) {
	unlock := s.lockGUN(gun)
	defer unlock()
	// Right before signing, each tag must still point at the digest it
	// pointed at when the request was submitted.
	type checked struct {
		reason string
		err    error
	}
	results := make([]checked, len(jobs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8) // registry requests at once
	for i, j := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			results[i].reason, results[i].err = s.recheck(ctx, j)
		}()
	}
	wg.Wait()
	var ok []*job
	for i, j := range jobs {
		switch c := results[i]; {
		case c.err != nil:
			s.retryLater(ctx, j.r, c.err)
		case c.reason != "":
			s.fail(ctx, j, c.reason)
		default:
			ok = append(ok, j)
		}
	}
	// Publish in rounds in which no tag is signed twice, oldest request
	// first, so that a newer request for a tag wins, as it would one
	// publish at a time.
	for len(ok) > 0 {
		var round, rest []*job
		taken := map[string]bool{}
		for _, j := range ok {
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
		s.publish(ctx, gun, round)
		ok = rest
	}
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
// another writer published first.
func (s *Service) publish(ctx context.Context, gun string, jobs []*job) {
	for try := 0; try < maxConflictTries; try++ {
		v, err := s.loadRepo(ctx, gun)
		if errors.Is(err, errNotReady) {
			for _, j := range jobs {
				s.fail(ctx, j, err.Error())
			}
			return
		}
		if err != nil {
			s.retryAll(ctx, jobs, err)
			return
		}
		w, err := client.NewWorking(v)
		if err != nil {
			s.retryAll(ctx, jobs, err)
			return
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
			s.signed(ctx, v, already, nil)
			return
		}
		files, err := w.Sign(ctx, keysOf, now)
		if err != nil {
			if errors.Is(err, errKeyGone) || errors.Is(err, client.ErrNoKey) {
				for _, j := range live {
					s.fail(ctx, j, err.Error())
				}
				return
			}
			s.retryAll(ctx, live, fmt.Errorf("signing: %w", err))
			return
		}
		stored, err := s.cfg.Repos.Publish(ctx, gun, files)
		if errors.Is(err, store.ErrOldVersion) {
			s.log.DebugContext(ctx, "another writer published first; signing again on its version", "gun", gun, "try", try+1)
			continue
		}
		if err != nil {
			if errors.Is(err, store.ErrUnavailable) || isTransient(err) {
				s.retryAll(ctx, live, fmt.Errorf("publishing: %w", err))
				return
			}
			for _, j := range live {
				s.fail(ctx, j, fmt.Sprintf("the server refused the signed metadata: %v", err))
			}
			return
		}
		s.signed(ctx, v, live, stored)
		return
	}
	s.retryAll(ctx, jobs, fmt.Errorf("%d publishes in a row lost to other writers of %s", maxConflictTries, gun))
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

// signed records jobs as signed, in one transaction.
func (s *Service) signed(ctx context.Context, v *trust.Repo, jobs []*job, stored []store.File) {
	if len(jobs) == 0 {
		return
	}
	byID := make(map[string]*job, len(jobs))
	ids := make([]string, 0, len(jobs))
	for _, j := range jobs {
		byID[j.r.ID], ids = j, append(ids, j.r.ID)
	}
	var all Effects
	_, err := s.st.UpdateRequests(ctx, ids, func(r *Request) (Effects, error) {
		j := byID[r.ID]
		if r.Status != StatusSigning {
			return Effects{}, ErrUnchanged
		}
		roles := rolesOf(v, stored, j)
		now := s.now()
		r.Status, r.Signed, r.Reason, r.Updated, r.ClaimedBy, r.ClaimedUntil = StatusSigned, roles, "", now, "", time.Time{}
		fx := Effects{Deliveries: s.deliveries(*r, j.pol, j.book, StatusSigned, "")}
		for _, im := range r.Images {
			e := s.event(audit.RequestSign, audit.Actor{Kind: audit.ActorSystem, Name: "signing-service"}, audit.Subject{
				RequestID: r.ID, Project: r.Project, Policy: r.Policy, GUN: im.GUN, Tag: im.Tag, Digest: im.Digest, Role: j.role, KeyID: j.keyID, Image: im.Ref})
			e.Roles = roles
			fx.Events = append(fx.Events, e)
		}
		all.Events = append(all.Events, fx.Events...)
		all.Deliveries = append(all.Deliveries, fx.Deliveries...)
		return fx, nil
	})
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

// fail records j as failed with reason.
func (s *Service) fail(ctx context.Context, j *job, reason string) {
	var fx Effects
	_, err := s.st.UpdateRequest(ctx, j.r.ID, func(r *Request) (Effects, error) {
		if r.Status.Final() {
			return Effects{}, ErrUnchanged
		}
		r.Status, r.Reason, r.Updated, r.ClaimedBy, r.ClaimedUntil = StatusFailed, reason, s.now(), "", time.Time{}
		e := s.event(audit.RequestFail, audit.Actor{Kind: audit.ActorSystem, Name: "signing-service"}, audit.Subject{RequestID: r.ID, Project: r.Project, Policy: r.Policy})
		e.Reason = reason
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
			reason := fmt.Sprintf("signing failed %d times: %v; nothing was signed", r.Attempts, cause)
			r.Status, r.Reason, r.Updated, r.ClaimedBy, r.ClaimedUntil = StatusFailed, reason, now, "", time.Time{}
			e := s.event(audit.RequestFail, audit.Actor{Kind: audit.ActorSystem, Name: "signing-service"}, audit.Subject{RequestID: r.ID, Project: r.Project, Policy: r.Policy})
			e.Reason = reason
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
