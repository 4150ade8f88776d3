package ui

import (
	"cmp"
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/signet-trust/signet/internal/audit"
	"github.com/signet-trust/signet/internal/service"
	"github.com/signet-trust/signet/internal/tuf"
)

// requestRow is a request as the lists show it.
type requestRow struct {
	ID, Project, Policy, Status, Image, Digest, Submitter string
	Origin                                                map[string]string
	Approvals, Required                                   int
	Created                                               time.Time
	MayApprove, MayDeny                                   bool
}

// rower makes list rows, reading each policy's approvers once per page.
type rower struct {
	u        *UI
	ctx      context.Context
	p        service.Principal
	policies map[string]*approvers
}

type approvers struct {
	required int
	names    []string
}

func (u *UI) rower(ctx context.Context, p service.Principal) *rower {
	return &rower{u: u, ctx: ctx, p: p, policies: map[string]*approvers{}}
}

func (rw *rower) policy(project, name string) *approvers {
	k := project + "/" + name
	a, ok := rw.policies[k]
	if !ok {
		if req, names, err := rw.u.cfg.Service.Approvers(rw.ctx, project, name); err == nil {
			a = &approvers{req, names}
		}
		rw.policies[k] = a
	}
	return a
}

// row is r as the lists show it. Approve and Deny are offered as the
// service would take them (an approver of the policy; to approve, not its
// submitter and not approved yet); the service decides again.
func (rw *rower) row(r service.Request) requestRow {
	out := requestRow{ID: r.ID, Project: r.Project, Policy: r.Policy, Status: string(r.Status), Submitter: r.SubmitterName(),
		Origin: r.Origin, Approvals: len(r.Approvals), Created: r.Created}
	if len(r.Images) > 0 {
		out.Image, out.Digest = r.Images[0].Ref, r.Images[0].Digest
	}
	if r.Status != service.StatusAwaitingApproval {
		return out
	}
	pol := rw.policy(r.Project, r.Policy)
	if pol == nil {
		return out
	}
	out.Required = pol.required
	if rw.p.Kind == service.KindUser && slices.Contains(pol.names, rw.p.User.Name) {
		out.MayDeny = true
		out.MayApprove = r.Submitter != rw.p.User.Name && !r.ApprovedBy(rw.p.User.Name)
	}
	return out
}

// expiringRole is a role's current version and expiry.
type expiringRole struct {
	GUN, Role string
	Version   int
	Expires   time.Time
}

// expiringSoonest returns the n top-level roles expiring soonest across
// every repository.
func (u *UI) expiringSoonest(ctx context.Context, n int) ([]expiringRole, error) {
	var all []expiringRole
	far := u.now().AddDate(100, 0, 0)
	for _, role := range []string{tuf.RoleRoot, tuf.RoleTargets, tuf.RoleSnapshot, tuf.RoleTimestamp} {
		fs, err := u.cfg.Meta.Expiring(ctx, role, far, n)
		if err != nil {
			return nil, err
		}
		for _, f := range fs {
			all = append(all, expiringRole{GUN: f.GUN, Role: f.Role, Version: f.Version, Expires: f.Expires})
		}
	}
	slices.SortFunc(all, func(a, b expiringRole) int {
		return cmp.Or(a.Expires.Compare(b.Expires), strings.Compare(a.GUN, b.GUN), strings.Compare(a.Role, b.Role))
	})
	return all[:min(n, len(all))], nil
}

func (u *UI) dashboard(w http.ResponseWriter, r *http.Request, s *session) error {
	ctx := r.Context()
	mine, err := u.cfg.Service.AwaitingMe(ctx, s.p, 20)
	if err != nil {
		return err
	}
	recent, err := u.cfg.Service.ListRequestsByProject(ctx, s.p, service.RequestFilter{Limit: 10})
	if err != nil {
		return err
	}
	exp, err := u.expiringSoonest(ctx, 10)
	if err != nil {
		return err
	}
	d := struct {
		Mine, Recent []requestRow
		Expiring     []expiringRole
		Activity     chart
	}{Expiring: exp}
	rw := u.rower(ctx, s.p)
	for _, q := range mine {
		d.Mine = append(d.Mine, rw.row(q))
	}
	for _, q := range recent {
		d.Recent = append(d.Recent, rw.row(q))
	}
	d.Activity = u.activity(ctx, s.p)
	u.render(w, r, s, http.StatusOK, "dashboard", d)
	return nil
}

