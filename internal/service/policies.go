package service

import (
	"context"
	"errors"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/signet-trust/signet/internal/audit"
	"github.com/signet-trust/signet/internal/custody"
	"github.com/signet-trust/signet/internal/policy"
	"github.com/signet-trust/signet/internal/service/serviceapi"
)

// Bounds of a policy.
const (
	maxPolicyUsers = 100
	maxTagsPattern = 1000
	minExpiry      = time.Minute
	maxExpiry      = 90 * 24 * time.Hour
)

// tagPattern compiles a policy's tags expression, anchored at both ends.
func tagPattern(expr string) (*regexp.Regexp, error) {
	return regexp.Compile(`^(?:` + expr + `)$`)
}

// policyFrom checks a spec and turns it into a policy's rules (the fields
// of spec, not its name, signer or keys).
func (s *Service) policyFrom(spec serviceapi.PolicySpec) (Policy, error) {
	var pol Policy
	a := spec.Approvals
	if a.Required < 0 {
		return pol, badRequest("approvals.required %d: give 0 (sign at once) or more", a.Required)
	}
	if len(a.Approvers) > maxPolicyUsers || len(spec.Submitters) > maxPolicyUsers {
		return pol, badRequest("a policy names at most %d approvers and %d submitters", maxPolicyUsers, maxPolicyUsers)
	}
	for _, list := range [][]string{a.Approvers, spec.Submitters} {
		for i, u := range list {
			if !ValidUserName(u) {
				return pol, badRequest("%q is not a user name", u)
			}
			if slices.Contains(list[:i], u) {
				return pol, badRequest("user %s is listed twice", u)
			}
		}
	}
	if a.Required > len(a.Approvers) {
		return pol, badRequest("approvals.required is %d but the policy names %d approver(s); nobody could ever complete the approval", a.Required, len(a.Approvers))
	}
	if spec.Origin != nil && len(spec.Submitters) > 0 {
		return pol, badRequest("a policy takes submissions from CI (origin) or from users (submitters), not both; make two policies")
	}
	if spec.Origin == nil && len(spec.Submitters) == 0 {
		return pol, badRequest("nobody could submit: give an origin (CI with an OIDC ID token) or submitters (users with API tokens)")
	}
	if spec.Origin != nil {
		o := Origin{Issuer: spec.Origin.Issuer, Audience: spec.Origin.Audience, Claims: spec.Origin.Claims}
		if s.cfg.Origins == nil {
			return pol, badRequest("this server does not verify CI ID tokens, so a policy cannot have an origin")
		}
		if err := s.cfg.Origins.ValidateRule(o); err != nil {
			return pol, badRequest("origin: %v", err)
		}
		pol.Origin = &o
	}
	if len(spec.Tags) > maxTagsPattern {
		return pol, badRequest("tags is longer than %d bytes", maxTagsPattern)
	}
	if spec.Tags != "" {
		if _, err := tagPattern(spec.Tags); err != nil {
			return pol, badRequest("tags %q is not a regular expression: %v", spec.Tags, err)
		}
	}
	formats := spec.Formats
	if len(formats) == 0 {
		formats = []string{string(FormatDCT)}
	}
	for i, f := range formats {
		switch Format(f) {
		case FormatDCT:
		case FormatCosign:
			if s.cfg.Cosign == nil {
				return pol, badRequest("this server does not write cosign signatures, so a policy cannot have the cosign format")
			}
		default:
			return pol, badRequest("format %q: use \"dct\" (Docker Content Trust), \"cosign\" or both", f)
		}
		if slices.Contains(formats[:i], f) {
			return pol, badRequest("format %s is listed twice", f)
		}
		pol.Formats = append(pol.Formats, Format(f))
	}
	slices.SortFunc(pol.Formats, func(a, b Format) int { return slices.Index(Formats, a) - slices.Index(Formats, b) })
	if spec.RequestExpiry != "" {
		d, err := time.ParseDuration(spec.RequestExpiry)
		if err != nil || d < minExpiry || d > maxExpiry {
			return pol, badRequest("request_expiry %q: give a duration between %v and %v, such as 168h", spec.RequestExpiry, minExpiry, maxExpiry)
		}
		pol.Expiry = d
	}
	if w := spec.Webhook; w != nil {
		u, err := url.Parse(w.URL)
		if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
			return pol, badRequest("webhook url %q: notifications go to https://host/… URLs only, without user info", w.URL)
		}
		if strings.ContainsAny(w.Authorization, "\r\n") || len(w.Authorization) > 4096 {
			return pol, badRequest("webhook authorization must be one line of at most 4096 bytes")
		}
		if w.AuthorizationSet {
			return pol, badRequest("webhook authorization_set is shown in answers, not taken")
		}
		pol.Webhook = &Webhook{URL: w.URL, Authorization: w.Authorization}
	}
	pol.Required = a.Required
	pol.Approvers = append([]string{}, a.Approvers...)
	pol.Submitters = append([]string{}, spec.Submitters...)
	pol.Tags = spec.Tags
	return pol, nil
}

