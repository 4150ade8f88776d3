package cli

// `signet admin …`: users and API tokens, projects and their keys, signing
// policies of the signing service (its HTTP API under /api/v1), with the
// API token in SIGNET_TOKEN (the server's SIGNET_ADMIN_TOKEN for the first
// setup).

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/signet-trust/signet/internal/atomicfile"
	"github.com/signet-trust/signet/internal/printable"
	"github.com/signet-trust/signet/internal/service/serviceapi"
)

func (a *app) adminCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "admin",
		Short: "Administer the signing service: users, tokens, projects, policies",
		Long: `Administer the trust server's signing service (its API at <server>/api/v1) with the API token in
SIGNET_TOKEN. For the first setup, SIGNET_TOKEN is the server's SIGNET_ADMIN_TOKEN: create an admin
user, use their token from then on, and remove SIGNET_ADMIN_TOKEN from the server's environment.`,
	}
	c.AddCommand(a.adminWhoamiCmd(), a.adminUserCmd(), a.adminTokenCmd(), a.adminProjectCmd(), a.adminPolicyCmd())
	return c
}

// admin runs fn with a client of SIGNET_TOKEN.
func (a *app) admin(ctx context.Context, fn func(c *serviceapi.Client) error) error {
	tok, err := a.apiToken()
	if err != nil {
		return err
	}
	c, s, err := a.serviceClient(tok)
	if err != nil {
		return err
	}
	if err := fn(c); err != nil {
		return apiError(s, err)
	}
	return nil
}

func (a *app) adminWhoamiCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "whoami",
		Short: "Show who SIGNET_TOKEN is",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.admin(cmd.Context(), func(c *serviceapi.Client) error {
				me, err := c.Me(cmd.Context())
				if err != nil {
					return err
				}
				if a.jsonOutput() {
					return a.printJSON(me)
				}
				role := "user"
				switch {
				case me.Admin:
					role = "admin"
				case me.Auditor:
					role = "auditor"
				}
				name := me.Name
				if name == "" {
					name = "(" + me.Kind + ")"
				}
				fmt.Fprintf(a.env.Stdout, "%s, %s", printable.Quote(name), role)
				if len(me.Manages) > 0 {
					fmt.Fprintf(a.env.Stdout, ", manages %s", quoteAll(me.Manages))
				}
				fmt.Fprintln(a.env.Stdout)
				return nil
			})
		},
	}
}

