package cli

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/signet-trust/signet/internal/printable"
	"github.com/signet-trust/signet/internal/tuf"
	"github.com/signet-trust/signet/internal/tuf/trust"
)

// The JSON of `docker trust inspect` (docker's cli/command/trust/common.go).
type (
	trustRepoJSON struct {
		Name               string
		SignedTags         []trustTagJSON
		Signers            []trustSignerJSON
		AdministrativeKeys []trustSignerJSON
	}
	trustTagJSON struct {
		SignedTag string
		Digest    string
		Signers   []string
	}
	trustSignerJSON struct {
		Name string
		Keys []trustKeyJSON
	}
	trustKeyJSON struct {
		ID string
	}
)

func (d *dockerTrust) inspectCommand() *cobra.Command {
	var pretty bool
	c := &cobra.Command{
		Use:   "inspect IMAGE[:TAG] [IMAGE[:TAG]...]",
		Short: "Return low-level information about keys and signatures",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if pretty {
				for _, arg := range args {
					info, err := d.inspect(ctx, arg)
					if err != nil {
						return err
					}
					printPrettyInspect(d.a.env.Stdout, info)
				}
				return nil
			}
			out := []trustRepoJSON{}
			var failed []string
			for _, arg := range args {
				info, err := d.inspect(ctx, arg)
				if err != nil {
					fmt.Fprintln(d.a.env.Stderr, printable.Lines(err.Error()))
					failed = append(failed, arg)
					continue
				}
				out = append(out, *info)
			}
			// Written as is: through fmt, megabytes of output were copied
			// once more.
			b := appendInspectJSON(make([]byte, 0, inspectJSONSize(out)), out) // trust_inspect_json.go
			if _, err := d.a.env.Stdout.Write(append(b, '\n')); err != nil {
				return err
			}
			if len(failed) > 0 {
				return fmt.Errorf("no signatures or cannot access %s", strings.Join(failed, ", "))
			}
			return nil
		},
	}
	c.Flags().BoolVar(&pretty, "pretty", false, "print the information in a human friendly format")
	return c
}

// inspect reads one repository (and, with a tag, only that tag).
func (d *dockerTrust) inspect(ctx context.Context, arg string) (*trustRepoJSON, error) {
	ref, err := parseRef(arg)
	if err != nil {
		return nil, err
	}
	r, err := d.openRepo(ref, "pull")
	if err != nil {
		return nil, err
	}
	v, err := r.update(ctx)
	if err != nil {
		return nil, fmt.Errorf("no signatures or cannot access %s: %w", arg, err)
	}
	return inspectRepo(v, arg, ref.Tag), nil // docker names it as given
}

// inspectRepo computes docker's view of a verified repository: tags that
// targets or targets/releases list, each with the other roles that sign
// the same digest ("Repo Admin" when none); signers are the delegations
// other than targets/releases; administrative keys those of root and
// targets.
func inspectRepo(v *trust.Repo, gun, tag string) *trustRepoJSON {
	type tagKey struct{ name, digest string }
	type entry struct {
		key  tagKey
		role string
	}
	roles := v.TargetsRoles()
	sort.Strings(roles)
	n := 0
	for _, role := range roles {
		n += len(v.Targets(role).Signed.Targets)
	}
	all := make([]entry, 0, n)
	for _, role := range roles {
		m := v.Targets(role)
		paths := v.Paths(role)
		for name, fm := range m.Signed.Targets {
			if (tag != "" && name != tag) || !tuf.PathAllowed(paths, name) {
				continue
			}
			all = append(all, entry{tagKey{name, hex.EncodeToString(fm.Hashes["sha256"])}, role})
		}
	}
	released := make(map[tagKey][]string, len(all))
	for _, e := range all {
		if e.role == tuf.RoleTargets || e.role == releasesRole {
			released[e.key] = []string{}
		}
	}
	for _, e := range all {
		if s, ok := released[e.key]; ok && e.role != tuf.RoleTargets && e.role != releasesRole {
			released[e.key] = append(s, strings.TrimPrefix(e.role, "targets/"))
		}
	}
	out := &trustRepoJSON{Name: gun, SignedTags: make([]trustTagJSON, 0, len(released)), Signers: []trustSignerJSON{}, AdministrativeKeys: []trustSignerJSON{}}
	adminOnly := []string{repoAdminSigner} // shared by every tag no delegation signs; never changed
	for k, signers := range released {
		if len(signers) == 0 {
			signers = adminOnly
		}
		sort.Strings(signers)
		out.SignedTags = append(out.SignedTags, trustTagJSON{SignedTag: k.name, Digest: k.digest, Signers: signers})
	}
	sort.Slice(out.SignedTags, func(i, j int) bool {
		a, b := out.SignedTags[i], out.SignedTags[j]
		if a.SignedTag != b.SignedTag {
			return a.SignedTag < b.SignedTag
		}
		return a.Digest < b.Digest
	})
	for _, role := range roles {
		if role == tuf.RoleTargets || role == releasesRole {
			continue
		}
		out.Signers = append(out.Signers, trustSignerJSON{Name: strings.TrimPrefix(role, "targets/"), Keys: delegationKeyIDs(v, role)})
	}
	// Delegations listed but never published have no metadata yet; docker
	// lists them as signers all the same.
	seen := map[string]bool{}
	for _, s := range out.Signers {
		seen["targets/"+s.Name] = true
	}
	for _, role := range roles {
		for _, dr := range v.Targets(role).Signed.Delegations.Roles {
			if dr.Name != releasesRole && !seen[dr.Name] {
				seen[dr.Name] = true
				out.Signers = append(out.Signers, trustSignerJSON{Name: strings.TrimPrefix(dr.Name, "targets/"), Keys: delegationKeyIDs(v, dr.Name)})
			}
		}
	}
	sort.Slice(out.Signers, func(i, j int) bool { return out.Signers[i].Name < out.Signers[j].Name })
	root := v.Root().Signed
	for _, admin := range []struct{ name, role string }{{"Root", tuf.RoleRoot}, {"Repository", tuf.RoleTargets}} {
		s := trustSignerJSON{Name: admin.name, Keys: []trustKeyJSON{}}
		if rk := root.Roles[admin.role]; rk != nil {
			ids := append([]string(nil), rk.KeyIDs...)
			sort.Strings(ids)
			for _, id := range ids {
				s.Keys = append(s.Keys, trustKeyJSON{ID: id})
			}
		}
		out.AdministrativeKeys = append(out.AdministrativeKeys, s)
	}
	return out
}

