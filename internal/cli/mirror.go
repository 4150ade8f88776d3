package cli

// `signet mirror --from URL GUN…`: copy repositories' trust history from
// another Notary server (notary.docker.io, a self-hosted notary-server, or
// another signet-server) into the signet-server given by -s, through its
// import endpoint, which verifies the whole history before storing it.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/signet-trust/signet/internal/client"
	"github.com/signet-trust/signet/internal/notaryapi"
	"github.com/signet-trust/signet/internal/origin"
	"github.com/signet-trust/signet/internal/printable"
	"github.com/signet-trust/signet/internal/registry"
	"github.com/signet-trust/signet/internal/tuf"
)

// envNotaryAuth is the notary client's credentials variable:
// base64("user:password"), sent to the trust server's token service.
const envNotaryAuth = "NOTARY_AUTH"

type mirrorCmd struct {
	a      *app
	from   string
	fromCA string
}

func (m *mirrorCmd) command() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "mirror --from URL [--from-ca FILE] GUN...",
		Short: "Copy repositories' trust history from another Notary server into this signet-server (-s)",
		Long: `Copy each repository's whole trust history from the Notary server at --from into the
signet-server given by -s (or remote_server.url of the notary configuration): every root
version, and the current timestamp, snapshot, targets and delegations, byte for byte.
signet-server verifies the whole history before it stores anything, and stores only what is
newer than what it holds: mirroring again is harmless, and a history that conflicts with the
one it holds is refused with the reason.

Afterwards clients need only the new server URL (and its CA): fresh clients, the owner's trust
directory and clients that trusted an older root all verify. signet-server serves the imported
timestamp until the owner moves the timestamp key to it, before that timestamp expires:

  notary -s NEW key rotate GUN timestamp -r

The source is read anonymously, or, when it answers with a registry token challenge, with the
Docker configuration's credentials for its host (for notary.docker.io: Docker Hub's, from
docker login). Importing needs the admin scope ("*") on each repository when signet-server
checks tokens: credentials come from ` + envNotaryAuth + ` (base64 of user:password, as notary),
else from the Docker configuration for the server's host. See docs/migrate.md.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return m.run(cmd.Context(), args)
		},
	}
	cmd.Flags().StringVar(&m.from, "from", "", "`URL` of the Notary server to copy from (https://notary.docker.io, https://notary.example.com:4443)")
	cmd.Flags().StringVar(&m.fromCA, "from-ca", "", "CA certificate `file` the source's TLS certificate must chain to (default: the system's)")
	return cmd
}

// mirrorJSON is one repository of --output json.
type mirrorJSON struct {
	GUN  string `json:"gun"`
	From string `json:"from"`
	// Error is set when the repository was not mirrored.
	Error string `json:"error,omitempty"`
	*notaryapi.ImportResult
	Source *mirrorSource `json:"source,omitempty"`
}

// mirrorSource is what was read from the source.
type mirrorSource struct {
	Roots    [2]int         `json:"roots"`
	Versions map[string]int `json:"versions"`
}

func (m *mirrorCmd) run(ctx context.Context, guns []string) error {
	from, err := url.Parse(m.from)
	if m.from == "" || err != nil || from.Host == "" || (from.Scheme != "https" && from.Scheme != "http") {
		return usageError("--from URL is required: the Notary server to copy from (https://host[:port])")
	}
	if from.Scheme == "http" && !origin.IsLoopback(from.Host) {
		return usageError("--from %s: a Notary server is spoken to over https (plain http only on loopback)", m.from)
	}
	s, err := m.a.notarySettings()
	if err != nil {
		return err
	}
	if m.a.server == "" && s.pinning.RemoteServer.URL == "" {
		return usageError("the signet-server to copy into is required: -s URL (or remote_server.url in the notary configuration)")
	}
	dest, err := url.Parse(s.server)
	if err != nil || dest.Host == "" {
		return usageError("trust server URL %q is not valid", s.server)
	}
	if strings.EqualFold(dest.Host, from.Host) && strings.TrimSuffix(dest.Path, "/") == strings.TrimSuffix(from.Path, "/") {
		return usageError("--from and -s name the same server (%s)", dest.Host)
	}
	for _, gun := range guns {
		if _, err := tuf.ParseGUN(gun); err != nil {
			return usageError("%q is not a valid repository name (GUN): %v", gun, err)
		}
	}
	docker, err := (&dockerTrust{a: m.a}).keychain()
	if err != nil {
		return err
	}
	srcBase, err := m.sourceTransport()
	if err != nil {
		return err
	}
	destHC, err := s.httpClient()
	if err != nil {
		return err
	}
	destBase := destHC.Transport

	var out []mirrorJSON
	failed := 0
	for _, gun := range guns {
		res := mirrorJSON{GUN: gun, From: m.from}
		regHost := gun
		if ref, err := registry.ParseReference(gun); err == nil {
			regHost = ref.Registry
		}
		src := &http.Client{Timeout: 5 * time.Minute, Transport: &registry.AuthTransport{
			Base: srcBase, Keychain: hostsKeychain{docker: docker, hosts: []string{from.Host, regHost}},
			Server: m.from, Registry: from.Host, Repository: gun, Actions: "pull",
		}}
		dst := &http.Client{Timeout: 10 * time.Minute, Transport: &registry.AuthTransport{
			Base: destBase, Keychain: hostsKeychain{notaryAuth: m.a.env.Getenv(envNotaryAuth), docker: docker, hosts: []string{dest.Host}},
			Server: s.server, Registry: dest.Host, Repository: gun, Actions: "*",
		}}
		ir, hist, err := m.one(ctx, gun, src, dst, s)
		if hist != nil {
			res.Source = &mirrorSource{Roots: [2]int{hist.FirstRoot, hist.Root}, Versions: hist.Versions}
		}
		if err != nil {
			failed++
			res.Error = err.Error()
			if !m.a.jsonOutput() {
				fmt.Fprintf(m.a.env.Stderr, "* %s: not mirrored: %s\n", printable.Quote(gun), printable.Lines(err.Error()))
			}
		} else {
			res.ImportResult = ir
			if !m.a.jsonOutput() {
				m.print(gun, s.server, hist, ir)
			}
		}
		out = append(out, res)
	}
	if m.a.jsonOutput() {
		if err := m.a.printJSON(out); err != nil {
			return err
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d repositories not mirrored", failed, len(guns))
	}
	return nil
}

// one mirrors one repository.
func (m *mirrorCmd) one(ctx context.Context, name string, src, dst *http.Client, s *settings) (*notaryapi.ImportResult, *client.History, error) {
	gun, err := tuf.ParseGUN(name)
	if err != nil {
		return nil, nil, usageError("%v", err)
	}
	sr, err := client.NewRemote(m.from, src, gun)
	if err != nil {
		return nil, nil, err
	}
	hist, err := sr.FetchHistory(ctx)
	if err != nil {
		var ua x509.UnknownAuthorityError
		if errors.As(err, &ua) {
			err = fmt.Errorf("%w\nThe source's certificate is not signed by a CA this machine trusts; pass its CA with --from-ca FILE", err)
		}
		if errors.Is(err, client.ErrUnauthorized) || errors.Is(err, registry.ErrUnauthorized) {
			err = fmt.Errorf("%w: the source wants credentials for %s; log in with docker login (Docker Hub's for notary.docker.io)", err, gun)
		}
		return nil, nil, fmt.Errorf("reading %s from %s: %w", gun, m.from, err)
	}
	dr, err := client.NewRemote(s.server, dst, gun)
	if err != nil {
		return nil, hist, err
	}
	ir, err := dr.Import(ctx, hist.Files)
	if err != nil {
		if errors.Is(err, client.ErrUnauthorized) || errors.Is(err, registry.ErrUnauthorized) {
			err = fmt.Errorf("%w: importing needs the admin scope (\"*\") on %s; give an admin's credentials in %s (base64 of user:password) or docker login %s", err, gun, envNotaryAuth, hostOf(s.server))
		}
		return nil, hist, fmt.Errorf("importing into %s: %w", s.server, s.explainTLS(err))
	}
	return ir, hist, nil
}

func hostOf(u string) string {
	if p, err := url.Parse(u); err == nil && p.Host != "" {
		return p.Host
	}
	return u
}

// sourceTransport is the transport to the source: TLS 1.2+, verified
// against --from-ca (else the system's CAs).
func (m *mirrorCmd) sourceTransport() (http.RoundTripper, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if m.fromCA != "" {
		b, err := os.ReadFile(m.a.expand(m.fromCA))
		if err != nil {
			return nil, fmt.Errorf("--from-ca: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("--from-ca %s holds no PEM certificate", m.fromCA)
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	return tr, nil
}

// print reports one mirrored repository.
func (m *mirrorCmd) print(gun, server string, h *client.History, r *notaryapi.ImportResult) {
	w := m.a.env.Stdout
	what := map[string]string{
		notaryapi.ImportAdded:     "copied",
		notaryapi.ImportUpToDate:  "already up to date",
		notaryapi.ImportNewerHere: "nothing copied: this server holds newer metadata (the repository has moved here)",
	}[r.Outcome]
	fmt.Fprintf(w, "%s: %s\n", printable.Quote(gun), what)
	roles := make([]string, 0, len(h.Versions))
	for role := range h.Versions {
		roles = append(roles, role)
	}
	sort.Strings(roles)
	parts := []string{fmt.Sprintf("root versions %d-%d", h.FirstRoot, h.Root)}
	if h.FirstRoot == h.Root {
		parts[0] = fmt.Sprintf("root version %d", h.Root)
	}
	for _, role := range roles {
		parts = append(parts, fmt.Sprintf("%s %d", printable.Quote(role), h.Versions[role]))
	}
	fmt.Fprintf(w, "  source:  %s\n", strings.Join(parts, ", "))
	if len(r.Added) > 0 {
		added := make([]string, len(r.Added))
		for i, f := range r.Added {
			added[i] = fmt.Sprintf("%s %d", printable.Quote(string(f.Role)), f.Version)
		}
		fmt.Fprintf(w, "  stored:  %s\n", strings.Join(added, ", "))
	}
	for _, warn := range r.Warnings {
		fmt.Fprintf(m.a.env.Stderr, "WARNING: %s: %s\n", printable.Quote(gun), printable.Lines(warn))
	}
	if r.Outcome != notaryapi.ImportNewerHere && h.Versions[tuf.RoleTimestamp] != 0 {
		fmt.Fprintf(w, "  next:    notary -s %s key rotate %s timestamp -r   (before %s)\n", printable.Quote(server), printable.Quote(gun), printable.Quote(fmt.Sprint(r.TimestampExpires)))
		fmt.Fprintf(w, "           if the old server held the snapshot key too, see docs/migrate.md\n")
	}
}

// hostsKeychain gives a trust server's token service the credentials of
// the first of hosts the Docker configuration has some for — or, when set,
// the notary client's NOTARY_AUTH (base64 of user:password).
type hostsKeychain struct {
	notaryAuth string
	docker     registry.Keychain
	hosts      []string
}

func (k hostsKeychain) Credentials(ctx context.Context, _ string) (registry.Credentials, error) {
	if k.notaryAuth != "" {
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(k.notaryAuth))
		user, pass, ok := strings.Cut(string(raw), ":")
		if err != nil || !ok {
			return registry.Credentials{}, fmt.Errorf("%s is not base64 of user:password", envNotaryAuth)
		}
		return registry.Credentials{Username: user, Password: pass}, nil
	}
	for _, h := range k.hosts {
		c, err := k.docker.Credentials(ctx, h)
		if err != nil {
			return registry.Credentials{}, err
		}
		if !c.Empty() {
			return c, nil
		}
	}
	return registry.Credentials{}, nil
}