// readSecret reads one line from stdin (a password or passphrase piped
// in, never a flag).
func (a *app) readSecret(what string) (string, error) {
	line, err := bufio.NewReader(a.env.Stdin).ReadString('\n')
	if err != nil && line == "" {
		return "", fmt.Errorf("reading the %s from standard input: %w", what, err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func (a *app) adminUserCmd() *cobra.Command {
	c := &cobra.Command{Use: "user", Short: "Users of the signing service"}
	var (
		email              string
		admin, auditor     bool
		passwordStdin      bool
		setAdmin, setAudit string
		clearPassword      bool
	)
	create := &cobra.Command{
		Use:   "create NAME [--email E] [--admin|--auditor] [--password-stdin]",
		Short: "Create a user; prints their first API token (shown once)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in := serviceapi.CreateUser{Name: args[0], Email: email, Admin: admin, Auditor: auditor}
			if passwordStdin {
				pw, err := a.readSecret("password")
				if err != nil {
					return err
				}
				in.Password = pw
			}
			return a.admin(cmd.Context(), func(c *serviceapi.Client) error {
				u, err := c.CreateUser(cmd.Context(), in)
				if err != nil {
					return err
				}
				if a.jsonOutput() {
					return a.printJSON(u)
				}
				fmt.Fprintf(a.env.Stderr, "Created user %s. Their API token (shown once; give it to them, they set it as SIGNET_TOKEN):\n", u.Name)
				fmt.Fprintln(a.env.Stdout, u.Token)
				return nil
			})
		},
	}
	create.Flags().StringVar(&email, "email", "", "e-mail address for notifications")
	create.Flags().BoolVar(&admin, "admin", false, "an admin (may do everything)")
	create.Flags().BoolVar(&auditor, "auditor", false, "an auditor (reads everything, changes nothing)")
	create.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read a password for the web UI from standard input")
	list := &cobra.Command{
		Use: "list", Short: "List users", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.admin(cmd.Context(), func(c *serviceapi.Client) error {
				l, err := c.ListUsers(cmd.Context())
				if err != nil {
					return err
				}
				if a.jsonOutput() {
					return a.printJSON(l)
				}
				w := tabwriter.NewWriter(a.env.Stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "NAME\tROLE\tEMAIL\tPASSWORD\tCREATED")
				for _, u := range l.Users {
					fmt.Fprintf(w, "%s\t%s\t%s\t%v\t%s\n", printable.Quote(u.Name), userRole(u), printable.Quote(u.Email), u.HasPassword, u.Created.Format(time.RFC3339))
				}
				return w.Flush()
			})
		},
	}
	show := &cobra.Command{
		Use: "show NAME", Short: "Show a user", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.admin(cmd.Context(), func(c *serviceapi.Client) error {
				u, err := c.GetUser(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				return a.printJSON(u)
			})
		},
	}
	update := &cobra.Command{
		Use:   "update NAME [--email E] [--admin true|false] [--auditor true|false] [--password-stdin|--clear-password]",
		Short: "Change a user",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var in serviceapi.UpdateUser
			if cmd.Flags().Changed("email") {
				in.Email = &email
			}
			parse := func(name, v string) (*bool, error) {
				if !cmd.Flags().Changed(name) {
					return nil, nil
				}
				switch v {
				case "true":
					t := true
					return &t, nil
				case "false":
					f := false
					return &f, nil
				}
				return nil, usageError("--%s %q: give true or false", name, v)
			}
			var err error
			if in.Admin, err = parse("admin", setAdmin); err != nil {
				return err
			}
			if in.Auditor, err = parse("auditor", setAudit); err != nil {
				return err
			}
			switch {
			case passwordStdin && clearPassword:
				return usageError("--password-stdin or --clear-password, not both")
			case passwordStdin:
				pw, err := a.readSecret("password")
				if err != nil {
					return err
				}
				in.Password = &pw
			case clearPassword:
				empty := ""
				in.Password = &empty
			}
			return a.admin(cmd.Context(), func(c *serviceapi.Client) error {
				u, err := c.UpdateUser(cmd.Context(), args[0], in)
				if err != nil {
					return err
				}
				if a.jsonOutput() {
					return a.printJSON(u)
				}
				fmt.Fprintf(a.env.Stdout, "user %s: %s\n", printable.Quote(u.Name), userRole(u))
				return nil
			})
		},
	}
	update.Flags().StringVar(&email, "email", "", "e-mail address (empty to remove)")
	update.Flags().StringVar(&setAdmin, "admin", "", "true or false")
	update.Flags().StringVar(&setAudit, "auditor", "", "true or false")
	update.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read a new password from standard input")
	update.Flags().BoolVar(&clearPassword, "clear-password", false, "remove the password (API tokens only)")
	del := &cobra.Command{
		Use: "delete NAME", Short: "Delete a user and their tokens", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.admin(cmd.Context(), func(c *serviceapi.Client) error {
				if err := c.DeleteUser(cmd.Context(), args[0]); err != nil {
					return err
				}
				fmt.Fprintf(a.env.Stdout, "deleted user %s\n", args[0])
				return nil
			})
		},
	}
	c.AddCommand(create, list, show, update, del)
	return c
}

func userRole(u serviceapi.User) string {
	switch {
	case u.Admin:
		return "admin"
	case u.Auditor:
		return "auditor"
	}
	return "user"
}

func (a *app) adminTokenCmd() *cobra.Command {
	c := &cobra.Command{Use: "token", Short: "API tokens of users"}
	var description, expiresIn string
	create := &cobra.Command{
		Use: "create USER [--description D] [--expires-in 720h]", Short: "Make an API token (printed once)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.admin(cmd.Context(), func(c *serviceapi.Client) error {
				t, err := c.CreateToken(cmd.Context(), args[0], serviceapi.CreateToken{Description: description, ExpiresIn: expiresIn})
				if err != nil {
					return err
				}
				if a.jsonOutput() {
					return a.printJSON(t)
				}
				fmt.Fprintf(a.env.Stderr, "Token %s of %s (shown once):\n", t.ID, t.User)
				fmt.Fprintln(a.env.Stdout, t.Secret)
				return nil
			})
		},
	}
	create.Flags().StringVar(&description, "description", "", "what the token is for")
	create.Flags().StringVar(&expiresIn, "expires-in", "", "lifetime (a duration such as 720h; default: no expiry)")
	list := &cobra.Command{
		Use: "list USER", Short: "List a user's tokens", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.admin(cmd.Context(), func(c *serviceapi.Client) error {
				l, err := c.ListTokens(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if a.jsonOutput() {
					return a.printJSON(l)
				}
				w := tabwriter.NewWriter(a.env.Stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "ID\tDESCRIPTION\tCREATED\tEXPIRES\tREVOKED")
				for _, t := range l.Tokens {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", printable.Quote(t.ID), printable.Quote(t.Description), t.Created.Format(time.RFC3339), timeOr(t.Expires, "never"), timeOr(t.Revoked, "-"))
				}
				return w.Flush()
			})
		},
	}
	revoke := &cobra.Command{
		Use: "revoke USER ID", Short: "Revoke a token", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.admin(cmd.Context(), func(c *serviceapi.Client) error {
				if err := c.RevokeToken(cmd.Context(), args[0], args[1]); err != nil {
					return err
				}
				fmt.Fprintf(a.env.Stdout, "revoked token %s of %s\n", args[1], args[0])
				return nil
			})
		},
	}
	c.AddCommand(create, list, revoke)
	return c
}