// activity is a bar chart of the requests of the last 14 days, per day,
// counted by the service from the store's index (no request is read),
// computed at most once per Config.ChartTTL for each user.
func (u *UI) activity(ctx context.Context, p service.Principal) chart {
	key := string(p.Kind) + ":" + p.User.Name
	now := u.now()
	if u.cfg.ChartTTL > 0 {
		u.chartMu.Lock()
		c, ok := u.charts[key]
		u.chartMu.Unlock()
		if ok && now.Before(c.until) {
			return c.chart
		}
	}
	const days = 14
	since := now.UTC().Truncate(24*time.Hour).AddDate(0, 0, -(days - 1))
	counts, err := u.cfg.Service.RequestsPerDay(ctx, p, since, days)
	if err != nil {
		return chart{Title: "Signing requests per day", Empty: true}
	}
	c := barChart(since, counts)
	if u.cfg.ChartTTL > 0 {
		u.chartMu.Lock()
		if len(u.charts) > 10_000 {
			clear(u.charts)
		}
		u.charts[key] = cachedChart{chart: c, until: now.Add(u.cfg.ChartTTL)}
		u.chartMu.Unlock()
	}
	return c
}

type cachedChart struct {
	chart chart
	until time.Time
}

const pageSize = 50

func (u *UI) requests(w http.ResponseWriter, r *http.Request, s *session) error {
	q := r.URL.Query()
	f := service.RequestFilter{Status: service.Status(q.Get("status")), Limit: pageSize + 1}
	if f.Status != "" && !f.Status.Valid() {
		return badRequest("There is no status %q.", f.Status)
	}
	if before := q.Get("before"); before != "" {
		b, err := base64.RawURLEncoding.DecodeString(before)
		if err != nil || len(b) > 64 {
			return badRequest("That page link is not one this server made.")
		}
		f.Before = string(b)
	}
	rs, err := u.cfg.Service.ListRequestsByProject(r.Context(), s.p, f)
	if err != nil {
		return err
	}
	d := struct {
		Rows     []requestRow
		Status   string
		Statuses []service.Status
		Next     string
	}{Status: string(f.Status), Statuses: service.Statuses}
	if len(rs) > pageSize {
		rs = rs[:pageSize]
		d.Next = base64.RawURLEncoding.EncodeToString([]byte(rs[len(rs)-1].ID))
	}
	rw := u.rower(r.Context(), s.p)
	for _, q := range rs {
		d.Rows = append(d.Rows, rw.row(q))
	}
	u.render(w, r, s, http.StatusOK, "requests", d)
	return nil
}

func (u *UI) request(w http.ResponseWriter, r *http.Request, s *session) error {
	return u.showRequest(w, r, s, http.StatusOK, "")
}

func (u *UI) showRequest(w http.ResponseWriter, r *http.Request, s *session, status int, problem string) error {
	id := r.PathValue("id")
	out, err := u.cfg.Service.GetRequest(r.Context(), s.p, id)
	if err != nil {
		return err
	}
	d := struct {
		R                   any
		MayApprove, MayDeny bool
		Problem             string
	}{R: out, Problem: problem}
	if out.Status == string(service.StatusAwaitingApproval) {
		rec := service.Request{ID: out.ID, Project: out.Project, Policy: out.Policy, Status: service.StatusAwaitingApproval}
		for _, a := range out.Approvals {
			rec.Approvals = append(rec.Approvals, service.Decision{User: a.User})
		}
		if s.p.Kind == service.KindUser && out.Submitter == s.p.User.Name {
			rec.Submitter = out.Submitter
		}
		d.MayApprove, d.MayDeny = u.cfg.Service.MayDecide(r.Context(), s.p, rec)
	}
	u.render(w, r, s, status, "request", d)
	return nil
}

