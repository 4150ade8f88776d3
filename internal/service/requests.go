package service

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/signet-trust/signet/internal/audit"
	"github.com/signet-trust/signet/internal/service/serviceapi"
	"github.com/signet-trust/signet/internal/store"
)

// Bounds of a submission.
const (
	maxImages     = 50
	maxParameters = 32
	maxParamLen   = 1024
	maxOrigin     = 64  // claims kept from an ID token
	maxClaimLen   = 512 // longest claim value kept
)

var digestPattern = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// runClaims are the ID token claims that identify a CI run (GitHub's
// run_id, GitLab's pipeline_id): a re-run of the same job attaches to the
// pending request of the first.
var runClaims = []string{"run_id", "pipeline_id"}

// submitter is who a submission comes from.
type submitter struct {
	user     string
	identity OriginIdentity
	ci       bool
}

func (sb submitter) actor() audit.Actor {
	if sb.ci {
		return audit.Actor{Kind: audit.ActorCI, Issuer: sb.identity.Issuer, Subject: sb.identity.Subject}
	}
	return audit.Actor{Kind: audit.ActorUser, Name: sb.user}
}

// checkSubmitter holds p to the policy's rule on who submits: a CI ID
// token matching the origin rule, or the API token of a listed submitter.
func (s *Service) checkSubmitter(ctx context.Context, p Principal, pol Policy) (submitter, error) {
	if pol.Origin == nil {
		if p.Kind != KindUser {
			return submitter{}, forbidden("policy %s/%s takes submissions from its submitters' API tokens", pol.Project, pol.Name)
		}
		if !slices.Contains(pol.Submitters, p.User.Name) {
			return submitter{}, forbidden("%s is not a submitter of policy %s/%s", p.User.Name, pol.Project, pol.Name)
		}
		return submitter{user: p.User.Name}, nil
	}
	if p.Kind != KindCI {
		return submitter{}, apiErr(http.StatusUnauthorized, serviceapi.CodeInvalidIDToken,
			"policy %s/%s takes submissions from CI only: send the CI's OIDC ID token from %s (audience %q) as the bearer token",
			pol.Project, pol.Name, pol.Origin.Issuer, pol.Origin.Audience)
	}
	if s.cfg.Origins == nil {
		return submitter{}, apiErr(http.StatusServiceUnavailable, serviceapi.CodeUnavailable, "this server does not verify CI ID tokens")
	}
	id, err := s.cfg.Origins.Verify(ctx, p.Raw, *pol.Origin)
	switch {
	case err == nil:
		return submitter{ci: true, identity: keepClaims(id)}, nil
	case errors.Is(err, ErrOriginMismatch):
		// A valid token of another repository or branch: an attempt worth
		// recording. Invalid tokens are not recorded (anyone can send
		// one), only logged.
		e := s.event(audit.OriginRefuse, audit.Actor{Kind: audit.ActorSystem, Name: "origin-check"}, audit.Subject{Project: pol.Project, Policy: pol.Name})
		e.Reason = err.Error()
		if aerr := s.st.Commit(ctx, Effects{Events: []audit.Event{e}}); aerr != nil {
			return submitter{}, asError(aerr, "")
		}
		s.committed(Effects{Events: []audit.Event{e}})
		return submitter{}, apiErr(http.StatusForbidden, serviceapi.CodeOriginMismatch, "the ID token does not match the origin of policy %s/%s: %v", pol.Project, pol.Name, err)
	case errors.Is(err, ErrOriginInvalid):
		s.log.InfoContext(ctx, "submission with an invalid ID token refused", "project", pol.Project, "policy", pol.Name, "error", err.Error())
		return submitter{}, apiErr(http.StatusUnauthorized, serviceapi.CodeInvalidIDToken, "%v", err)
	}
	return submitter{}, asError(err, "")
}