func timeOr(t *time.Time, none string) string {
	if t == nil {
		return none
	}
	return t.Format(time.RFC3339)
}

type projectFlags struct {
	repository, signer, importKey, keyOut, policy string
	cosignKeyOut                                  string
	managers                                      []string
	rateLimit                                     int
}

// importedKey reads --import-key, with its passphrase from
// SIGNET_IMPORT_PASSPHRASE.
func (a *app) importedKey(f projectFlags) (string, string, error) {
	if f.importKey == "" {
		return "", "", nil
	}
	b, err := os.ReadFile(f.importKey)
	if err != nil {
		return "", "", fmt.Errorf("--import-key: %w", err)
	}
	return string(b), a.env.Getenv("SIGNET_IMPORT_PASSPHRASE"), nil
}

// writeKey writes the project's public key where --public-key-out says, as
// `docker trust signer add --key` reads it.
func (a *app) writeKey(path, pem string) error {
	if path == "" {
		return nil
	}
	if err := atomicfile.Write(path, []byte(pem), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(a.env.Stderr, "wrote the delegation key to %s\n", path)
	return nil
}

// writeCosignKey writes the project's cosign public key where
// --cosign-key-out says, as cosign verify --key reads it.
func (a *app) writeCosignKey(path string, p serviceapi.Project) error {
	if path == "" {
		return nil
	}
	if p.CosignPublicKey == "" {
		return fmt.Errorf("project %s has no cosign key", p.Name)
	}
	if err := atomicfile.Write(path, []byte(p.CosignPublicKey), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(a.env.Stderr, "wrote the cosign key to %s\n", path)
	return nil
}

func (a *app) printProject(p serviceapi.Project) error {
	if a.jsonOutput() {
		return a.printJSON(p)
	}
	w := tabwriter.NewWriter(a.env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "Project\t%s\n", printable.Quote(p.Name))
	fmt.Fprintf(w, "Repository\t%s\n", printable.Quote(p.Repository))
	fmt.Fprintf(w, "Signer\t%s (key %s)\n", printable.Quote(p.Signer), printable.Quote(p.KeyID))
	fmt.Fprintf(w, "Cosign key\t%s\n", printable.Quote(p.CosignKeyID))
	if len(p.Managers) > 0 {
		fmt.Fprintf(w, "Managers\t%s\n", quoteAll(p.Managers))
	}
	if len(p.Policies) > 0 {
		fmt.Fprintf(w, "Policies\t%s\n", quoteAll(p.Policies))
	}
	if st := p.State; st != nil {
		ready := "yes"
		if !st.Ready {
			ready = "no: " + printable.Quote(st.Fix)
		}
		fmt.Fprintf(w, "Ready to sign\t%s\n", ready)
		fmt.Fprintf(w, "Server-managed snapshot\t%v\n", st.ServerManagedSnapshot)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(a.env.Stdout, "\n%s", printable.Lines(p.PublicKey))
	return nil
}

func (a *app) adminProjectCmd() *cobra.Command {
	c := &cobra.Command{Use: "project", Short: "Projects: a repository, its signer and the keys the service holds for it"}
	var f projectFlags
	create := &cobra.Command{
		Use:   "create NAME --repository GUN --signer NAME [--manager USER…] [--import-key FILE] [--public-key-out FILE] [--cosign-key-out FILE]",
		Short: "Create a project; its delegation key is made in the server's custody (or imported)",
		Long: `Create a project. The service makes its delegation key in custody (or imports --import-key, whose
passphrase is read from SIGNET_IMPORT_PASSPHRASE) and a cosign key. The repository's owner then adds
the public key as a signer, exactly as for a person:

  signet admin project create app --repository registry.example.com/org/app --signer ci --public-key-out ci.pub
  docker trust signer add --key ci.pub ci registry.example.com/org/app`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			key, pass, err := a.importedKey(f)
			if err != nil {
				return err
			}
			return a.admin(cmd.Context(), func(c *serviceapi.Client) error {
				p, err := c.CreateProject(cmd.Context(), serviceapi.CreateProject{Name: args[0], Repository: f.repository, Signer: f.signer,
					Managers: f.managers, RateLimit: f.rateLimit, PrivateKey: key, Passphrase: pass})
				if err != nil {
					return err
				}
				if err := a.writeKey(f.keyOut, p.PublicKey); err != nil {
					return err
				}
				if err := a.writeCosignKey(f.cosignKeyOut, p); err != nil {
					return err
				}
				return a.printProject(p)
			})
		},
	}
	create.Flags().StringVar(&f.repository, "repository", "", "the repository (GUN), as docker trust names it")
	create.Flags().StringVar(&f.signer, "signer", "", "the signer name (the role targets/NAME)")
	create.Flags().StringSliceVar(&f.managers, "manager", nil, "a user who manages the project's policies and keys (repeatable)")
	create.Flags().IntVar(&f.rateLimit, "rate-limit", 0, "signing requests accepted per hour (default: the server's)")
	create.Flags().StringVar(&f.importKey, "import-key", "", "an existing delegation key file to import instead of generating one")
	create.Flags().StringVar(&f.keyOut, "public-key-out", "", "write the delegation public key to this file (for docker trust signer add --key)")
	create.Flags().StringVar(&f.cosignKeyOut, "cosign-key-out", "", "write the cosign public key to this file (for cosign verify --key, signet verify --cosign-key)")
	list := &cobra.Command{
		Use: "list", Short: "List projects", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.admin(cmd.Context(), func(c *serviceapi.Client) error {
				l, err := c.ListProjects(cmd.Context())
				if err != nil {
					return err
				}
				if a.jsonOutput() {
					return a.printJSON(l)
				}
				w := tabwriter.NewWriter(a.env.Stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "NAME\tREPOSITORY\tSIGNER\tKEY")
				for _, p := range l.Projects {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", printable.Quote(p.Name), printable.Quote(p.Repository), printable.Quote(p.Signer), printable.Quote(p.KeyID))
				}
				return w.Flush()
			})
		},
	}
	show := &cobra.Command{
		Use: "show NAME [--public-key-out FILE] [--cosign-key-out FILE]", Short: "Show a project, its key and whether its repository is ready", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.admin(cmd.Context(), func(c *serviceapi.Client) error {
				p, err := c.GetProject(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if err := a.writeKey(f.keyOut, p.PublicKey); err != nil {
					return err
				}
				if err := a.writeCosignKey(f.cosignKeyOut, p); err != nil {
					return err
				}
				return a.printProject(p)
			})
		},
	}
	show.Flags().StringVar(&f.keyOut, "public-key-out", "", "write the delegation public key to this file")
	show.Flags().StringVar(&f.cosignKeyOut, "cosign-key-out", "", "write the cosign public key to this file (for cosign verify --key, signet verify --cosign-key)")
	update := &cobra.Command{
		Use: "update NAME [--manager USER…] [--rate-limit N]", Short: "Change a project's managers or rate limit", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var in serviceapi.UpdateProject
			if cmd.Flags().Changed("manager") {
				m := f.managers
				if m == nil {
					m = []string{}
				}
				in.Managers = &m
			}
			if cmd.Flags().Changed("rate-limit") {
				in.RateLimit = &f.rateLimit
			}
			return a.admin(cmd.Context(), func(c *serviceapi.Client) error {
				p, err := c.UpdateProject(cmd.Context(), args[0], in)
				if err != nil {
					return err
				}
				return a.printProject(p)
			})
		},
	}
	update.Flags().StringSliceVar(&f.managers, "manager", nil, "the project's managers (replaces the list; repeatable)")
	update.Flags().IntVar(&f.rateLimit, "rate-limit", 0, "signing requests accepted per hour (0: the server's default)")
	del := &cobra.Command{
		Use: "delete NAME", Short: "Delete a project, its policies and its keys", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.admin(cmd.Context(), func(c *serviceapi.Client) error {
				if err := c.DeleteProject(cmd.Context(), args[0]); err != nil {
					return err
				}
				fmt.Fprintf(a.env.Stdout, "deleted project %s\n", args[0])
				return nil
			})
		},
	}
	rotate := &cobra.Command{
		Use:   "rotate-key NAME [--policy P] [--import-key FILE] [--public-key-out FILE]",
		Short: "Give the project's signer (or a policy's own) a new delegation key",
		Long: `Give the project's signer (or the own signer of --policy) a new delegation key, made in custody or
imported. Signatures of the old key stay valid while the old key stays in the delegation; new requests
are signed once the owner adds the new key:

  docker trust signer add --key new.pub <signer> <repository>`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			key, pass, err := a.importedKey(f)
			if err != nil {
				return err
			}
			return a.admin(cmd.Context(), func(c *serviceapi.Client) error {
				p, err := c.RotateKey(cmd.Context(), args[0], serviceapi.RotateKey{Policy: f.policy, PrivateKey: key, Passphrase: pass})
				if err != nil {
					return err
				}
				pem := p.PublicKey
				if f.policy != "" {
					pol, err := c.GetPolicy(cmd.Context(), args[0], f.policy)
					if err != nil {
						return err
					}
					pem = pol.PublicKey
				}
				if err := a.writeKey(f.keyOut, pem); err != nil {
					return err
				}
				return a.printProject(p)
			})
		},
	}
	rotate.Flags().StringVar(&f.policy, "policy", "", "rotate the own key of this policy")
	rotate.Flags().StringVar(&f.importKey, "import-key", "", "an existing delegation key file to import (passphrase in SIGNET_IMPORT_PASSPHRASE)")
	rotate.Flags().StringVar(&f.keyOut, "public-key-out", "", "write the new public key to this file")
	c.AddCommand(create, list, show, update, del, rotate)
	return c
}

