package service

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/signet-trust/signet/internal/service/record"
	"github.com/signet-trust/signet/internal/store"
)

// ErrBadLogin is the one answer to a wrong user name or password: the
// browser login does not tell which was wrong.
var ErrBadLogin = errors.New("service: wrong user name or password")

// dummyHash is checked against when the user does not exist or has no
// password, so that a login takes as long for an unknown name.
var dummyHash = HashPassword("signet: no such user, no such password")

// Login checks a user's password (the web UI's login form) and returns the
// user's principal, or ErrBadLogin. Users without a password (API tokens
// only) cannot log in.
func (s *Service) Login(ctx context.Context, name, password string) (Principal, error) {
	if !ValidUserName(name) || len(password) > 1024 {
		CheckPassword(dummyHash, password)
		return Principal{}, ErrBadLogin
	}
	u, err := s.st.GetUser(ctx, name)
	if errors.Is(err, store.ErrNotFound) || err == nil && u.PasswordHash == "" {
		CheckPassword(dummyHash, password)
		return Principal{}, ErrBadLogin
	}
	if err != nil {
		return Principal{}, asError(err, "")
	}
	if !CheckPassword(u.PasswordHash, password) {
		return Principal{}, ErrBadLogin
	}
	return Principal{Kind: KindUser, User: u}, nil
}

// UserPrincipal returns the principal of user name as stored now (a
// browser session's user: a user deleted, or whose password was removed,
// since the login has none).
func (s *Service) UserPrincipal(ctx context.Context, name string) (Principal, error) {
	u, err := s.st.GetUser(ctx, name)
	if err != nil {
		return Principal{}, asError(err, "user "+name)
	}
	if u.PasswordHash == "" {
		return Principal{}, unauthenticated("user %s has no password", name)
	}
	return Principal{Kind: KindUser, User: u}, nil
}

// MayDecide reports whether p may approve or deny request r now: it awaits
// approval, p approves for its policy, and (to approve) p neither submitted
// it nor approved it already. The decision itself checks again.
func (s *Service) MayDecide(ctx context.Context, p Principal, r Request) (approve, deny bool) {
	if r.Status != StatusAwaitingApproval || p.Kind != KindUser {
		return false, false
	}
	pol, err := s.st.GetPolicy(ctx, r.Project, r.Policy)
	if err != nil || !slices.Contains(pol.Approvers, p.User.Name) {
		return false, false
	}
	return r.Submitter != p.User.Name && !r.ApprovedBy(p.User.Name), true
}

// AwaitingMe lists the requests awaiting p's approval, newest first, at
// most limit: those of the policies p approves for that p has not
// approved yet and did not submit.
func (s *Service) AwaitingMe(ctx context.Context, p Principal, limit int) ([]Request, error) {
	if p.Kind != KindUser {
		return nil, nil
	}
	pols, err := s.st.PoliciesNaming(ctx, p.User.Name)
	if err != nil {
		return nil, asError(err, "")
	}
	var out []Request
	for _, pol := range pols {
		if !slices.Contains(pol.Approvers, p.User.Name) {
			continue
		}
		rs, err := s.st.ListRequests(ctx, RequestFilter{Status: StatusAwaitingApproval, Project: pol.Project, Policy: pol.Name, Limit: limit})
		if err != nil {
			return nil, asError(err, "")
		}
		for _, r := range rs {
			if r.Submitter != p.User.Name && !r.ApprovedBy(p.User.Name) {
				out = append(out, r)
			}
		}
	}
	slices.SortFunc(out, func(a, b Request) int { return -compareIDs(a.ID, b.ID) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func compareIDs(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// ListRequestsByProject lists the requests p may see, newest first, as
// ListRequests does; for a viewer of a few projects the store reads each
// project's newest requests from its index and merges them, where one
// query over a list of projects sorts all their requests first (the web
// dashboard's lists, over 100,000 requests).
func (s *Service) ListRequestsByProject(ctx context.Context, p Principal, f RequestFilter) ([]Request, error) {
	if f.Status != "" && !f.Status.Valid() {
		return nil, badRequest("status %q: use one of %v", f.Status, Statuses)
	}
	visible, err := s.visibleProjects(ctx, p)
	if err != nil {
		return nil, asError(err, "")
	}
	f.Projects = visible
	rs, err := s.st.ListRequests(ctx, f)
	return rs, asErrorOrNil(err)
}

func asErrorOrNil(err error) error {
	if err == nil {
		return nil
	}
	return asError(err, "")
}

// maxActivityProjects bounds the projects RequestsPerDay counts.
const maxActivityProjects = 200

// ErrTooManyProjects: RequestsPerDay does not count over more than
// maxActivityProjects projects.
var ErrTooManyProjects = errors.New("service: too many projects to count requests per day")

// RequestsPerDay counts the requests p may see created on each of days
// days (UTC) from since, in one query over the store's index of
// creation times (no request is read).
func (s *Service) RequestsPerDay(ctx context.Context, p Principal, since time.Time, days int) ([]int, error) {
	if days < 1 || days > record.MaxCountDays {
		return nil, badRequest("%d days: count 1 to %d", days, record.MaxCountDays)
	}
	projects, err := s.visibleProjects(ctx, p)
	if err != nil {
		return nil, asError(err, "")
	}
	if projects == nil {
		ps, err := s.st.ListProjects(ctx)
		if err != nil {
			return nil, asError(err, "")
		}
		projects = []string{}
		for _, pr := range ps {
			projects = append(projects, pr.Name)
		}
	}
	if len(projects) > maxActivityProjects {
		return nil, ErrTooManyProjects
	}
	out, err := s.st.CountRequestsPerDay(ctx, projects, since, days)
	if err != nil {
		return nil, asError(err, "")
	}
	return out, nil
}

// Approvers returns how many approvals the policy of a request asks for
// and who may give them, read from the store as the decision reads them
// (for the dashboard's Approve and Deny buttons on requests the viewer was
// already allowed to list; the decision checks again).
func (s *Service) Approvers(ctx context.Context, project, policy string) (required int, approvers []string, err error) {
	pol, err := s.st.GetPolicy(ctx, project, policy)
	if err != nil {
		return 0, nil, asError(err, "policy "+project+"/"+policy)
	}
	return pol.Required, pol.Approvers, nil
}