// decide approves or denies with the service's own method, then shows
// the request (or why it was refused).
func (u *UI) decide(w http.ResponseWriter, r *http.Request, s *session, approve bool) error {
	id := r.PathValue("id")
	comment := strings.TrimSpace(r.PostForm.Get("comment"))
	var err error
	if approve {
		// Step-up: an approval signs in the service's name, so the
		// browser's session is not enough; the password is asked again,
		// under the login's rate limits.
		if problem, status := u.stepUp(r, s); problem != "" {
			return u.showRequest(w, r, s, status, problem)
		}
		_, err = u.cfg.Service.Approve(r.Context(), s.p, id, comment)
	} else {
		if comment == "" {
			return u.showRequest(w, r, s, http.StatusBadRequest, "A denial needs a comment: say why.")
		}
		_, err = u.cfg.Service.Deny(r.Context(), s.p, id, comment)
	}
	if se, ok := err.(*service.Error); ok && se.Status < 500 && se.Status != http.StatusNotFound {
		return u.showRequest(w, r, s, se.Status, se.Message)
	}
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/ui/requests/"+id, http.StatusSeeOther)
	return nil
}

// stepUp checks the password posted with an approval against the
// session's user, counted against the same per-user and per-address
// limits as logins. It returns what to tell the user and the status when
// the password does not hold, or "" when it does.
func (u *UI) stepUp(r *http.Request, s *session) (problem string, status int) {
	password := r.PostForm.Get("password")
	if password == "" {
		return "Approving asks for your password again: enter it with your approval.", http.StatusUnauthorized
	}
	now := u.now()
	okAddr, waitAddr := u.byAddr.Take(clientAddress(r), now)
	okUser, waitUser := u.byUser.Take(s.user, now)
	if !okAddr || !okUser {
		wait := max(waitAddr, waitUser, time.Second).Round(time.Second)
		u.log.Info("ui: approval password check rate-limited", "user", s.user, "address", clientAddress(r))
		return "Too many password attempts. Wait " + wait.String() + " and try again.", http.StatusTooManyRequests
	}
	if _, err := u.cfg.Service.Login(r.Context(), s.user, password); err != nil {
		u.log.Info("ui: approval with a wrong password", "user", s.user, "address", clientAddress(r))
		return "The password is wrong: nothing was approved.", http.StatusUnauthorized
	}
	return "", 0
}

func (u *UI) approve(w http.ResponseWriter, r *http.Request, s *session) error {
	return u.decide(w, r, s, true)
}

func (u *UI) deny(w http.ResponseWriter, r *http.Request, s *session) error {
	return u.decide(w, r, s, false)
}

// auditRow is an entry of the audit page.
type auditRow struct {
	Index uint64
	E     audit.Event
	Link  string
}

// auditScan bounds how many entries one audit page reads.
const auditScan = 5000

func (u *UI) auditPage(w http.ResponseWriter, r *http.Request, s *session) error {
	if !s.p.Reader() {
		return &httpError{http.StatusForbidden, "The audit log is for admins and auditors."}
	}
	q := r.URL.Query()
	d := struct {
		Configured           bool
		Type, Actor, GUN     string
		Types                []audit.EventType
		Rows                 []auditRow
		Size, CheckpointSize uint64
		Checkpoint           string
		Status               audit.Status
		VerifierKey, Origin  string
		Next                 string
	}{Type: q.Get("type"), Actor: q.Get("actor"), GUN: q.Get("repository"), Types: eventTypes}
	if u.cfg.Audit == nil {
		u.render(w, r, s, http.StatusOK, "audit", d)
		return nil
	}
	d.Configured = true
	st, err := u.cfg.AuditEntries.State(r.Context())
	if err != nil {
		return err
	}
	d.Size, d.CheckpointSize, d.Checkpoint = st.Size, st.CheckpointSize, string(st.Checkpoint)
	d.Status, d.VerifierKey, d.Origin = u.cfg.Audit.Status(), u.cfg.Audit.VerifierKey(), u.cfg.Audit.Origin()
	end := st.Size
	if b := q.Get("before"); b != "" {
		var n uint64
		for _, c := range b {
			if c < '0' || c > '9' || n > 1<<60 {
				return badRequest("before %q is not an entry index.", b)
			}
			n = n*10 + uint64(c-'0')
		}
		end = min(end, n)
	}
	scanned := 0
	for end > 0 && len(d.Rows) < pageSize && scanned < auditScan {
		start := end - min(end, 500)
		es, err := u.cfg.AuditEntries.Entries(r.Context(), start, int(end-start))
		if err != nil {
			return err
		}
		for i := len(es) - 1; i >= 0 && len(d.Rows) < pageSize; i-- {
			scanned++
			e, err := audit.ParseEvent(es[i].Data)
			if err != nil {
				continue
			}
			if d.Type != "" && string(e.Type) != d.Type || d.Actor != "" && e.Actor.String() != d.Actor ||
				d.GUN != "" && e.Subject.GUN != d.GUN {
				continue
			}
			d.Rows = append(d.Rows, auditRow{Index: es[i].Index, E: e, Link: subjectLink(e.Subject)})
			end = es[i].Index
		}
		if len(d.Rows) < pageSize {
			end = start
		}
	}
	if end > 0 && len(d.Rows) == pageSize {
		d.Next = uitoa(end)
	}
	u.render(w, r, s, http.StatusOK, "audit", d)
	return nil
}