// keepClaims bounds what is kept of a token's claims: the scalar ones, at
// most maxOrigin, none longer than maxClaimLen, without the times.
func keepClaims(id OriginIdentity) OriginIdentity {
	names := make([]string, 0, len(id.Claims))
	for k := range id.Claims {
		switch k {
		case "exp", "iat", "nbf", "jti":
			continue
		}
		if len(id.Claims[k]) <= maxClaimLen && k != "" {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	if len(names) > maxOrigin {
		names = names[:maxOrigin]
	}
	kept := make(map[string]string, len(names))
	for _, k := range names {
		kept[k] = id.Claims[k]
	}
	id.Claims = kept
	return id
}

// checkRate refuses a submission beyond the project's hourly limit.
func (s *Service) checkRate(ctx context.Context, proj Project) error {
	limit := proj.RateLimit
	if limit <= 0 {
		limit = s.cfg.DefaultRateLimit
	}
	n, err := s.st.CountRequests(ctx, proj.Name, s.now().Add(-time.Hour))
	if err != nil {
		return asError(err, "")
	}
	if n >= limit {
		return &Error{Status: http.StatusTooManyRequests, Code: serviceapi.CodeRateLimited, RetryAfter: time.Minute,
			Message: fmt.Sprintf("project %s accepts %d signing requests per hour and has had %d; retry later", proj.Name, limit, n)}
	}
	return nil
}

// resolveImages checks each image against the project and policy and
// resolves its tag in the registry; a given digest that differs is
// refused.
func (s *Service) resolveImages(ctx context.Context, proj Project, pol Policy, refs []serviceapi.ImageRef) ([]Image, error) {
	var tags *regexp.Regexp
	if pol.Tags != "" {
		var err error
		if tags, err = tagPattern(pol.Tags); err != nil {
			return nil, asError(err, "")
		}
	}
	var out []Image
	for _, ref := range refs {
		name, err := s.cfg.Images.Parse(ref.Image)
		if err != nil {
			return nil, badRequest("image %q is not an image reference: %v", ref.Image, err)
		}
		if name.GUN != proj.Repository {
			return nil, badRequest("image %s is in repository %s, not in project %s's repository %s", ref.Image, name.GUN, proj.Name, proj.Repository)
		}
		if name.Tag == "" {
			return nil, badRequest("image %s names no tag: the service signs a tag (REPOSITORY:TAG), giving the digest it must point at with digest", ref.Image)
		}
		if name.Digest != "" {
			return nil, badRequest("image %s: give the digest in the digest field, not in the reference", ref.Image)
		}
		if ref.Digest != "" && !digestPattern.MatchString(ref.Digest) {
			return nil, badRequest("digest %q is not sha256:<64 lowercase hex digits>", ref.Digest)
		}
		if tags != nil && !tags.MatchString(name.Tag) {
			return nil, apiErr(http.StatusForbidden, serviceapi.CodeTagNotAllowed, "tag %s is not allowed by policy %s/%s (tags must match %s)", name.Tag, pol.Project, pol.Name, pol.Tags)
		}
		if slices.ContainsFunc(out, func(im Image) bool { return im.Tag == name.Tag }) {
			return nil, badRequest("tag %s is named twice", name.Tag)
		}
		m, err := s.cfg.Images.Resolve(ctx, ref.Image)
		if err != nil {
			return nil, registryError(ref.Image, err)
		}
		if ref.Digest != "" && ref.Digest != m.Digest {
			return nil, apiErr(http.StatusConflict, serviceapi.CodeDigestMismatch,
				"tag %s points at %s in the registry, not at %s as the submission says; nothing was signed", ref.Image, m.Digest, ref.Digest)
		}
		out = append(out, Image{Ref: ref.Image, GUN: name.GUN, Tag: name.Tag, Digest: m.Digest, Size: m.Size, MediaType: m.MediaType})
	}
	return out, nil
}

func registryError(image string, err error) *Error {
	switch {
	case errors.Is(err, ErrTagNotFound):
		return badRequest("tag %s does not exist in the registry (push the image first)", image)
	case errors.Is(err, ErrRegistryAuth):
		return &Error{Status: http.StatusBadGateway, Code: serviceapi.CodeRegistry, Err: err,
			Message: fmt.Sprintf("the registry refused the service's credentials for %s; configure them for the service (docker config of signet-server)", image)}
	}
	return &Error{Status: http.StatusBadGateway, Code: serviceapi.CodeRegistry, Err: err,
		Message: fmt.Sprintf("the registry could not resolve %s: %v", image, err)}
}

// checkReady refuses a submission the service could not sign: for DCT, a
// repository without trust data, whose snapshot key the client holds, or
// that does not delegate to the signer's key; for cosign, a registry that
// refuses the service's push to the repository.
func (s *Service) checkReady(ctx context.Context, proj Project, pol Policy) error {
	formats := formatsOf(pol)
	if slices.Contains(formats, FormatDCT) {
		st, err := s.repoState(ctx, proj.Repository, pol.SignerName(proj), pol.SigningKey(proj))
		if err != nil {
			return asError(err, "")
		}
		if !st.Ready {
			return apiErr(http.StatusConflict, serviceapi.CodeNotReady, "repository %s is not ready for the service to sign as %s: %s", proj.Repository, pol.SignerName(proj), st.Fix)
		}
	}
	if slices.Contains(formats, FormatCosign) {
		if s.cfg.Cosign == nil || proj.CosignKeyID == "" {
			return apiErr(http.StatusServiceUnavailable, serviceapi.CodeUnavailable, "this server does not write cosign signatures (policy %s/%s has the cosign format)", pol.Project, pol.Name)
		}
		if err := s.cfg.Cosign.CheckPush(ctx, proj.Repository); err != nil {
			return pushError(proj.Repository, err)
		}
	}
	return nil
}

// pushError is a registry's refusal of the service's push for the cosign
// format, for the API.
func pushError(repo string, err error) *Error {
	if errors.Is(err, ErrRegistryAuth) {
		return &Error{Status: http.StatusBadGateway, Code: serviceapi.CodeRegistry, Err: err,
			Message: fmt.Sprintf("the registry refuses the service's push to %s, which the cosign signature needs; give the service's credentials (docker config of signet-server) push access", repo)}
	}
	return &Error{Status: http.StatusBadGateway, Code: serviceapi.CodeRegistry, Err: err,
		Message: fmt.Sprintf("the registry could not tell whether the service may push to %s (for the cosign signature): %v", repo, err)}
}

// runKey is the idempotency key of a submission: the same policy, images
// (tag and digest) and run of the same CI identity or user.
func runKey(pol Policy, sb submitter, images []Image, runID string) string {
	if sb.ci {
		for _, c := range runClaims {
			if v := sb.identity.Claims[c]; v != "" {
				runID = c + "=" + v
				break
			}
		}
	}
	if runID == "" {
		return ""
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00%s\x00%s\x00", pol.Project, pol.Name, sb.user, sb.identity.Issuer, sb.identity.Subject, runID)
	for _, im := range images {
		fmt.Fprintf(h, "%s@%s\x00", im.Tag, im.Digest)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func checkSubmitInput(in serviceapi.Submit) ([]serviceapi.ImageRef, error) {
	if !ValidName(in.Project) || !ValidName(in.Policy) {
		return nil, badRequest("project and policy are names (lowercase letters, digits, '.', '_', '-')")
	}
	refs := in.Images
	switch {
	case in.Image != "" && len(in.Images) > 0:
		return nil, badRequest("give image (with digest) or images, not both")
	case in.Image != "":
		refs = []serviceapi.ImageRef{{Image: in.Image, Digest: in.Digest}}
	case in.Digest != "":
		return nil, badRequest("digest goes with image")
	case len(refs) == 0:
		return nil, badRequest("no image: give image (REGISTRY/REPOSITORY:TAG)")
	case len(refs) > maxImages:
		return nil, badRequest("at most %d images per request", maxImages)
	}
	if err := checkDescription("the description", in.Description, 2000); err != nil {
		return nil, err
	}
	if len(in.Parameters) > maxParameters {
		return nil, badRequest("at most %d parameters", maxParameters)
	}
	for k, v := range in.Parameters {
		if k == "" || len(k) > 64 {
			return nil, badRequest("parameter names are 1 to 64 bytes")
		}
		if err := checkDescription("parameter "+k, v, maxParamLen); err != nil {
			return nil, err
		}
	}
	if err := checkDescription("run_id", in.RunID, 200); err != nil {
		return nil, err
	}
	return refs, nil
}

// submitEvents records a new request: one request.submit per image.
func (s *Service) submitEvents(r Request, actor audit.Actor, comment string) []audit.Event {
	var out []audit.Event
	for _, im := range r.Images {
		e := s.event(audit.RequestSubmit, actor, audit.Subject{RequestID: r.ID, Project: r.Project, Policy: r.Policy,
			GUN: im.GUN, Tag: im.Tag, Digest: im.Digest, Image: im.Ref})
		e.Origin, e.Comment = r.Origin, comment
		out = append(out, e)
	}
	return out
}

// Submit creates a signing request. created is false when a pending
// request of the same CI run was returned instead.
func (s *Service) Submit(ctx context.Context, p Principal, in serviceapi.Submit) (out serviceapi.Request, created bool, err error) {
	refs, err := checkSubmitInput(in)
	if err != nil {
		return out, false, err
	}
	proj, err := s.st.GetProject(ctx, in.Project)
	if err != nil {
		return out, false, asError(err, "project "+in.Project)
	}
	pol, err := s.st.GetPolicy(ctx, in.Project, in.Policy)
	if err != nil {
		return out, false, asError(err, "policy "+in.Project+"/"+in.Policy)
	}
	sb, err := s.checkSubmitter(ctx, p, pol)
	if err != nil {
		return out, false, err
	}
	if err := s.checkRate(ctx, proj); err != nil {
		return out, false, err
	}
	if err := s.checkReady(ctx, proj, pol); err != nil {
		return out, false, err
	}
	images, err := s.resolveImages(ctx, proj, pol, refs)
	if err != nil {
		return out, false, err
	}
	now := s.now()
	r := Request{
		ID: s.ids.next(now), Project: proj.Name, Policy: pol.Name, Status: StatusAwaitingApproval, Images: images,
		Submitter: sb.user, Origin: sb.identity.Claims, OriginIssuer: sb.identity.Issuer, OriginSubject: sb.identity.Subject,
		RunKey: runKey(pol, sb, images, in.RunID), Description: in.Description, Parameters: in.Parameters,
		Created: now, Updated: now, Expires: now.Add(s.expiry(pol)),
	}
	return s.create(ctx, r, pol, sb.actor(), "")
}

func (s *Service) expiry(pol Policy) time.Duration {
	if pol.Expiry > 0 {
		return pol.Expiry
	}
	return s.cfg.DefaultExpiry
}

// create stores a new request (signing at once when the policy needs no
// approval) with its status token, and answers with it.
func (s *Service) create(ctx context.Context, r Request, pol Policy, actor audit.Actor, comment string) (serviceapi.Request, bool, error) {
	statusToken := randomToken(statusTokenPrefix)
	r.StatusTokenHash = tokenHash(statusToken)
	r.Formats = slices.Clone(formatsOf(pol))
	book := s.mailbook(ctx, pol, r.Submitter)
	fx := Effects{Events: s.submitEvents(r, actor, comment)}
	if pol.Required == 0 {
		r.Status = StatusSigning
	} else {
		fx.Deliveries = s.deliveries(r, pol, book, StatusAwaitingApproval, "")
	}
	got, created, err := s.st.CreateRequest(ctx, r, fx)
	if err != nil {
		return serviceapi.Request{}, false, asError(err, "policy "+r.Project+"/"+r.Policy)
	}
	if !created {
		// A re-run of the same CI job: it gets the pending request, with a
		// status token of its own (the first run's stops working).
		got, err = s.st.UpdateRequest(ctx, got.ID, func(q *Request) (Effects, error) {
			q.StatusTokenHash = r.StatusTokenHash
			return Effects{}, nil
		})
		if err != nil {
			return serviceapi.Request{}, false, asError(err, "")
		}
	} else {
		s.committed(fx)
	}
	if got.Status == StatusSigning {
		s.wake()
		got, err = s.waitFinal(ctx, got.ID, s.cfg.SyncWait)
		if err != nil {
			return serviceapi.Request{}, false, asError(err, "")
		}
	}
	out := requestOut(got, pol.Required)
	out.StatusToken = statusToken
	return out, created, nil
}

func requestOut(r Request, required int) serviceapi.Request {
	out := serviceapi.Request{
		ID: r.ID, Project: r.Project, Policy: r.Policy, Status: string(r.Status), Images: []serviceapi.Image{},
		Submitter: r.SubmitterName(), Origin: r.Origin, Approvals: []serviceapi.Decision{}, Denials: []serviceapi.Decision{},
		Required: required, Description: r.Description, Parameters: r.Parameters, Reason: r.Reason,
		ResubmittedFrom: r.ResubmittedFrom, Created: r.Created, Updated: r.Updated, Expires: r.Expires,
	}
	for _, im := range r.Images {
		out.Images = append(out.Images, serviceapi.Image{Image: im.Ref, Tag: im.Tag, Digest: im.Digest, Size: im.Size, MediaType: im.MediaType})
	}
	if len(r.Images) > 0 {
		out.Image, out.Digest = r.Images[0].Ref, r.Images[0].Digest
	}
	for _, d := range r.Approvals {
		out.Approvals = append(out.Approvals, serviceapi.Decision(d))
	}
	for _, d := range r.Denials {
		out.Denials = append(out.Denials, serviceapi.Decision(d))
	}
	for _, sr := range r.Signed {
		out.Signed = append(out.Signed, serviceapi.SignedRole{Role: sr.Role, Version: sr.Version, SHA256: sr.SHA256})
	}
	for _, f := range r.Formats {
		out.Formats = append(out.Formats, string(f))
	}
	for _, f := range r.Done {
		out.Done = append(out.Done, string(f))
	}
	for _, c := range r.Cosign {
		out.Cosign = append(out.Cosign, serviceapi.CosignSignature{Digest: c.Digest, Form: c.Form, Ref: c.Ref, KeyID: c.KeyID, Existing: c.Existing})
	}
	return out
}

// out shows a request with its policy's approval count.
func (s *Service) out(ctx context.Context, r Request) serviceapi.Request {
	required := 0
	if pol, err := s.st.GetPolicy(ctx, r.Project, r.Policy); err == nil {
		required = pol.Required
	}
	return requestOut(r, required)
}

// mayReadRequest: readers, those who may read its project, its submitter,
// the holder of its status token, and a CI whose ID token its policy's
// origin accepts.
func (s *Service) mayReadRequest(ctx context.Context, p Principal, r Request) error {
	switch p.Kind {
	case KindStatusToken:
		if subtle.ConstantTimeCompare(tokenHash(p.Raw), r.StatusTokenHash) == 1 {
			return nil
		}
		return forbidden("the status token is not this request's")
	case KindCI:
		pol, err := s.st.GetPolicy(ctx, r.Project, r.Policy)
		if err != nil || pol.Origin == nil || s.cfg.Origins == nil {
			return forbidden("an ID token reads only requests of a policy with an origin")
		}
		if _, err := s.cfg.Origins.Verify(ctx, p.Raw, *pol.Origin); err != nil {
			if errors.Is(err, ErrOriginInvalid) {
				return apiErr(http.StatusUnauthorized, serviceapi.CodeInvalidIDToken, "%v", err)
			}
			if errors.Is(err, ErrOriginMismatch) {
				return forbidden("the ID token does not match the origin of policy %s/%s", r.Project, r.Policy)
			}
			return asError(err, "")
		}
		return nil
	}
	if p.Kind == KindUser && r.Submitter == p.User.Name {
		return nil
	}
	proj, err := s.st.GetProject(ctx, r.Project)
	if errors.Is(err, store.ErrNotFound) {
		if p.Reader() {
			return nil
		}
		return forbidden("request %s is not one you may read", r.ID)
	}
	if err != nil {
		return asError(err, "")
	}
	ok, err := s.mayRead(ctx, p, proj)
	if err != nil {
		return asError(err, "")
	}
	if !ok {
		return forbidden("request %s is not one you may read", r.ID)
	}
	return nil
}

// GetRequest reads a request.
func (s *Service) GetRequest(ctx context.Context, p Principal, id string) (serviceapi.Request, error) {
	r, err := s.st.GetRequest(ctx, id)
	if err != nil {
		return serviceapi.Request{}, asError(err, "request "+id)
	}
	if err := s.mayReadRequest(ctx, p, r); err != nil {
		return serviceapi.Request{}, err
	}
	return s.out(ctx, r), nil
}

// ListRequests lists requests newest first, a page at a time.
func (s *Service) ListRequests(ctx context.Context, p Principal, f RequestFilter) ([]Request, error) {
	if f.Status != "" && !f.Status.Valid() {
		return nil, badRequest("status %q: use one of %v", f.Status, Statuses)
	}
	visible, err := s.visibleProjects(ctx, p)
	if err != nil {
		return nil, asError(err, "")
	}
	f.Projects = visible
	rs, err := s.st.ListRequests(ctx, f)
	if err != nil {
		return nil, asError(err, "")
	}
	return rs, nil
}

// decide is the common part of approve and deny: the request must await
// approval, and p must be a user who approves for its policy.
func (s *Service) decisionCheck(p Principal, r Request, pol Policy, verb string) error {
	if p.Kind != KindUser {
		return forbidden("requests are %s by people, with their own API tokens", verb)
	}
	if !slices.Contains(pol.Approvers, p.User.Name) {
		return forbidden("%s is not an approver of policy %s/%s", p.User.Name, pol.Project, pol.Name)
	}
	return nil
}

func pendingError(r Request) error {
	switch r.Status {
	case StatusDenied:
		who := ""
		if len(r.Denials) > 0 {
			who = " by " + r.Denials[0].User
		}
		return conflict("request %s was denied%s; one denial ends it, and later approvals change nothing", r.ID, who)
	case StatusSigning:
		return conflict("request %s is approved and being signed", r.ID)
	}
	return conflict("request %s is %s, no longer awaiting approval", r.ID, r.Status)
}

// expire turns r (awaiting approval past its expiry) into expired.
func (s *Service) expire(r *Request, pol Policy, book mailbook) Effects {
	r.Status, r.Reason, r.Updated = StatusExpired, fmt.Sprintf("no decision within %v", r.Expires.Sub(r.Created).Round(time.Second)), s.now()
	e := s.event(audit.RequestExpire, audit.System, audit.Subject{RequestID: r.ID, Project: r.Project, Policy: r.Policy})
	e.Reason = r.Reason
	return Effects{Events: []audit.Event{e}, Deliveries: s.deliveries(*r, pol, book, StatusExpired, r.Reason)}
}

// decide applies an approval or a denial.
func (s *Service) decide(ctx context.Context, p Principal, id, comment string, approve bool) (serviceapi.Request, error) {
	if err := checkDescription("the comment", comment, 2000); err != nil {
		return serviceapi.Request{}, err
	}
	cur, err := s.st.GetRequest(ctx, id)
	if err != nil {
		return serviceapi.Request{}, asError(err, "request "+id)
	}
	pol, err := s.st.GetPolicy(ctx, cur.Project, cur.Policy)
	if err != nil {
		return serviceapi.Request{}, asError(err, "policy "+cur.Project+"/"+cur.Policy)
	}
	verb := map[bool]string{true: "approved", false: "denied"}[approve]
	if err := s.decisionCheck(p, cur, pol, verb); err != nil {
		return serviceapi.Request{}, err
	}
	book := s.mailbook(ctx, pol, cur.Submitter)
	var fx Effects
	expired := false
	r, err := s.st.UpdateRequest(ctx, id, func(r *Request) (Effects, error) {
		fx, expired = Effects{}, false
		if r.Status != StatusAwaitingApproval {
			return Effects{}, pendingError(*r)
		}
		now := s.now()
		if !now.Before(r.Expires) {
			fx, expired = s.expire(r, pol, book), true
			return fx, nil
		}
		user := p.User.Name
		if approve && user == r.Submitter {
			return Effects{}, forbidden("%s submitted request %s and cannot approve it; another approver must", user, r.ID)
		}
		d := Decision{User: user, Time: now, Comment: comment}
		if approve {
			if r.ApprovedBy(user) {
				return Effects{}, ErrUnchanged // counted once
			}
			r.Approvals = append(r.Approvals, d)
			e := s.event(audit.RequestApprove, p.Actor(), audit.Subject{RequestID: r.ID, Project: r.Project, Policy: r.Policy})
			e.Comment = comment
			fx.Events = append(fx.Events, e)
			if len(r.Approvals) >= pol.Required {
				r.Status = StatusSigning
			}
		} else {
			r.Denials = append(r.Denials, d)
			r.Status, r.Reason = StatusDenied, "denied by "+user
			if comment != "" {
				r.Reason += ": " + comment
			}
			e := s.event(audit.RequestDeny, p.Actor(), audit.Subject{RequestID: r.ID, Project: r.Project, Policy: r.Policy})
			e.Comment = comment
			fx.Events = append(fx.Events, e)
			fx.Deliveries = s.deliveries(*r, pol, book, StatusDenied, comment)
		}
		r.Updated = now
		return fx, nil
	})
	if err != nil {
		return serviceapi.Request{}, asError(err, "request "+id)
	}
	s.committed(fx)
	s.changed(id)
	if expired {
		return serviceapi.Request{}, conflict("request %s expired at %s without a decision", id, r.Expires.Format(time.RFC3339))
	}
	if r.Status == StatusSigning {
		s.wake()
		if r, err = s.waitFinal(ctx, id, s.cfg.SyncWait); err != nil {
			return serviceapi.Request{}, asError(err, "")
		}
	}
	return requestOut(r, pol.Required), nil
}

// Approve records p's approval; the final one starts the signing.
func (s *Service) Approve(ctx context.Context, p Principal, id, comment string) (serviceapi.Request, error) {
	return s.decide(ctx, p, id, comment, true)
}

// Deny records p's denial, which ends the request.
func (s *Service) Deny(ctx context.Context, p Principal, id, comment string) (serviceapi.Request, error) {
	return s.decide(ctx, p, id, comment, false)
}

// Cancel cancels a request awaiting approval: its submitter (user or the
// holder of its status token), an admin, or a manager of its project.
func (s *Service) Cancel(ctx context.Context, p Principal, id, reason string) (serviceapi.Request, error) {
	if err := checkDescription("the reason", reason, 2000); err != nil {
		return serviceapi.Request{}, err
	}
	cur, err := s.st.GetRequest(ctx, id)
	if err != nil {
		return serviceapi.Request{}, asError(err, "request "+id)
	}
	allowed := p.Admin() || p.Kind == KindUser && p.User.Name == cur.Submitter ||
		p.Kind == KindStatusToken && subtle.ConstantTimeCompare(tokenHash(p.Raw), cur.StatusTokenHash) == 1
	if !allowed && p.Kind == KindUser {
		if proj, err := s.st.GetProject(ctx, cur.Project); err == nil && mayManage(p, proj) {
			allowed = true
		}
	}
	if !allowed {
		return serviceapi.Request{}, forbidden("only the submitter of request %s, an admin or a manager of %s cancels it", id, cur.Project)
	}
	pol, err := s.st.GetPolicy(ctx, cur.Project, cur.Policy)
	if err != nil {
		return serviceapi.Request{}, asError(err, "policy "+cur.Project+"/"+cur.Policy)
	}
	book := s.mailbook(ctx, pol, cur.Submitter)
	var fx Effects
	r, err := s.st.UpdateRequest(ctx, id, func(r *Request) (Effects, error) {
		if r.Status != StatusAwaitingApproval {
			return Effects{}, pendingError(*r)
		}
		r.Status, r.Updated = StatusCanceled, s.now()
		r.Reason = "canceled"
		if reason != "" {
			r.Reason += ": " + reason
		}
		actor := p.Actor()
		if p.Kind == KindStatusToken {
			actor = cur.Actor()
		}
		e := s.event(audit.RequestCancel, actor, audit.Subject{RequestID: r.ID, Project: r.Project, Policy: r.Policy})
		e.Reason = reason
		fx = Effects{Events: []audit.Event{e}, Deliveries: s.deliveries(*r, pol, book, StatusCanceled, reason)}
		return fx, nil
	})
	if err != nil {
		return serviceapi.Request{}, asError(err, "request "+id)
	}
	s.committed(fx)
	s.changed(id)
	return requestOut(r, pol.Required), nil
}

// Resubmit sends a request's images, with the origin claims verified at
// its submission, to another policy of its project (promotion from test
// to release signing): a user who submits to that policy, or an admin or
// manager, asks; the target policy's origin rule must accept the claims.
func (s *Service) Resubmit(ctx context.Context, p Principal, id string, in serviceapi.Resubmit) (serviceapi.Request, bool, error) {
	if err := checkDescription("the description", in.Description, 2000); err != nil {
		return serviceapi.Request{}, false, err
	}
	if p.Kind != KindUser && p.Kind != KindAdminToken {
		return serviceapi.Request{}, false, forbidden("a request is resubmitted by a user, with an API token")
	}
	src, err := s.st.GetRequest(ctx, id)
	if err != nil {
		return serviceapi.Request{}, false, asError(err, "request "+id)
	}
	if in.Policy == src.Policy {
		return serviceapi.Request{}, false, badRequest("request %s is already of policy %s; resubmit to another", id, in.Policy)
	}
	proj, err := s.st.GetProject(ctx, src.Project)
	if err != nil {
		return serviceapi.Request{}, false, asError(err, "project "+src.Project)
	}
	pol, err := s.st.GetPolicy(ctx, src.Project, in.Policy)
	if err != nil {
		return serviceapi.Request{}, false, asError(err, "policy "+src.Project+"/"+in.Policy)
	}
	user := ""
	if p.Kind == KindUser {
		user = p.User.Name
	}
	if !mayManage(p, proj) && !slices.Contains(pol.Submitters, user) {
		if pol.Origin == nil {
			return serviceapi.Request{}, false, forbidden("%s is not a submitter of policy %s/%s", user, pol.Project, pol.Name)
		}
		return serviceapi.Request{}, false, forbidden("only an admin or a manager of %s resubmits to policy %s, which takes CI submissions", proj.Name, pol.Name)
	}
	if pol.Origin != nil {
		if src.OriginIssuer == "" {
			return serviceapi.Request{}, false, forbidden("policy %s/%s takes CI submissions, and request %s came from a user, not a CI", pol.Project, pol.Name, id)
		}
		if src.OriginIssuer != pol.Origin.Issuer {
			return serviceapi.Request{}, false, apiErr(http.StatusForbidden, serviceapi.CodeOriginMismatch,
				"request %s was submitted with a token of %s; policy %s/%s takes tokens of %s", id, src.OriginIssuer, pol.Project, pol.Name, pol.Origin.Issuer)
		}
		if err := s.cfg.Origins.Match(*pol.Origin, src.Origin); err != nil {
			return serviceapi.Request{}, false, apiErr(http.StatusForbidden, serviceapi.CodeOriginMismatch,
				"the origin of request %s does not match policy %s/%s: %v", id, pol.Project, pol.Name, err)
		}
	}
	if err := s.checkRate(ctx, proj); err != nil {
		return serviceapi.Request{}, false, err
	}
	if err := s.checkReady(ctx, proj, pol); err != nil {
		return serviceapi.Request{}, false, err
	}
	refs := make([]serviceapi.ImageRef, len(src.Images))
	for i, im := range src.Images {
		refs[i] = serviceapi.ImageRef{Image: im.Ref, Digest: im.Digest}
	}
	images, err := s.resolveImages(ctx, proj, pol, refs)
	if err != nil {
		return serviceapi.Request{}, false, err
	}
	now := s.now()
	desc := in.Description
	if desc == "" {
		desc = src.Description
	}
	r := Request{
		ID: s.ids.next(now), Project: proj.Name, Policy: pol.Name, Status: StatusAwaitingApproval, Images: images,
		Submitter: user, Origin: src.Origin, OriginIssuer: src.OriginIssuer, OriginSubject: src.OriginSubject,
		Description: desc, Parameters: src.Parameters, ResubmittedFrom: src.ID,
		Created: now, Updated: now, Expires: now.Add(s.expiry(pol)),
	}
	if user == "" && r.OriginIssuer == "" {
		// The admin token resubmitting a user's request: the request keeps
		// its original submitter.
		r.Submitter = src.Submitter
	}
	return s.create(ctx, r, pol, p.Actor(), "resubmitted from "+src.ID)
}

// ExpireDue expires requests awaiting approval past their expiry.
func (s *Service) ExpireDue(ctx context.Context) (int, error) {
	n := 0
	for {
		ids, err := s.st.DueRequests(ctx, s.now(), 100)
		if err != nil || len(ids) == 0 {
			return n, err
		}
		for _, id := range ids {
			cur, err := s.st.GetRequest(ctx, id)
			if err != nil {
				return n, err
			}
			pol, _ := s.st.GetPolicy(ctx, cur.Project, cur.Policy)
			book := s.mailbook(ctx, pol, cur.Submitter)
			var fx Effects
			_, err = s.st.UpdateRequest(ctx, id, func(r *Request) (Effects, error) {
				if r.Status != StatusAwaitingApproval || s.now().Before(r.Expires) {
					return Effects{}, ErrUnchanged
				}
				fx = s.expire(r, pol, book)
				return fx, nil
			})
			if err != nil {
				return n, err
			}
			s.committed(fx)
			s.changed(id)
			n++
		}
	}
}

// Purge removes finished requests older than the retention; their history
// stays in the audit log.
func (s *Service) Purge(ctx context.Context) (int, error) {
	n := 0
	for {
		ids, err := s.st.FinishedBefore(ctx, s.now().Add(-s.cfg.Retention), 100)
		if err != nil || len(ids) == 0 {
			return n, err
		}
		for _, id := range ids {
			e := s.event(audit.RequestPurge, audit.System, audit.Subject{RequestID: id})
			e.Reason = "retention of " + s.cfg.Retention.String()
			if err := s.st.DeleteRequest(ctx, id, []audit.Event{e}); err != nil && !errors.Is(err, store.ErrNotFound) {
				return n, err
			}
			s.committed(Effects{Events: []audit.Event{e}})
			n++
		}
	}
}

// csvEscape makes a value safe in a spreadsheet: a leading =, +, - or @
// would be read as a formula.
func csvEscape(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return "'" + v
	}
	return v
}
