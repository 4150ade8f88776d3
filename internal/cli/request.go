package cli

// `signet request …`: signing requests of the signing service (its HTTP
// API under /api/v1, through internal/service/serviceapi): submit from CI
// with an OIDC ID token or from a user with an API token, follow, approve,
// deny, cancel, resubmit. The token is SIGNET_TOKEN (an API token), or for
// submissions to a policy with an origin rule, the CI's ID token
// (--id-token-file or SIGNET_ID_TOKEN).

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/signet-trust/signet/internal/printable"
	"github.com/signet-trust/signet/internal/service/serviceapi"
)

// serviceClient builds the API client: the server and TLS settings as for
// the Notary API (-s, --tlscacert, config.json), the bearer token given.
func (a *app) serviceClient(token string) (*serviceapi.Client, *settings, error) {
	s, err := a.notarySettings()
	if err != nil {
		return nil, nil, err
	}
	hc, err := s.httpClient()
	if err != nil {
		return nil, nil, err
	}
	return &serviceapi.Client{Server: s.server, HTTP: hc, Token: token}, s, nil
}

// apiToken is SIGNET_TOKEN, required.
func (a *app) apiToken() (string, error) {
	tok := strings.TrimSpace(a.env.Getenv("SIGNET_TOKEN"))
	if tok == "" {
		return "", usageError("set SIGNET_TOKEN to your API token (signet admin token create, or the token shown when your user was created)")
	}
	return tok, nil
}

// apiError turns an API error into a sentence for people, and TLS errors
// into steps.
func apiError(s *settings, err error) error {
	var ae *serviceapi.Error
	if errors.As(err, &ae) {
		if ae.Status == 404 && ae.Code == "HTTP_404" {
			return fmt.Errorf("%s does not serve the signing service API (%s)", s.server, ae.Message)
		}
		return fmt.Errorf("%s (%s)", ae.Message, ae.Code)
	}
	return s.explainTLS(err)
}

type requestOptions struct {
	project, policy, digest, description, runID string
	params                                      []string
	idTokenFile                                 string
	wait                                        bool
	timeout                                     time.Duration
	// list
	status, limit string
	all, csv      bool
}

func (a *app) requestCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "request",
		Short: "Signing requests of the signing service",
		Long: `Signing requests of the trust server's signing service (its API at <server>/api/v1).

The server is -s (or config.json's remote_server), its CA --tlscacert. Your API token is read
from SIGNET_TOKEN. A CI job submitting to a policy with an origin rule sends its OIDC ID token
instead (--id-token-file FILE, or SIGNET_ID_TOKEN).`,
	}
	c.AddCommand(a.requestSubmitCmd(), a.requestStatusCmd(), a.requestListCmd(), a.requestDecideCmd(true), a.requestDecideCmd(false),
		a.requestWaitCmd(), a.requestCancelCmd(), a.requestResubmitCmd())
	return c
}