type policyFlags struct {
	file                                   string
	approvers, submitters, claims, formats []string
	required                               int
	issuer, audience, tags, signer, expiry string
	webhookURL, webhookAuthEnv             string
}

// spec builds a policy from --file (JSON as the API takes it) or flags.
func (a *app) policySpec(cmd *cobra.Command, name string, f policyFlags) (serviceapi.PolicySpec, error) {
	if f.file != "" {
		b, err := os.ReadFile(f.file)
		if err != nil {
			return serviceapi.PolicySpec{}, err
		}
		var spec serviceapi.PolicySpec
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&spec); err != nil {
			return spec, fmt.Errorf("%s: %w", f.file, err)
		}
		if spec.Name == "" {
			spec.Name = name
		}
		return spec, nil
	}
	spec := serviceapi.PolicySpec{Name: name, Approvals: serviceapi.Approvals{Required: f.required, Approvers: f.approvers},
		Submitters: f.submitters, Tags: f.tags, Formats: f.formats, Signer: f.signer, RequestExpiry: f.expiry}
	if spec.Approvals.Approvers == nil {
		spec.Approvals.Approvers = []string{}
	}
	if f.issuer != "" || f.audience != "" || len(f.claims) > 0 {
		o := &serviceapi.Origin{Issuer: f.issuer, Audience: f.audience, Claims: map[string]string{}}
		for _, c := range f.claims {
			k, v, ok := strings.Cut(c, "=")
			if !ok || k == "" {
				return spec, usageError("--claim %q: use NAME=PATTERN", c)
			}
			o.Claims[k] = v
		}
		spec.Origin = o
	}
	if f.webhookURL != "" {
		spec.Webhook = &serviceapi.Webhook{URL: f.webhookURL}
		if f.webhookAuthEnv != "" {
			spec.Webhook.Authorization = a.env.Getenv(f.webhookAuthEnv)
		}
	}
	return spec, nil
}