// formatsOf are the formats a policy signs in (its formats, or DCT alone
// for a policy stored without).
func formatsOf(pol Policy) []Format {
	if len(pol.Formats) == 0 {
		return []Format{FormatDCT}
	}
	return pol.Formats
}

func policyOut(pol Policy, keys []ProjectKey) serviceapi.Policy {
	out := serviceapi.Policy{
		PolicySpec: serviceapi.PolicySpec{
			Name: pol.Name, Approvals: serviceapi.Approvals{Required: pol.Required, Approvers: pol.Approvers},
			Submitters: pol.Submitters, Tags: pol.Tags, Signer: pol.Signer,
		},
		Project: pol.Project, KeyID: pol.KeyID, Created: pol.Created, Updated: pol.Updated,
	}
	if out.Approvals.Approvers == nil {
		out.Approvals.Approvers = []string{}
	}
	for _, f := range pol.Formats {
		out.Formats = append(out.Formats, string(f))
	}
	if pol.Expiry != 0 {
		out.RequestExpiry = pol.Expiry.String()
	}
	if pol.Origin != nil {
		out.Origin = &serviceapi.Origin{Issuer: pol.Origin.Issuer, Audience: pol.Origin.Audience, Claims: pol.Origin.Claims}
	}
	if pol.Webhook != nil {
		out.Webhook = &serviceapi.Webhook{URL: pol.Webhook.URL, AuthorizationSet: pol.Webhook.Authorization != ""}
	}
	for _, k := range keys {
		if k.ID == pol.KeyID && pol.KeyID != "" {
			out.PublicKey = string(k.Public)
		}
	}
	return out
}

// managedProject reads a project p may change (admins and its managers).
func (s *Service) managedProject(ctx context.Context, p Principal, name, what string) (Project, error) {
	proj, err := s.st.GetProject(ctx, name)
	if err != nil {
		return Project{}, asError(err, "project "+name)
	}
	if !mayManage(p, proj) {
		return Project{}, forbidden("only an admin or a manager of %s %s", name, what)
	}
	return proj, nil
}

// CreatePolicy creates a policy of a project (admins and its managers).
// A policy with its own signer gets its own delegation key in custody.
func (s *Service) CreatePolicy(ctx context.Context, p Principal, project string, spec serviceapi.PolicySpec) (serviceapi.Policy, error) {
	proj, err := s.managedProject(ctx, p, project, "creates its policies")
	if err != nil {
		return serviceapi.Policy{}, err
	}
	if !ValidName(spec.Name) {
		return serviceapi.Policy{}, badRequest("policy name %q: use 1 to 64 lowercase letters, digits, '.', '_' or '-'", spec.Name)
	}
	pol, err := s.policyFrom(spec)
	if err != nil {
		return serviceapi.Policy{}, err
	}
	if _, err := s.st.GetPolicy(ctx, project, spec.Name); err == nil {
		return serviceapi.Policy{}, conflict("policy %s/%s already exists", project, spec.Name)
	}
	if err := s.knownUsers(ctx, pol.Members()); err != nil {
		return serviceapi.Policy{}, err
	}
	now := s.now()
	pol.Project, pol.Name, pol.Created, pol.Updated = project, spec.Name, now, now
	events := []audit.Event{s.event(audit.PolicyCreate, p.Actor(), audit.Subject{Project: project, Policy: spec.Name})}
	var ks []ProjectKey
	if spec.Signer != "" {
		if err := checkSigner(spec.Signer); err != nil {
			return serviceapi.Policy{}, err
		}
		if spec.Signer == proj.Signer {
			return serviceapi.Policy{}, badRequest("signer %s is the project's own; leave signer out to sign as it", spec.Signer)
		}
		k, err := s.newKey(ctx, custody.Spec{GUN: proj.Repository, Role: policy.Signer(spec.Signer).Role(), Purpose: custody.PurposeDelegation,
			Owner: custody.ProjectOwner(project)}, "", "", spec.Signer)
		if err != nil {
			return serviceapi.Policy{}, err
		}
		k.Project, k.Policy = project, spec.Name
		pol.Signer, pol.KeyID = spec.Signer, k.ID
		ks = append(ks, k)
		events = append(events, keyEvent(s, p, k, project, proj.Repository))
	}
	if err := s.st.CreatePolicy(ctx, pol, ks, events); err != nil {
		for _, k := range ks {
			s.retire(ctx, k.ID)
		}
		return serviceapi.Policy{}, asError(err, "policy "+project+"/"+spec.Name)
	}
	s.committed(Effects{Events: events})
	return policyOut(pol, ks), nil
}

// GetPolicy reads a policy (who may read its project).
func (s *Service) GetPolicy(ctx context.Context, p Principal, project, name string) (serviceapi.Policy, error) {
	if _, err := s.getProject(ctx, p, project); err != nil {
		return serviceapi.Policy{}, err
	}
	pol, err := s.st.GetPolicy(ctx, project, name)
	if err != nil {
		return serviceapi.Policy{}, asError(err, "policy "+project+"/"+name)
	}
	ks, err := s.st.ListProjectKeys(ctx, project)
	if err != nil {
		return serviceapi.Policy{}, asError(err, "")
	}
	return policyOut(pol, ks), nil
}

