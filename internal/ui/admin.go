package ui

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/signet-trust/signet/internal/service"
	"github.com/signet-trust/signet/internal/service/serviceapi"
)

// names splits a form field of user names at commas and spaces.
func names(v string) []string {
	return strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
}

// refusal is a service refusal a form shows beside itself (a 4xx other
// than 404), or nil.
func refusal(err error) *service.Error {
	se, ok := err.(*service.Error)
	if ok && se.Status >= 400 && se.Status < 500 && se.Status != http.StatusNotFound {
		return se
	}
	return nil
}

// createProject is the admins' form on the projects page: the service
// makes the project's delegation key in custody.
func (u *UI) createProject(w http.ResponseWriter, r *http.Request, s *session) error {
	f := r.PostForm
	in := serviceapi.CreateProject{Name: strings.TrimSpace(f.Get("name")), Repository: strings.TrimSpace(f.Get("repository")),
		Signer: strings.TrimSpace(f.Get("signer")), Managers: names(f.Get("managers"))}
	p, err := u.cfg.Service.CreateProject(r.Context(), s.p, in)
	if se := refusal(err); se != nil {
		return u.showProjects(w, r, s, se.Status, formState{Problem: se.Message, Form: "project", Values: f})
	}
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/ui/projects#"+p.Name, http.StatusSeeOther)
	return nil
}

// policySpec reads the policy form.
func policySpec(r *http.Request) (serviceapi.PolicySpec, error) {
	f := r.PostForm
	spec := serviceapi.PolicySpec{Name: strings.TrimSpace(f.Get("name")), Submitters: names(f.Get("submitters")),
		Tags: strings.TrimSpace(f.Get("tags")), RequestExpiry: strings.TrimSpace(f.Get("request_expiry")),
		Approvals: serviceapi.Approvals{Approvers: names(f.Get("approvers"))}, Formats: f["formats"]}
	req := strings.TrimSpace(f.Get("required"))
	n, err := strconv.Atoi(req)
	if err != nil || n < 0 || n > 100 {
		return spec, badRequest("Approvals required %q: give a number from 0 to 100.", req)
	}
	spec.Approvals.Required = n
	return spec, nil
}

func (u *UI) createPolicy(w http.ResponseWriter, r *http.Request, s *session) error {
	project := r.PathValue("name")
	spec, err := policySpec(r)
	if err == nil {
		_, err = u.cfg.Service.CreatePolicy(r.Context(), s.p, project, spec)
	}
	var he *httpError
	if asHTTP(err, &he) && he.status == http.StatusBadRequest {
		return u.showProjects(w, r, s, he.status, formState{Problem: he.msg, Form: "policy:" + project, Values: r.PostForm})
	}
	if se := refusal(err); se != nil {
		return u.showProjects(w, r, s, se.Status, formState{Problem: se.Message, Form: "policy:" + project, Values: r.PostForm})
	}
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/ui/projects#"+project, http.StatusSeeOther)
	return nil
}

func asHTTP(err error, he **httpError) bool {
	e, ok := err.(*httpError)
	if ok {
		*he = e
	}
	return ok
}

// policyForm is the edit page of a policy.
type policyForm struct {
	Project, Name                                          string
	Required                                               int
	Approvers, Submitters, Tags, RequestExpiry, OriginNote string
	Formats                                                map[string]bool
	Problem                                                string
	Locked                                                 string // why the dashboard does not edit it
}

func (u *UI) editPolicy(w http.ResponseWriter, r *http.Request, s *session) error {
	return u.showPolicy(w, r, s, http.StatusOK, "")
}

func (u *UI) showPolicy(w http.ResponseWriter, r *http.Request, s *session, status int, problem string) error {
	project, name := r.PathValue("name"), r.PathValue("policy")
	pol, err := u.cfg.Service.GetPolicy(r.Context(), s.p, project, name)
	if err != nil {
		return err
	}
	d := policyForm{Project: project, Name: name, Required: pol.Approvals.Required, Approvers: strings.Join(pol.Approvals.Approvers, ", "),
		Submitters: strings.Join(pol.Submitters, ", "), Tags: pol.Tags, RequestExpiry: pol.RequestExpiry, Formats: map[string]bool{}, Problem: problem}
	for _, f := range pol.Formats {
		d.Formats[f] = true
	}
	if pol.Origin != nil {
		d.OriginNote = pol.Origin.Issuer + " (audience " + pol.Origin.Audience + ")"
	}
	if pol.Webhook != nil && pol.Webhook.AuthorizationSet {
		d.Locked = "This policy's webhook sends an Authorization header, which the dashboard never shows and so cannot keep; change the policy with `signet admin policy update` or the API."
	}
	u.render(w, r, s, status, "policy", d)
	return nil
}

func (u *UI) updatePolicy(w http.ResponseWriter, r *http.Request, s *session) error {
	project, name := r.PathValue("name"), r.PathValue("policy")
	cur, err := u.cfg.Service.GetPolicy(r.Context(), s.p, project, name)
	if err != nil {
		return err
	}
	if cur.Webhook != nil && cur.Webhook.AuthorizationSet {
		return u.showPolicy(w, r, s, http.StatusConflict, "The dashboard cannot keep this policy's webhook Authorization header; nothing was changed.")
	}
	spec, err := policySpec(r)
	if he, ok := err.(*httpError); ok {
		return u.showPolicy(w, r, s, he.status, he.msg)
	}
	// What the form does not show stays as it is.
	spec.Name, spec.Origin, spec.Webhook, spec.Signer = "", cur.Origin, cur.Webhook, ""
	if cur.Origin != nil {
		spec.Submitters = nil
	}
	_, err = u.cfg.Service.UpdatePolicy(r.Context(), s.p, project, name, spec)
	if se := refusal(err); se != nil {
		return u.showPolicy(w, r, s, se.Status, se.Message)
	}
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/ui/projects#"+project, http.StatusSeeOther)
	return nil
}

// revokeToken revokes an API token (its user or an admin).
func (u *UI) revokeToken(w http.ResponseWriter, r *http.Request, s *session) error {
	user, id := r.PathValue("user"), r.PathValue("id")
	err := u.cfg.Service.RevokeToken(r.Context(), s.p, user, id)
	if se := refusal(err); se != nil {
		return &httpError{se.Status, se.Message}
	}
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/ui/users", http.StatusSeeOther)
	return nil
}