func addPolicyFlags(cmd *cobra.Command, f *policyFlags) {
	fl := cmd.Flags()
	fl.StringVarP(&f.file, "file", "f", "", "the policy as JSON (the API's document), instead of the flags")
	fl.IntVar(&f.required, "required", 0, "approvals required (0 signs at once)")
	fl.StringSliceVar(&f.approvers, "approvers", nil, "users who approve (comma-separated)")
	fl.StringSliceVar(&f.submitters, "submitters", nil, "users who submit with API tokens (comma-separated)")
	fl.StringVar(&f.issuer, "issuer", "", "origin: the CI's OIDC issuer (https://token.actions.githubusercontent.com, https://gitlab.com)")
	fl.StringVar(&f.audience, "audience", "", "origin: the audience the ID token must carry")
	fl.StringArrayVar(&f.claims, "claim", nil, "origin: a claim the token must match, NAME=VALUE or NAME=GLOB (repeatable)")
	fl.StringVar(&f.tags, "tags", "", "a regular expression every tag must match")
	fl.StringSliceVar(&f.formats, "formats", nil, "signature formats: dct (Docker Content Trust), cosign, or dct,cosign for both (default dct)")
	fl.StringVar(&f.signer, "signer", "", "the policy's own signer role and key (set at creation)")
	fl.StringVar(&f.expiry, "request-expiry", "", "how long a request awaits approval (default 168h)")
	fl.StringVar(&f.webhookURL, "webhook-url", "", "an https URL final statuses are POSTed to")
	fl.StringVar(&f.webhookAuthEnv, "webhook-auth-env", "", "the environment variable holding the webhook's Authorization header")
}