// delegationKeyIDs lists the canonical IDs of a delegation's keys, sorted.
func delegationKeyIDs(v *trust.Repo, role string) []trustKeyJSON {
	out := []trustKeyJSON{}
	ids, _, ks, ok := v.RoleKeys(role)
	if !ok {
		return out
	}
	var canon []string
	for _, id := range ids {
		if k := ks[id]; k != nil {
			canon = append(canon, k.CanonicalID())
		}
	}
	sort.Strings(canon)
	for _, id := range canon {
		out = append(out, trustKeyJSON{ID: id})
	}
	return out
}

// quoteAll joins values from metadata for a human, each through
// printable.Quote.
func quoteAll(vs []string) string {
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = printable.Quote(v)
	}
	return strings.Join(q, ", ")
}

// printPrettyInspect prints docker trust inspect --pretty's three tables.
// Tag names, signer names and key IDs come from metadata anyone with a
// delegation key writes: each goes through printable.Quote.
func printPrettyInspect(w io.Writer, r *trustRepoJSON) {
	var buf bytes.Buffer
	if len(r.SignedTags) == 0 {
		fmt.Fprintf(&buf, "\nNo signatures for %s\n\n", r.Name)
	} else {
		fmt.Fprintf(&buf, "\nSignatures for %s\n\n", r.Name)
		tw := tabwriter.NewWriter(&buf, 0, 4, 3, ' ', 0)
		fmt.Fprintln(tw, "SIGNED TAG\tDIGEST\tSIGNERS")
		for _, t := range r.SignedTags {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", printable.Quote(t.SignedTag), t.Digest, quoteAll(t.Signers))
		}
		tw.Flush()
	}
	if len(r.Signers) > 0 {
		fmt.Fprintf(&buf, "\nList of signers and their keys for %s\n\n", r.Name)
		tw := tabwriter.NewWriter(&buf, 0, 4, 3, ' ', 0)
		fmt.Fprintln(tw, "SIGNER\tKEYS")
		for _, s := range r.Signers {
			var ids []string
			for _, k := range s.Keys {
				id := k.ID
				if len(id) > 12 {
					id = id[:12]
				}
				ids = append(ids, id)
			}
			fmt.Fprintf(tw, "%s\t%s\n", printable.Quote(s.Name), quoteAll(ids))
		}
		tw.Flush()
	} else {
		fmt.Fprintf(&buf, "\nNo signers for %s\n", r.Name)
	}
	fmt.Fprintf(&buf, "\nAdministrative keys for %s\n\n", r.Name)
	for _, name := range []string{"Repository", "Root"} { // docker's order
		for _, s := range r.AdministrativeKeys {
			if s.Name != name {
				continue
			}
			var ids []string
			for _, k := range s.Keys {
				ids = append(ids, k.ID)
			}
			fmt.Fprintf(&buf, "  %s Key:\t%s\n", name, quoteAll(ids))
		}
	}
	_, _ = w.Write(buf.Bytes())
}
