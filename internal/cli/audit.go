package cli

// `signet audit verify|log|proof`: read and verify the server's audit log
// (C2SP tlog-tiles under /audit/), with the log's verifier key.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/signet-trust/signet/internal/audit"
	"github.com/signet-trust/signet/internal/audit/auditclient"
	"github.com/signet-trust/signet/internal/printable"
)

type auditOptions struct {
	key   string
	state string
	// log
	types []string
	since string
	// proof
	index int64
}

func (a *app) auditCommand() *cobra.Command {
	var o auditOptions
	c := &cobra.Command{
		Use:   "audit",
		Short: "Verify and read the trust server's audit log",
		Long: `The trust server keeps every change it makes in an append-only audit log, a C2SP tlog-tiles
transparency log at <server>/audit/. These commands check it with the log's verifier key
(printed by signet-server at start, and served at <server>/audit/verifier-key; take it from
a trusted source, not from the server you are checking).`,
	}
	c.PersistentFlags().StringVar(&o.key, "key", "", "the log's verifier key (name+keyid+base64), or a file holding it")
	c.AddCommand(a.auditVerifyCmd(&o), a.auditLogCmd(&o), a.auditProofCmd(&o))
	return c
}

func (a *app) auditVerifyCmd(o *auditOptions) *cobra.Command {
	c := &cobra.Command{
		Use:   "verify",
		Short: "Verify the audit log and its consistency with the last checkpoint seen",
		Long: `Verify the audit log: the checkpoint's signature, every entry against its tile, the tiles
against the checkpoint's root, and the consistency of the log with the checkpoint remembered
from the last run (in --state, by default in the trust directory), which is then replaced.
A second run checks only the new entries.

Exit codes: 0 the log verifies; 1 error; 2 bad command line; 3 the log does not verify.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ac, s, err := a.auditClient(o)
			if err != nil {
				return err
			}
			path := o.state
			if path == "" {
				path = auditclient.StatePath(s.trustDir, ac.Origin())
			}
			prev, err := auditclient.LoadState(path)
			if err != nil {
				return err
			}
			st, rep, err := ac.Verify(cmd.Context(), prev)
			if err != nil {
				return auditError(s, err)
			}
			if err := st.Save(path); err != nil {
				return fmt.Errorf("saving the audit state: %w", err)
			}
			if a.jsonOutput() {
				return a.printJSON(map[string]any{
					"origin": ac.Origin(), "size": rep.Size, "previous_size": rep.OldSize,
					"checked": rep.Checked, "requests": rep.Requests, "state": path,
				})
			}
			out := a.env.Stdout
			fmt.Fprintf(out, "The audit log %s verifies: %d entries, %d of them checked now.\n", ac.Origin(), rep.Size, rep.Checked)
			if prev != nil {
				fmt.Fprintf(out, "It is consistent with the checkpoint of %d entries seen before.\n", rep.OldSize)
			} else {
				fmt.Fprintln(out, "No checkpoint was remembered: this one is the reference for the next run.")
			}
			fmt.Fprintf(out, "State: %s\n", path)
			return nil
		},
	}
	c.Flags().StringVar(&o.state, "state", "", "file remembering the last verified checkpoint (default <trust dir>/audit/<origin>.json)")
	return c
}

func (a *app) auditLogCmd(o *auditOptions) *cobra.Command {
	c := &cobra.Command{
		Use:   "log",
		Short: "Print the audit log's entries, after verifying them",
		Long: `Print the entries of the audit log, oldest first, as a table or, with -o json, as JSON. Every
entry is checked against the log's tiles and signed checkpoint before anything is printed.
--type keeps entries of the given types (repeat it; "request" stands for every request.*
type); --since keeps entries from a time (RFC 3339) or a duration ago (such as 24h).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			keep, err := a.auditFilter(o)
			if err != nil {
				return err
			}
			ac, s, err := a.auditClient(o)
			if err != nil {
				return err
			}
			type row struct {
				Index uint64          `json:"index"`
				Event json.RawMessage `json:"event"`
				ev    audit.Event
			}
			var rows []row
			_, _, err = ac.VerifyEntries(cmd.Context(), nil, func(index uint64, entry []byte) error {
				ev, err := audit.ParseEvent(entry)
				if err != nil {
					return fmt.Errorf("entry %d: %w", index, err)
				}
				if keep(ev) {
					rows = append(rows, row{Index: index, Event: append(json.RawMessage(nil), entry...), ev: ev})
				}
				return nil
			})
			if err != nil {
				return auditError(s, err)
			}
			if a.jsonOutput() {
				if rows == nil {
					rows = []row{}
				}
				return a.printJSON(rows)
			}
			tw := tabwriter.NewWriter(a.env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "INDEX\tTIME\tTYPE\tACTOR\tSUBJECT")
			for _, r := range rows {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", r.Index, r.ev.Time.UTC().Format(time.RFC3339), printable.Quote(string(r.ev.Type)), printable.Quote(r.ev.Actor.String()), printable.Quote(r.ev.Subject.String()))
			}
			return tw.Flush()
		},
	}
	c.Flags().StringSliceVar(&o.types, "type", nil, "keep entries of this type (or area, such as request); repeatable")
	c.Flags().StringVar(&o.since, "since", "", "keep entries from this time (RFC 3339) or this long ago (such as 24h)")
	return c
}