func (a *app) printPolicy(p serviceapi.Policy) error {
	if a.jsonOutput() {
		return a.printJSON(p)
	}
	enc := json.NewEncoder(a.env.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(p)
}

func (a *app) adminPolicyCmd() *cobra.Command {
	c := &cobra.Command{Use: "policy", Short: "Signing policies: who submits, from which CI, who approves, which tags"}
	var f policyFlags
	create := &cobra.Command{
		Use:   "create PROJECT NAME [--file policy.json | flags]",
		Short: "Create a signing policy",
		Long: `Create a signing policy, from --file (the API's JSON document) or flags, for example a release policy
taking GitHub Actions submissions from main and tags, with 2 of 3 approvals:

  signet admin policy create app release --required 2 --approvers alice,bob,carol \
    --issuer https://token.actions.githubusercontent.com --audience signet \
    --claim repository=acme/app --claim 'ref=refs/heads/main' --tags 'v[0-9]+(\.[0-9]+)*'`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			spec, err := a.policySpec(cmd, args[1], f)
			if err != nil {
				return err
			}
			return a.admin(cmd.Context(), func(c *serviceapi.Client) error {
				p, err := c.CreatePolicy(cmd.Context(), args[0], spec)
				if err != nil {
					return err
				}
				return a.printPolicy(p)
			})
		},
	}
	addPolicyFlags(create, &f)
	update := &cobra.Command{
		Use:   "update PROJECT NAME [--file policy.json | flags]",
		Short: "Replace a policy's rules (pending requests are decided under the new ones)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			spec, err := a.policySpec(cmd, args[1], f)
			if err != nil {
				return err
			}
			return a.admin(cmd.Context(), func(c *serviceapi.Client) error {
				p, err := c.UpdatePolicy(cmd.Context(), args[0], args[1], spec)
				if err != nil {
					return err
				}
				return a.printPolicy(p)
			})
		},
	}
	addPolicyFlags(update, &f)
	list := &cobra.Command{
		Use: "list PROJECT", Short: "List a project's policies", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.admin(cmd.Context(), func(c *serviceapi.Client) error {
				l, err := c.ListPolicies(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if a.jsonOutput() {
					return a.printJSON(l)
				}
				w := tabwriter.NewWriter(a.env.Stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "NAME\tAPPROVALS\tSUBMITS\tTAGS")
				for _, p := range l.Policies {
					from := strings.Join(p.Submitters, ",")
					if p.Origin != nil {
						from = p.Origin.Issuer
					}
					fmt.Fprintf(w, "%s\t%d of %s\t%s\t%s\n", printable.Quote(p.Name), p.Approvals.Required, printable.Quote(strings.Join(p.Approvals.Approvers, ",")), printable.Quote(from), printable.Quote(fmt.Sprint(p.Tags)))
				}
				return w.Flush()
			})
		},
	}
	show := &cobra.Command{
		Use: "show PROJECT NAME", Short: "Show a policy", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.admin(cmd.Context(), func(c *serviceapi.Client) error {
				p, err := c.GetPolicy(cmd.Context(), args[0], args[1])
				if err != nil {
					return err
				}
				return a.printPolicy(p)
			})
		},
	}
	del := &cobra.Command{
		Use: "delete PROJECT NAME", Short: "Delete a policy", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.admin(cmd.Context(), func(c *serviceapi.Client) error {
				if err := c.DeletePolicy(cmd.Context(), args[0], args[1]); err != nil {
					return err
				}
				fmt.Fprintf(a.env.Stdout, "deleted policy %s/%s\n", args[0], args[1])
				return nil
			})
		},
	}
	c.AddCommand(create, update, list, show, del)
	return c
}
