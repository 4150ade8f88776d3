package cli

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/signet-trust/signet/internal/client/changes"
	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/printable"
	"github.com/signet-trust/signet/internal/tuf"
)

func (a *app) delegationCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "delegation", Short: "Manage delegations (targets/<name> roles)"}
	cmd.AddCommand(a.delegationListCmd(), a.delegationAddCmd(), a.delegationRemoveCmd(), a.delegationPurgeCmd())
	return cmd
}

func prettyPaths(paths []string) []string {
	ps := append([]string(nil), paths...)
	sort.Strings(ps)
	for i, p := range ps {
		if p == "" {
			ps[i] = `"" <all paths>`
		}
	}
	return ps
}

func (a *app) delegationListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list <GUN>",
		Short: "List the delegations of a repository",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := a.verifiedRepo(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			type row struct {
				Role      string   `json:"role"`
				Paths     []string `json:"paths"`
				KeyIDs    []string `json:"keyIDs"`
				Threshold int      `json:"threshold"`
			}
			var rows []row
			for _, role := range v.TargetsRoles() {
				t := v.Targets(role)
				for _, d := range t.Signed.Delegations.Roles {
					var ids []string
					for _, id := range d.KeyIDs {
						if k := t.Signed.Delegations.Keys[id]; k != nil {
							ids = append(ids, k.CanonicalID())
						}
					}
					rows = append(rows, row{Role: d.Name, Paths: d.Paths, KeyIDs: ids, Threshold: d.Threshold})
				}
			}
			sort.Slice(rows, func(i, j int) bool { return rows[i].Role < rows[j].Role })
			if a.jsonOutput() {
				if rows == nil {
					rows = []row{}
				}
				return a.printJSON(rows)
			}
			if len(rows) == 0 {
				fmt.Fprint(a.env.Stdout, "\n\nNo delegations present in this repository.\n\n\n") // as notary 0.7
				return nil
			}
			fmt.Fprintln(a.env.Stdout)
			tw := table(a.env.Stdout, "ROLE", "PATHS", "KEY IDS", "THRESHOLD")
			for _, r := range rows {
				pp := prettyPaths(r.Paths)
				n := max(len(pp), len(r.KeyIDs), 1)
				for i := 0; i < n; i++ {
					var name, path, kid, th string
					if i == 0 {
						name, th = r.Role, fmt.Sprint(r.Threshold)
					}
					if i < len(pp) {
						path = pp[i]
					}
					if i < len(r.KeyIDs) {
						kid = r.KeyIDs[i]
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", printable.Quote(name), printable.Quote(path), printable.Quote(kid), th)
				}
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintln(a.env.Stdout)
			return nil
		},
	}
}

// readPublicKeys reads certificates or public keys from PEM files.
func readPublicKeys(files []string) ([]*keys.PublicKey, error) {
	var out []*keys.PublicKey
	for _, f := range files {
		b, err := readFile(f)
		if err != nil {
			return nil, err
		}
		k, err := keys.ParsePublicKeyPEM(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		if certs := k.Certificates(); len(certs) > 0 && certs[0].NotAfter.Before(time.Now()) {
			return nil, fmt.Errorf("%s: the certificate expired on %s", f, certs[0].NotAfter.Format("2006-01-02"))
		}
		out = append(out, k)
	}
	return out, nil
}

func (a *app) delegationAddCmd() *cobra.Command {
	var paths []string
	var allPaths, publish bool
	cmd := &cobra.Command{
		Use:   "add <GUN> <role> <X509 cert or public key file>...",
		Short: "Stage a delegation or more keys and paths for one",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			gun, role := args[0], args[1]
			if !tuf.IsDelegation(role) {
				return usageError("%q is not a delegation role name (targets/<name>, lowercase letters, digits, - and _)", role)
			}
			ks, err := readPublicKeys(args[2:])
			if err != nil {
				return err
			}
			if allPaths {
				paths = []string{""}
			}
			if len(ks) == 0 && len(paths) == 0 {
				return usageError("give key files or --paths / --all-paths")
			}
			r, err := a.notaryRepo(gun)
			if err != nil {
				return err
			}
			if err := a.stage(cmd.Context(), r, false, changes.AddDelegation{Role: role, Threshold: 1, Keys: ks, Paths: paths}); err != nil {
				return err
			}
			var ids []string
			for _, k := range ks {
				ids = append(ids, k.CanonicalID())
			}
			fmt.Fprintf(a.env.Stdout, "Addition of delegation role %s with keys %v, with paths %v, to repository %q staged for next publish.\n", role, ids, prettyPaths(paths), gun)
			if publish {
				return a.publish(cmd.Context(), r)
			}
			return nil
		},
	}
	cmd.Flags().StringSliceVar(&paths, "paths", nil, "path prefixes the role may sign")
	cmd.Flags().BoolVar(&allPaths, "all-paths", false, "let the role sign every path")
	cmd.Flags().BoolVarP(&publish, "publish", "p", false, "publish right away")
	return cmd
}