// ListPolicies lists a project's policies.
func (s *Service) ListPolicies(ctx context.Context, p Principal, project string) (serviceapi.PolicyList, error) {
	if _, err := s.getProject(ctx, p, project); err != nil {
		return serviceapi.PolicyList{}, err
	}
	pols, err := s.st.ListPolicies(ctx, project)
	if err != nil {
		return serviceapi.PolicyList{}, asError(err, "")
	}
	ks, err := s.st.ListProjectKeys(ctx, project)
	if err != nil {
		return serviceapi.PolicyList{}, asError(err, "")
	}
	out := serviceapi.PolicyList{Policies: []serviceapi.Policy{}}
	for _, pol := range pols {
		out.Policies = append(out.Policies, policyOut(pol, ks))
	}
	return out, nil
}

// UpdatePolicy replaces a policy's rules (admins and the project's
// managers). Its name and signer stay. Pending requests are decided under
// the new rules.
func (s *Service) UpdatePolicy(ctx context.Context, p Principal, project, name string, spec serviceapi.PolicySpec) (serviceapi.Policy, error) {
	if _, err := s.managedProject(ctx, p, project, "changes its policies"); err != nil {
		return serviceapi.Policy{}, err
	}
	if spec.Name != "" && spec.Name != name {
		return serviceapi.Policy{}, badRequest("a policy keeps its name (%s); create another to rename", name)
	}
	rules, err := s.policyFrom(spec)
	if err != nil {
		return serviceapi.Policy{}, err
	}
	if err := s.knownUsers(ctx, rules.Members()); err != nil {
		return serviceapi.Policy{}, err
	}
	var fx Effects
	pol, err := s.st.UpdatePolicy(ctx, project, name, func(pol *Policy) ([]audit.Event, error) {
		if spec.Signer != "" && spec.Signer != pol.Signer {
			return nil, badRequest("a policy keeps its signer (%q); create another policy for another signer", pol.Signer)
		}
		var changes []string
		add := func(field string, differ bool) {
			if differ {
				changes = append(changes, field)
			}
		}
		add("approvals.required", rules.Required != pol.Required)
		add("approvals.approvers", !slices.Equal(rules.Approvers, pol.Approvers))
		add("submitters", !slices.Equal(rules.Submitters, pol.Submitters))
		add("origin", !sameOrigin(rules.Origin, pol.Origin))
		add("tags", rules.Tags != pol.Tags)
		add("formats", !slices.Equal(rules.Formats, pol.Formats))
		add("request_expiry", rules.Expiry != pol.Expiry)
		add("webhook", !sameWebhook(rules.Webhook, pol.Webhook))
		if len(changes) == 0 {
			return nil, ErrUnchanged
		}
		pol.Required, pol.Approvers, pol.Submitters, pol.Origin = rules.Required, rules.Approvers, rules.Submitters, rules.Origin
		pol.Tags, pol.Formats, pol.Expiry, pol.Webhook, pol.Updated = rules.Tags, rules.Formats, rules.Expiry, rules.Webhook, s.now()
		e := s.event(audit.PolicyUpdate, p.Actor(), audit.Subject{Project: project, Policy: name})
		e.Changes = changes
		fx.Events = []audit.Event{e}
		return fx.Events, nil
	})
	if err != nil {
		return serviceapi.Policy{}, asError(err, "policy "+project+"/"+name)
	}
	s.committed(fx)
	ks, err := s.st.ListProjectKeys(ctx, project)
	if err != nil {
		return serviceapi.Policy{}, asError(err, "")
	}
	return policyOut(pol, ks), nil
}

func sameOrigin(a, b *Origin) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.Issuer != b.Issuer || a.Audience != b.Audience || len(a.Claims) != len(b.Claims) {
		return false
	}
	for k, v := range a.Claims {
		if w, ok := b.Claims[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func sameWebhook(a, b *Webhook) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// DeletePolicy deletes a policy (admins and the project's managers); one
// with pending requests is refused (cancel them first). A policy's own
// key is retired in custody.
func (s *Service) DeletePolicy(ctx context.Context, p Principal, project, name string) error {
	if _, err := s.managedProject(ctx, p, project, "deletes its policies"); err != nil {
		return err
	}
	pol, err := s.st.GetPolicy(ctx, project, name)
	if err != nil {
		return asError(err, "policy "+project+"/"+name)
	}
	events := []audit.Event{s.event(audit.PolicyDelete, p.Actor(), audit.Subject{Project: project, Policy: name})}
	if err := s.st.DeletePolicy(ctx, project, name, events); err != nil {
		var iu *InUseError
		if errors.As(err, &iu) {
			return conflict("%v; cancel them (signet request cancel ID) or let them finish first", iu)
		}
		return asError(err, "policy "+project+"/"+name)
	}
	s.committed(Effects{Events: events})
	s.retire(ctx, pol.KeyID)
	return nil
}