func uitoa(n uint64) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for n > 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	return string(b)
}

var eventTypes = []audit.EventType{audit.RequestSubmit, audit.RequestApprove, audit.RequestDeny, audit.RequestSign,
	audit.RequestFail, audit.RequestExpire, audit.RequestCancel, audit.TUFPublish, audit.TUFDelete,
	audit.UserCreate, audit.TokenCreate, audit.ProjectCreate, audit.PolicyCreate, audit.KeyCreate, audit.KeyRotate}

// subjectLink is the page of an entry's subject.
func subjectLink(s audit.Subject) string {
	switch {
	case s.RequestID != "":
		return "/ui/requests/" + s.RequestID
	case s.GUN != "":
		return "/ui/repositories/" + s.GUN
	case s.Project != "":
		return "/ui/projects#" + s.Project
	}
	return ""
}

// formState is a form sent back with the service's refusal.
type formState struct {
	Problem string
	Form    string // "project" or "policy:<project>"
	Values  url.Values
}

// Get is a field of the form sent back, for the template.
func (f formState) Get(name string) string { return f.Values.Get(name) }

func (u *UI) projects(w http.ResponseWriter, r *http.Request, s *session) error {
	return u.showProjects(w, r, s, http.StatusOK, formState{})
}

func (u *UI) showProjects(w http.ResponseWriter, r *http.Request, s *session, status int, fs formState) error {
	list, err := u.cfg.Service.ListProjects(r.Context(), s.p)
	if err != nil {
		return err
	}
	type proj struct {
		P         any
		Name      string
		Command   string
		Key       string
		Policies  []any
		MayManage bool
	}
	d := struct {
		Projects []proj
		Form     formState
	}{Form: fs}
	for _, lp := range list.Projects {
		full, err := u.cfg.Service.GetProject(r.Context(), s.p, lp.Name)
		if err != nil {
			return err
		}
		pj := proj{P: full, Name: full.Name, Key: full.PublicKey,
			Command:   "docker trust signer add --key " + full.Signer + ".pub " + full.Signer + " " + full.Repository,
			MayManage: s.p.Admin() || slices.Contains(full.Managers, s.user)}
		pols, err := u.cfg.Service.ListPolicies(r.Context(), s.p, full.Name)
		if err == nil {
			for _, p := range pols.Policies {
				pj.Policies = append(pj.Policies, p)
			}
		}
		d.Projects = append(d.Projects, pj)
	}
	u.render(w, r, s, status, "projects", d)
	return nil
}

func (u *UI) users(w http.ResponseWriter, r *http.Request, s *session) error {
	if !s.p.Reader() {
		return &httpError{http.StatusForbidden, "The users page is for admins and auditors."}
	}
	list, err := u.cfg.Service.ListUsers(r.Context(), s.p)
	if err != nil {
		return err
	}
	type userRow struct {
		U      any
		Tokens any
	}
	var d struct{ Users []userRow }
	for _, us := range list.Users {
		toks, err := u.cfg.Service.ListTokens(r.Context(), s.p, us.Name)
		if err != nil {
			return err
		}
		d.Users = append(d.Users, userRow{U: us, Tokens: toks.Tokens})
	}
	u.render(w, r, s, http.StatusOK, "users", d)
	return nil
}