func (a *app) delegationRemoveCmd() *cobra.Command {
	var paths []string
	var allPaths, yes, publish bool
	cmd := &cobra.Command{
		Use:   "remove <GUN> <role> [keyID...]",
		Short: "Stage removing keys or paths from a delegation, or the whole delegation",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			gun, role := args[0], args[1]
			if !tuf.IsDelegation(role) {
				return usageError("%q is not a delegation role name", role)
			}
			r, err := a.notaryRepo(gun)
			if err != nil {
				return err
			}
			ids := args[2:]
			if len(ids) == 0 && len(paths) == 0 && !allPaths {
				if !yes && !a.confirm("\nAre you sure you want to remove all data for this delegation? (yes/no)\n") {
					fmt.Fprintln(a.env.Stdout, "\nAborting action.")
					return nil
				}
				if err := a.stage(cmd.Context(), r, false, changes.RemoveDelegation{Role: role}); err != nil {
					return err
				}
				fmt.Fprintf(a.env.Stdout, "Forced removal (including all keys and paths) of delegation role %s to repository %q staged for next publish.\n", role, gun)
			} else {
				if err := a.stage(cmd.Context(), r, false, changes.UpdateDelegation{Role: role, RemoveKeys: ids, RemovePaths: paths, ClearPaths: allPaths}); err != nil {
					return err
				}
				fmt.Fprintf(a.env.Stdout, "Removal of delegation role %s with keys %v, with paths %v, to repository %q staged for next publish.\n", role, ids, prettyPaths(paths), gun)
			}
			if publish {
				return a.publish(cmd.Context(), r)
			}
			return nil
		},
	}
	cmd.Flags().StringSliceVar(&paths, "paths", nil, "path prefixes to remove")
	cmd.Flags().BoolVar(&allPaths, "all-paths", false, "remove every path")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	cmd.Flags().BoolVarP(&publish, "publish", "p", false, "publish right away")
	return cmd
}

func (a *app) delegationPurgeCmd() *cobra.Command {
	var ids []string
	var publish bool
	cmd := &cobra.Command{
		Use:   "purge <GUN>",
		Short: "Stage removing keys from every delegation",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(ids) == 0 {
				return usageError("give the keys to purge with --key")
			}
			r, err := a.notaryRepo(args[0])
			if err != nil {
				return err
			}
			if err := a.stage(cmd.Context(), r, false, changes.PurgeKeys{Under: tuf.RoleTargets, KeyIDs: ids}); err != nil {
				return err
			}
			fmt.Fprintf(a.env.Stdout, "Removal of the following keys from all delegations in %s staged for next publish:\n", args[0])
			for _, id := range ids {
				fmt.Fprintf(a.env.Stdout, "\t- %s\n", strings.TrimSpace(id))
			}
			if publish {
				return a.publish(cmd.Context(), r)
			}
			return nil
		},
	}
	cmd.Flags().StringSliceVar(&ids, "key", nil, "key IDs to remove from every delegation")
	cmd.Flags().BoolVarP(&publish, "publish", "p", false, "publish right away")
	return cmd
}