func (a *app) requestSubmitCmd() *cobra.Command {
	var o requestOptions
	c := &cobra.Command{
		Use:   "submit --project P --policy N IMAGE:TAG [IMAGE:TAG…]",
		Short: "Submit a signing request for tags of the project's repository",
		Long: `Submit a signing request. The server resolves each tag in the registry and signs exactly the digest
it points at now (--digest: refuse unless it is this one), after the policy's approvals.

With --wait, status changes are printed until the request is final; the exit code is 0 only when
it is signed.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return a.requestSubmit(cmd.Context(), o, args) },
	}
	f := c.Flags()
	f.StringVar(&o.project, "project", "", "the project (required)")
	f.StringVar(&o.policy, "policy", "", "the signing policy (required)")
	f.StringVar(&o.digest, "digest", "", "the digest the tag must point at (sha256:…; one image only)")
	f.StringVar(&o.description, "description", "", "what is being signed, for the approvers")
	f.StringArrayVar(&o.params, "param", nil, "a parameter NAME=VALUE for the approvers (repeatable)")
	f.StringVar(&o.runID, "run-id", "", "identifies the CI run, so that a re-run attaches to its pending request (default: the ID token's run_id or pipeline_id)")
	f.StringVar(&o.idTokenFile, "id-token-file", "", "file holding the CI's OIDC ID token (default: $SIGNET_ID_TOKEN)")
	f.BoolVar(&o.wait, "wait", false, "wait for the request to be final; exit 0 only if it is signed")
	f.DurationVar(&o.timeout, "timeout", time.Hour, "how long --wait waits")
	return c
}

func (a *app) requestSubmit(ctx context.Context, o requestOptions, images []string) error {
	if o.project == "" || o.policy == "" {
		return usageError("--project and --policy are required")
	}
	if o.digest != "" && len(images) > 1 {
		return usageError("--digest goes with one image")
	}
	token, err := a.submitToken(o.idTokenFile)
	if err != nil {
		return err
	}
	in := serviceapi.Submit{Project: o.project, Policy: o.policy, Description: o.description, RunID: o.runID}
	if len(images) == 1 {
		in.Image, in.Digest = images[0], o.digest
	} else {
		for _, im := range images {
			in.Images = append(in.Images, serviceapi.ImageRef{Image: im})
		}
	}
	for _, p := range o.params {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return usageError("--param %q: use NAME=VALUE", p)
		}
		if in.Parameters == nil {
			in.Parameters = map[string]string{}
		}
		in.Parameters[k] = v
	}
	c, s, err := a.serviceClient(token)
	if err != nil {
		return err
	}
	r, err := c.Submit(ctx, in)
	if err != nil {
		return apiError(s, err)
	}
	if !o.wait {
		return a.printRequest(r)
	}
	fmt.Fprintf(a.env.Stdout, "request %s submitted: %s\n", printable.Quote(r.ID), describe(r))
	// Follow with the request's status token: the ID token may expire
	// while approvals take their time.
	follow := *c
	if r.StatusToken != "" {
		follow.Token = r.StatusToken
	}
	return a.waitFor(ctx, &follow, s, r, o.timeout)
}

// submitToken is the bearer of a submission: the CI's ID token when one is
// given, else SIGNET_TOKEN.
func (a *app) submitToken(file string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("ID token: %w", err)
		}
		if t := strings.TrimSpace(string(b)); t != "" {
			return t, nil
		}
		return "", fmt.Errorf("ID token file %s is empty", file)
	}
	if t := strings.TrimSpace(a.env.Getenv("SIGNET_ID_TOKEN")); t != "" {
		return t, nil
	}
	if t := strings.TrimSpace(a.env.Getenv("SIGNET_TOKEN")); t != "" {
		return t, nil
	}
	return "", usageError("no credentials: give the CI's ID token (--id-token-file FILE or SIGNET_ID_TOKEN), or your API token in SIGNET_TOKEN")
}

// describe is a request's status in words.
func describe(r serviceapi.Request) string {
	switch r.Status {
	case serviceapi.StatusAwaitingApproval:
		var who []string
		for _, d := range r.Approvals {
			who = append(who, printable.Quote(d.User))
		}
		s := fmt.Sprintf("awaiting approval (%d of %d", len(r.Approvals), r.Required)
		if len(who) > 0 {
			s += ": " + strings.Join(who, ", ")
		}
		return s + ")"
	case serviceapi.StatusSigned:
		return "signed"
	case serviceapi.StatusSigning:
		return "approved, being signed"
	}
	if r.Reason != "" {
		return printable.Quote(r.Status) + ": " + printable.Quote(r.Reason)
	}
	return printable.Quote(r.Status)
}

// waitFor prints r's status changes until it is final or timeout passes;
// it returns nil only when it is signed.
func (a *app) waitFor(ctx context.Context, c *serviceapi.Client, s *settings, r serviceapi.Request, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := describe(r)
	delay := 250 * time.Millisecond
	failures := 0
	for !serviceapi.FinalStatus(r.Status) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("request %s is still %s after %v", r.ID, last, timeout)
		case <-time.After(delay):
		}
		delay = min(delay*2, 5*time.Second)
		got, err := c.GetRequest(ctx, r.ID)
		if err != nil {
			var ae *serviceapi.Error
			if ctx.Err() == nil && (!errors.As(err, &ae) || ae.Status >= 500) && failures < 10 {
				failures++ // the server restarting, a network hiccup
				continue
			}
			if ctx.Err() != nil {
				return fmt.Errorf("request %s is still %s after %v", r.ID, last, timeout)
			}
			return apiError(s, err)
		}
		failures = 0
		r = got
		if d := describe(r); d != last {
			fmt.Fprintf(a.env.Stdout, "%s %s\n", time.Now().UTC().Format(time.RFC3339), d)
			last = d
			delay = 250 * time.Millisecond
		}
	}
	if r.Status != serviceapi.StatusSigned {
		return fmt.Errorf("request %s was not signed: %s", printable.Quote(r.ID), describe(r))
	}
	for _, im := range r.Images {
		fmt.Fprintf(a.env.Stdout, "signed %s as %s (%d bytes)\n", printable.Quote(im.Image), printable.Quote(im.Digest), im.Size)
	}
	for _, c := range r.Cosign {
		fmt.Fprintf(a.env.Stdout, "cosign signature of %s (%s): %s\n", printable.Quote(c.Digest), printable.Quote(c.Form), printable.Quote(c.Ref))
	}
	return nil
}

func (a *app) printRequest(r serviceapi.Request) error {
	if a.jsonOutput() {
		return a.printJSON(r)
	}
	w := tabwriter.NewWriter(a.env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "ID\t%s\n", printable.Quote(r.ID))
	fmt.Fprintf(w, "Status\t%s\n", describe(r))
	fmt.Fprintf(w, "Project\t%s (policy %s)\n", printable.Quote(r.Project), printable.Quote(r.Policy))
	for _, im := range r.Images {
		fmt.Fprintf(w, "Image\t%s\t%s\t%d bytes\n", printable.Quote(im.Image), printable.Quote(im.Digest), im.Size)
	}
	fmt.Fprintf(w, "Submitter\t%s\n", printable.Quote(r.Submitter))
	if len(r.Origin) > 0 {
		var names []string
		for k := range r.Origin {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			fmt.Fprintf(w, "Origin\t%s=%s\n", printable.Quote(k), printable.Quote(r.Origin[k]))
		}
	}
	if r.Description != "" {
		fmt.Fprintf(w, "Description\t%s\n", printable.Quote(r.Description))
	}
	for _, d := range r.Approvals {
		fmt.Fprintf(w, "Approved\t%s\t%s\t%s\n", printable.Quote(d.User), d.Time.Format(time.RFC3339), printable.Quote(d.Comment))
	}
	for _, d := range r.Denials {
		fmt.Fprintf(w, "Denied\t%s\t%s\t%s\n", printable.Quote(d.User), d.Time.Format(time.RFC3339), printable.Quote(d.Comment))
	}
	if len(r.Formats) > 0 {
		fmt.Fprintf(w, "Formats\t%s\n", quoteAll(r.Formats))
	}
	for _, sr := range r.Signed {
		fmt.Fprintf(w, "Published\t%s\tversion %d\n", printable.Quote(sr.Role), sr.Version)
	}
	for _, c := range r.Cosign {
		fmt.Fprintf(w, "Cosign\t%s\t%s\t%s\n", printable.Quote(c.Digest), printable.Quote(c.Form), printable.Quote(c.Ref))
	}
	if r.ResubmittedFrom != "" {
		fmt.Fprintf(w, "Resubmitted from\t%s\n", printable.Quote(r.ResubmittedFrom))
	}
	fmt.Fprintf(w, "Created\t%s\n", r.Created.Format(time.RFC3339))
	if r.Status == serviceapi.StatusAwaitingApproval {
		fmt.Fprintf(w, "Expires\t%s\n", r.Expires.Format(time.RFC3339))
	}
	if r.StatusToken != "" {
		fmt.Fprintf(w, "Status token\t%s\n", printable.Quote(r.StatusToken))
	}
	return w.Flush()
}

// readingClient is the client of commands that read one request: with
// SIGNET_TOKEN, or else the CI's ID token.
func (a *app) readingClient(idTokenFile string) (*serviceapi.Client, *settings, error) {
	tok := strings.TrimSpace(a.env.Getenv("SIGNET_TOKEN"))
	if tok == "" {
		var err error
		if tok, err = a.submitToken(idTokenFile); err != nil {
			return nil, nil, err
		}
	}
	return a.serviceClient(tok)
}

func (a *app) requestStatusCmd() *cobra.Command {
	var idTokenFile string
	c := &cobra.Command{
		Use:   "status ID",
		Short: "Show a signing request",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, s, err := a.readingClient(idTokenFile)
			if err != nil {
				return err
			}
			r, err := c.GetRequest(cmd.Context(), args[0])
			if err != nil {
				return apiError(s, err)
			}
			return a.printRequest(r)
		},
	}
	c.Flags().StringVar(&idTokenFile, "id-token-file", "", "file holding the CI's OIDC ID token, when SIGNET_TOKEN is not set")
	return c
}

func (a *app) requestWaitCmd() *cobra.Command {
	var o requestOptions
	c := &cobra.Command{
		Use:   "wait ID",
		Short: "Wait for a signing request to be final; exit 0 only if it is signed",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, s, err := a.readingClient(o.idTokenFile)
			if err != nil {
				return err
			}
			r, err := c.GetRequest(cmd.Context(), args[0])
			if err != nil {
				return apiError(s, err)
			}
			fmt.Fprintf(a.env.Stdout, "request %s: %s\n", printable.Quote(r.ID), describe(r))
			return a.waitFor(cmd.Context(), c, s, r, o.timeout)
		},
	}
	c.Flags().DurationVar(&o.timeout, "timeout", time.Hour, "how long to wait")
	c.Flags().StringVar(&o.idTokenFile, "id-token-file", "", "file holding the CI's OIDC ID token, when SIGNET_TOKEN is not set")
	return c
}

func (a *app) requestListCmd() *cobra.Command {
	var o requestOptions
	c := &cobra.Command{
		Use:   "list [--status S] [--project P [--policy N]]",
		Short: "List signing requests, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tok, err := a.apiToken()
			if err != nil {
				return err
			}
			c, s, err := a.serviceClient(tok)
			if err != nil {
				return err
			}
			f := serviceapi.ListFilter{Status: o.status, Project: o.project, Policy: o.policy}
			if o.limit != "" {
				if _, err := fmt.Sscanf(o.limit, "%d", &f.Limit); err != nil || f.Limit < 1 {
					return usageError("--limit %q: give a positive number", o.limit)
				}
			}
			if o.csv {
				if err := c.ExportCSV(cmd.Context(), f, a.env.Stdout); err != nil {
					return apiError(s, err)
				}
				return nil
			}
			var all []serviceapi.Request
			for {
				page, err := c.ListRequests(cmd.Context(), f)
				if err != nil {
					return apiError(s, err)
				}
				all = append(all, page.Requests...)
				if !o.all || page.NextPageToken == "" {
					break
				}
				f.PageToken = page.NextPageToken
			}
			if a.jsonOutput() {
				return a.printJSON(all)
			}
			w := tabwriter.NewWriter(a.env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tPROJECT\tPOLICY\tSTATUS\tIMAGE\tSUBMITTER\tCREATED")
			for _, r := range all {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", printable.Quote(r.ID), printable.Quote(r.Project), printable.Quote(r.Policy), printable.Quote(r.Status), printable.Quote(r.Image), printable.Quote(r.Submitter), r.Created.Format(time.RFC3339))
			}
			return w.Flush()
		},
	}
	f := c.Flags()
	f.StringVar(&o.status, "status", "", "only requests in this status (awaiting_approval, signing, signed, denied, failed, canceled, expired)")
	f.StringVar(&o.project, "project", "", "only requests of this project")
	f.StringVar(&o.policy, "policy", "", "only requests of this policy (with --project)")
	f.StringVar(&o.limit, "limit", "", "at most this many (a page; default 50)")
	f.BoolVar(&o.all, "all", false, "every page")
	f.BoolVar(&o.csv, "csv", false, "export as CSV (every matching request, or --limit)")
	return c
}

func (a *app) requestDecideCmd(approve bool) *cobra.Command {
	var comment string
	use, short := "approve ID", "Approve a signing request (the final approval signs it)"
	if !approve {
		use, short = "deny ID --comment TEXT", "Deny a signing request (one denial ends it)"
	}
	c := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !approve && strings.TrimSpace(comment) == "" {
				return usageError("say why with --comment")
			}
			tok, err := a.apiToken()
			if err != nil {
				return err
			}
			c, s, err := a.serviceClient(tok)
			if err != nil {
				return err
			}
			var r serviceapi.Request
			if approve {
				r, err = c.Approve(cmd.Context(), args[0], comment)
			} else {
				r, err = c.Deny(cmd.Context(), args[0], comment)
			}
			if err != nil {
				return apiError(s, err)
			}
			if a.jsonOutput() {
				return a.printJSON(r)
			}
			fmt.Fprintf(a.env.Stdout, "request %s: %s\n", printable.Quote(r.ID), describe(r))
			return nil
		},
	}
	c.Flags().StringVar(&comment, "comment", "", "a comment for the record")
	return c
}

func (a *app) requestCancelCmd() *cobra.Command {
	var reason string
	c := &cobra.Command{
		Use:   "cancel ID",
		Short: "Cancel a signing request awaiting approval",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, s, err := a.readingClient("")
			if err != nil {
				return err
			}
			r, err := c.Cancel(cmd.Context(), args[0], reason)
			if err != nil {
				return apiError(s, err)
			}
			fmt.Fprintf(a.env.Stdout, "request %s: %s\n", printable.Quote(r.ID), describe(r))
			return nil
		},
	}
	c.Flags().StringVar(&reason, "reason", "", "why, for the record")
	return c
}

func (a *app) requestResubmitCmd() *cobra.Command {
	var o requestOptions
	c := &cobra.Command{
		Use:   "resubmit ID --policy N",
		Short: "Send a request's images (same digests, same origin) to another policy of its project",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.policy == "" {
				return usageError("--policy is required")
			}
			tok, err := a.apiToken()
			if err != nil {
				return err
			}
			c, s, err := a.serviceClient(tok)
			if err != nil {
				return err
			}
			r, err := c.Resubmit(cmd.Context(), args[0], serviceapi.Resubmit{Policy: o.policy, Description: o.description})
			if err != nil {
				return apiError(s, err)
			}
			if !o.wait {
				return a.printRequest(r)
			}
			fmt.Fprintf(a.env.Stdout, "request %s submitted: %s\n", printable.Quote(r.ID), describe(r))
			return a.waitFor(cmd.Context(), c, s, r, o.timeout)
		},
	}
	c.Flags().StringVar(&o.policy, "policy", "", "the policy to send it to (required)")
	c.Flags().StringVar(&o.description, "description", "", "a new description (default: the request's)")
	c.Flags().BoolVar(&o.wait, "wait", false, "wait for the new request to be final; exit 0 only if it is signed")
	c.Flags().DurationVar(&o.timeout, "timeout", time.Hour, "how long --wait waits")
	return c
}