func (a *app) auditProofCmd(o *auditOptions) *cobra.Command {
	c := &cobra.Command{
		Use:   "proof --index N",
		Short: "Print the inclusion proof of one entry (C2SP tlog-proof)",
		Long: `Print the inclusion proof of entry N in the log's current checkpoint, in the C2SP tlog-proof
text format (with -o json: the index, the leaf hash, the proof hashes, the checkpoint and the
entry). The proof is built from the log's tiles and checked before it is printed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.index < 0 {
				return usageError("--index N is required: the index of the entry (0 is the first)")
			}
			ac, s, err := a.auditClient(o)
			if err != nil {
				return err
			}
			cp, msg, err := ac.Checkpoint(cmd.Context())
			if err != nil {
				return auditError(s, err)
			}
			p, err := ac.Prove(cmd.Context(), cp, msg, uint64(o.index))
			if err != nil {
				return auditError(s, err)
			}
			entry, err := ac.Entry(cmd.Context(), p, cp.Size)
			if err != nil {
				return auditError(s, err)
			}
			if a.jsonOutput() {
				hashes := make([]string, len(p.Hashes))
				for i, h := range p.Hashes {
					hashes[i] = h.String()
				}
				return a.printJSON(map[string]any{
					"index": p.Index, "leaf_hash": p.LeafHash.String(), "proof": hashes,
					"checkpoint": string(p.Checkpoint), "entry": json.RawMessage(entry),
				})
			}
			_, err = io.WriteString(a.env.Stdout, p.Format())
			return err
		},
	}
	c.Flags().Int64Var(&o.index, "index", -1, "index of the entry")
	return c
}

// auditClient resolves the server, its TLS settings and the key.
func (a *app) auditClient(o *auditOptions) (*auditclient.Client, *settings, error) {
	if o.key == "" {
		return nil, nil, usageError("--key is required: the audit log's verifier key (name+keyid+base64), from signet-server's start-up output or docs")
	}
	s, err := a.notarySettings()
	if err != nil {
		return nil, nil, err
	}
	hc, err := s.httpClient()
	if err != nil {
		return nil, nil, err
	}
	ac, err := a.newAuditClient(s.server, o.key, "--key", hc)
	if err != nil {
		return nil, nil, err
	}
	return ac, s, nil
}

// newAuditClient is the client of the audit log of the trust server at
// server, with the verifier key given (by flag, named in errors) as the
// key itself or a file holding it.
func (a *app) newAuditClient(server, key, flag string, hc *http.Client) (*auditclient.Client, error) {
	vkey := key
	if !strings.Contains(vkey, "+") {
		b, err := os.ReadFile(a.expand(vkey))
		if err != nil {
			return nil, usageError("%s %q is neither a verifier key nor a readable file: %v", flag, key, err)
		}
		vkey = strings.TrimSpace(string(b))
	}
	u, err := url.Parse(server)
	if err != nil || u.Host == "" {
		return nil, usageError("the trust server %q is not a URL", server)
	}
	if p := strings.TrimSuffix(u.Path, "/"); !strings.HasSuffix(p, "/audit") {
		u.Path = p + "/audit/"
	}
	ac, err := auditclient.New(u.String(), vkey, hc)
	if err != nil {
		return nil, usageError("%s: %v", flag, err)
	}
	return ac, nil
}

// auditError gives verification failures their exit code, and TLS errors
// their explanation.
func auditError(s *settings, err error) error {
	if errors.Is(err, auditclient.ErrVerification) {
		return withCode(ExitVerify, err)
	}
	return s.explainTLS(err)
}

// auditFilter builds the --type and --since filter.
func (a *app) auditFilter(o *auditOptions) (func(audit.Event) bool, error) {
	var since time.Time
	if o.since != "" {
		if d, err := time.ParseDuration(o.since); err == nil {
			since = a.now().Add(-d)
		} else if t, err := time.Parse(time.RFC3339, o.since); err == nil {
			since = t
		} else {
			return nil, usageError("--since %q is neither an RFC 3339 time nor a duration such as 24h", o.since)
		}
	}
	for _, t := range o.types {
		known := audit.EventType(t).Known()
		for _, k := range audit.EventTypes {
			known = known || strings.HasPrefix(string(k), t+".")
		}
		if !known {
			return nil, usageError("--type %q is not an audit event type or area (such as tuf.publish or request)", t)
		}
	}
	return func(e audit.Event) bool {
		if !since.IsZero() && e.Time.Before(since) {
			return false
		}
		if len(o.types) == 0 {
			return true
		}
		for _, t := range o.types {
			if string(e.Type) == t || strings.HasPrefix(string(e.Type), t+".") {
				return true
			}
		}
		return false
	}, nil
}
