package cli

import (
	"bufio"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/signet-trust/signet/internal/client"
	"github.com/signet-trust/signet/internal/client/changes"
	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/printable"
	"github.com/signet-trust/signet/internal/tuf"
	"github.com/signet-trust/signet/internal/tuf/trust"
)

// tableWriter aligns a table and writes it out in large chunks (a
// tabwriter alone writes every cell separately: ~9 system calls a row).
type tableWriter struct {
	*tabwriter.Writer
	buf *bufio.Writer
}

// Flush writes the table.
func (t *tableWriter) Flush() error {
	if err := t.Writer.Flush(); err != nil {
		return err
	}
	return t.buf.Flush()
}

// table writes notary's tables: a header, a dashed rule, rows.
func table(w io.Writer, columns ...string) *tableWriter {
	buf := bufio.NewWriterSize(w, 64<<10)
	tw := &tableWriter{Writer: tabwriter.NewWriter(buf, 4, 4, 4, ' ', 0), buf: buf}
	fmt.Fprintln(tw, strings.Join(columns, "\t"))
	rule := make([]string, len(columns))
	for i, c := range columns {
		rule[i] = strings.Repeat("-", len(c))
	}
	fmt.Fprintln(tw, strings.Join(rule, "\t"))
	return tw
}

// notaryRepo opens a repository with the notary client's settings.
func (a *app) notaryRepo(gun string) (*repo, error) {
	s, err := a.notarySettings()
	if err != nil {
		return nil, err
	}
	return a.openRepo(s, gun)
}

// verifiedRepo opens a repository with notary's settings and brings it up
// to date through the verification state machine (list, lookup, verify,
// delegation list).
func (a *app) verifiedRepo(ctx context.Context, gun string) (*trust.Repo, error) {
	r, err := a.notaryRepo(gun)
	if err != nil {
		return nil, err
	}
	return r.update(ctx)
}

// splitRoles parses -r/--roles values (comma separated, repeatable).
func splitRoles(vals []string) ([]string, error) {
	var out []string
	for _, v := range vals {
		for _, r := range strings.Split(v, ",") {
			r = strings.TrimSpace(r)
			if r == "" {
				continue
			}
			if !tuf.IsTargetsRole(r) {
				return nil, usageError("%q is not targets or a delegation role (targets/<name>)", r)
			}
			out = append(out, r)
		}
	}
	return out, nil
}

func newECDSAKey() (crypto.Signer, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }

func (a *app) initCmd() *cobra.Command {
	var rootKeyFile, rootCertFile, rootToken string
	var publish bool
	cmd := &cobra.Command{
		Use:   "init <GUN>",
		Short: "Initialise a new trusted collection (repository)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if rootToken != "" && rootKeyFile != "" {
				return usageError("give --rootkey or --root-pkcs11, not both")
			}
			if rootToken != "" {
				if err := needPKCS11("--root-pkcs11"); err != nil {
					return err
				}
			}
			r, err := a.notaryRepo(args[0])
			if err != nil {
				return err
			}
			if rootToken == "" {
				return a.initRepo(cmd.Context(), r, rootKeyFile, rootCertFile, false, publish)
			}
			root, err := a.tokenRootKey(cmd.Context(), r, rootToken, "root-"+r.gun.String())
			if err != nil {
				return err
			}
			return a.initRepoWith(cmd.Context(), r, root, rootCertFile, false, publish)
		},
	}
	cmd.Flags().StringVar(&rootKeyFile, "rootkey", "", "root key file to use (encrypted or not) instead of the local root key")
	cmd.Flags().StringVar(&rootCertFile, "rootcert", "", "root certificate matching the root key (CN must be the GUN)")
	cmd.Flags().StringVar(&rootToken, "root-pkcs11", "", rootPKCS11Help+"; the default label is root-<GUN>")
	cmd.Flags().BoolVarP(&publish, "publish", "p", false, "publish right away")
	return cmd
}

// rootSigner returns the root key to use: the --rootkey file (imported into
// the trust directory), else the first local root key, else a new one.
func (a *app) rootSigner(ctx context.Context, r *repo, rootKeyFile string) (crypto.Signer, error) {
	if rootKeyFile != "" {
		b, err := readFile(rootKeyFile)
		if err != nil {
			return nil, err
		}
		k, err := keys.ParsePrivateKeyPEM(b, func(attempt int) ([]byte, error) {
			return a.passphrases(r.settings.docker)("", tuf.RoleRoot, false, attempt)
		})
		if err != nil {
			return nil, fmt.Errorf("root key %s: %w", rootKeyFile, err)
		}
		if _, err := r.keys.Add(k, tuf.RoleRoot, ""); err != nil {
			return nil, err
		}
		return k, nil
	}
	roots, err := r.keys.RootKeys()
	if err != nil {
		return nil, err
	}
	for _, info := range roots {
		s, ok, err := r.keys.Signer(ctx, info.ID)
		if err != nil {
			return nil, err
		}
		if ok {
			fmt.Fprintf(a.env.Stdout, "Root key found, using: %s\n", info.ID)
			return s, nil
		}
	}
	s, err := newECDSAKey()
	if err != nil {
		return nil, err
	}
	if _, err := r.keys.Add(s, tuf.RoleRoot, ""); err != nil {
		return nil, err
	}
	return s, nil
}

func (a *app) initRepo(ctx context.Context, r *repo, rootKeyFile, rootCertFile string, serverSnapshot, publish bool) error {
	root, err := a.rootSigner(ctx, r, rootKeyFile)
	if err != nil {
		return err
	}
	return a.initRepoWith(ctx, r, root, rootCertFile, serverSnapshot, publish)
}

// initRepoWith initialises a repository with the given root key.
func (a *app) initRepoWith(ctx context.Context, r *repo, root crypto.Signer, rootCertFile string, serverSnapshot, publish bool) error {
	exp, err := a.expiries()
	if err != nil {
		return err
	}
	var cert *x509.Certificate
	if rootCertFile != "" {
		b, err := readFile(rootCertFile)
		if err != nil {
			return err
		}
		block, _ := pem.Decode(b)
		if block == nil || block.Type != "CERTIFICATE" {
			return fmt.Errorf("%s holds no PEM certificate", rootCertFile)
		}
		if cert, err = x509.ParseCertificate(block.Bytes); err != nil {
			return fmt.Errorf("%s: %w", rootCertFile, err)
		}
		certKey, _ := keys.FromCrypto(cert.PublicKey)
		rootKey, _ := keys.FromCrypto(root.Public())
		if certKey == nil || rootKey == nil || certKey.ID() != rootKey.ID() {
			return fmt.Errorf("the root certificate %s is not for the root key", rootCertFile)
		}
	}
	targets, err := newECDSAKey()
	if err != nil {
		return err
	}
	if _, err := r.keys.Add(targets, tuf.RoleTargets, r.gun.String()); err != nil {
		return err
	}
	opts := client.InitOptions{Root: root, RootCert: cert, Targets: targets, Expiry: exp}
	if !serverSnapshot {
		snap, err := newECDSAKey()
		if err != nil {
			return err
		}
		if _, err := r.keys.Add(snap, tuf.RoleSnapshot, r.gun.String()); err != nil {
			return err
		}
		opts.Snapshot = snap
	}
	if err := client.Initialize(ctx, r.remote, r.cache, opts, a.now()); err != nil {
		return r.settings.explainTLS(err)
	}
	if publish {
		return a.publish(ctx, r)
	}
	return nil
}

// publish sends the staged changes (and, for a repository never
// published, its initial metadata), then clears what was applied.
func (a *app) publish(ctx context.Context, r *repo) error {
	staged, cs, err := r.stagedChanges()
	if err != nil {
		return err
	}
	fmt.Fprintf(a.env.Stdout, "Pushing changes to %s\n", r.gun)
	if err := a.publisher(r).Publish(ctx, cs); err != nil {
		return r.settings.explainTLS(err)
	}
	if err := r.changes.Remove(staged); err != nil {
		return err
	}
	fmt.Fprintf(a.env.Stdout, "Successfully published changes for repository %s\n", r.gun)
	return nil
}

func (a *app) stage(ctx context.Context, r *repo, publish bool, cs ...changes.Change) error {
	if err := r.changes.Add(cs...); err != nil {
		return err
	}
	if publish {
		fmt.Fprintln(a.env.Stdout, "Auto-publishing changes to", r.gun)
		return a.publish(ctx, r)
	}
	return nil
}

func (a *app) addCmd() *cobra.Command {
	var roles []string
	var custom string
	var publish bool
	cmd := &cobra.Command{
		Use:   "add <GUN> <target> <file>",
		Short: "Stage a target (a file's hashes and size) for the next publish",
		Args:  cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[2])
			if err != nil {
				return err
			}
			meta := tuf.NewFileMeta(data)
			return a.stageTarget(cmd.Context(), args[0], args[1], meta, roles, custom, "", publish)
		},
	}
	cmd.Flags().StringSliceVarP(&roles, "roles", "r", nil, "delegation roles to add the target to (default targets)")
	cmd.Flags().StringVar(&custom, "custom", "", "file with custom JSON data for the target")
	cmd.Flags().BoolVarP(&publish, "publish", "p", false, "publish right away")
	return cmd
}

func (a *app) addHashCmd() *cobra.Command {
	var roles []string
	var custom, s256, s512 string
	var publish bool
	cmd := &cobra.Command{
		Use:   "addhash <GUN> <target> <byte size>",
		Short: "Stage a target by its hashes and size, for the next publish",
		Args:  cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			size, err := strconv.ParseInt(args[2], 10, 64)
			if err != nil || size < 0 {
				return usageError("%q is not a size in bytes", args[2])
			}
			meta := tuf.FileMeta{Length: size, Hashes: map[string][]byte{}}
			var used []string
			for _, hv := range [][2]string{{"sha256", s256}, {"sha512", s512}} {
				alg, v := hv[0], hv[1]
				if v == "" {
					continue
				}
				used = append(used, alg)
				h, err := hex.DecodeString(v)
				if err != nil {
					return usageError("--%s %q is not hex", alg, v)
				}
				meta.Hashes[alg] = h
			}
			if len(meta.Hashes) == 0 {
				return usageError("give at least one of --sha256 and --sha512")
			}
			if err := tuf.CheckHashes(meta.Hashes); err != nil {
				return usageError("%v", err)
			}
			return a.stageTarget(cmd.Context(), args[0], args[1], meta, roles, custom, " by "+strings.Join(used, ", ")+" hash", publish)
		},
	}
	cmd.Flags().StringSliceVarP(&roles, "roles", "r", nil, "delegation roles to add the target to (default targets)")
	cmd.Flags().StringVar(&custom, "custom", "", "file with custom JSON data for the target")
	cmd.Flags().StringVar(&s256, "sha256", "", "hex SHA-256 of the target")
	cmd.Flags().StringVar(&s512, "sha512", "", "hex SHA-512 of the target")
	cmd.Flags().BoolVarP(&publish, "publish", "p", false, "publish right away")
	return cmd
}

// how is what addhash adds to the message (" by sha256 hash"), as notary.
func (a *app) stageTarget(ctx context.Context, gun, name string, meta tuf.FileMeta, roleFlags []string, custom, how string, publish bool) error {
	roles, err := splitRoles(roleFlags)
	if err != nil {
		return err
	}
	if len(roles) == 0 {
		roles = []string{tuf.RoleTargets}
	}
	if custom != "" {
		b, err := readFile(custom)
		if err != nil {
			return err
		}
		if !json.Valid(b) {
			return fmt.Errorf("--custom %s is not JSON", custom)
		}
		raw := json.RawMessage(b)
		meta.Custom = &raw
	}
	r, err := a.notaryRepo(gun)
	if err != nil {
		return err
	}
	var cs []changes.Change
	for _, role := range roles {
		cs = append(cs, changes.AddTarget{Role: role, Name: name, Meta: meta})
	}
	if err := a.stage(ctx, r, false, cs...); err != nil {
		return err
	}
	fmt.Fprintf(a.env.Stdout, "Addition of target %q%s to repository %q staged for next publish.\n", name, how, gun)
	if publish {
		fmt.Fprintln(a.env.Stdout, "Auto-publishing changes to", gun)
		return a.publish(ctx, r)
	}
	return nil
}

func (a *app) removeCmd() *cobra.Command {
	var roles []string
	var publish bool
	cmd := &cobra.Command{
		Use:   "remove <GUN> <target>",
		Short: "Stage the removal of a target for the next publish",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			rs, err := splitRoles(roles)
			if err != nil {
				return err
			}
			if len(rs) == 0 {
				rs = []string{tuf.RoleTargets}
			}
			r, err := a.notaryRepo(args[0])
			if err != nil {
				return err
			}
			var cs []changes.Change
			for _, role := range rs {
				cs = append(cs, changes.RemoveTarget{Role: role, Name: args[1]})
			}
			if err := a.stage(cmd.Context(), r, false, cs...); err != nil {
				return err
			}
			fmt.Fprintf(a.env.Stdout, "Removal of %s from %s staged for next publish.\n", args[1], args[0])
			if publish {
				return a.publish(cmd.Context(), r)
			}
			return nil
		},
	}
	cmd.Flags().StringSliceVarP(&roles, "roles", "r", nil, "delegation roles to remove the target from (default targets)")
	cmd.Flags().BoolVarP(&publish, "publish", "p", false, "publish right away")
	return cmd
}

type targetJSON struct {
	Name   string            `json:"name"`
	Digest string            `json:"digest"`
	Size   int64             `json:"size"`
	Role   string            `json:"role"`
	Hashes map[string]string `json:"hashes"`
}

func toJSON(t client.Target) targetJSON {
	h := map[string]string{}
	for alg, v := range t.Meta.Hashes {
		h[alg] = hex.EncodeToString(v)
	}
	return targetJSON{Name: t.Name, Digest: hex.EncodeToString(t.Meta.Hashes["sha256"]), Size: t.Meta.Length, Role: t.Role, Hashes: h}
}

func (a *app) listCmd() *cobra.Command {
	var roles []string
	cmd := &cobra.Command{
		Use:   "list <GUN>",
		Short: "List the targets of a repository",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rs, err := splitRoles(roles)
			if err != nil {
				return err
			}
			r, err := a.notaryRepo(args[0])
			if err != nil {
				return err
			}
			v, err := r.update(cmd.Context())
			offline := false
			if err != nil && unreachable(err) && !certificateError(err) {
				// As notary: the server cannot be reached, so list what
				// this machine verified last, and say so.
				cached, cerr := r.reader.Cached()
				if cerr != nil {
					return err
				}
				fmt.Fprintf(a.env.Stderr, "WARNING: %s\nWARNING: listing the trust data of %s cached on this machine; it may not be the latest\n", printable.Lines(err.Error()), printable.Quote(args[0]))
				v, err, offline = cached, nil, true
			}
			if err != nil {
				return err
			}
			if key := r.settings.auditKey(""); key != "" && !offline {
				if err := a.checkTimestampLogged(cmd.Context(), r, key, "audit_key"); err != nil {
					return err
				}
			}
			list := client.ListTargets(v, rs...)
			if a.jsonOutput() {
				out := make([]targetJSON, 0, len(list))
				for _, t := range list {
					out = append(out, toJSON(t))
				}
				return a.printJSON(out)
			}
			if len(list) == 0 {
				fmt.Fprint(a.env.Stdout, "\nNo targets present in this repository.\n\n")
				return nil
			}
			return writeTable(a.env.Stdout, []string{"NAME", "DIGEST", "SIZE (BYTES)", "ROLE"}, len(list), func(dst []byte, row, col int) []byte {
				t := list[row]
				switch col {
				case 0:
					return append(dst, printable.Quote(t.Name)...)
				case 1:
					return hex.AppendEncode(dst, t.Meta.Hashes["sha256"])
				case 2:
					return strconv.AppendInt(dst, t.Meta.Length, 10)
				}
				return append(dst, printable.Quote(t.Role)...)
			})
		},
	}
	cmd.Flags().StringSliceVarP(&roles, "roles", "r", nil, "roles to list, in order of priority (default targets and all its delegations)")
	return cmd
}

func (a *app) lookupCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "lookup <GUN> <target>",
		Short: "Show one target's digest and size",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := a.verifiedRepo(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			t, ok := client.Lookup(v, args[1])
			if !ok {
				return fmt.Errorf("no trust data for %s in %s", args[1], args[0])
			}
			if a.jsonOutput() {
				return a.printJSON(toJSON(t))
			}
			fmt.Fprintf(a.env.Stdout, "%s sha256:%x %d\n", printable.Quote(t.Name), t.Meta.Hashes["sha256"], t.Meta.Length)
			return nil
		},
	}
}

func (a *app) verifyTargetCmd() *cobra.Command {
	var in, out string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "verify <GUN> <target>",
		Short: "Check that data (standard input or -i) is the target the repository lists, and pass it on",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var data []byte
			var err error
			if in != "" {
				data, err = os.ReadFile(in)
			} else {
				data, err = io.ReadAll(a.env.Stdin)
			}
			if err != nil {
				return err
			}
			v, err := a.verifiedRepo(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			t, ok := client.Lookup(v, args[1])
			if !ok {
				return fmt.Errorf("no trust data for %s in %s", args[1], args[0])
			}
			if err := t.Meta.Matches(data); err != nil {
				return fmt.Errorf("data not present in the trusted collection, %s: %v", args[1], err)
			}
			if quiet {
				return nil
			}
			if out != "" {
				return os.WriteFile(out, data, 0o644)
			}
			_, err = a.env.Stdout.Write(data)
			return err
		},
	}
	cmd.Flags().StringVarP(&in, "input", "i", "", "file to verify (default standard input)")
	cmd.Flags().StringVarP(&out, "output-file", "", "", "file to write verified data to (default standard output)")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print nothing on success")
	return cmd
}

func (a *app) publishCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "publish <GUN>",
		Short: "Sign and upload the staged changes",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := a.notaryRepo(args[0])
			if err != nil {
				return err
			}
			return a.publish(cmd.Context(), r)
		},
	}
}

func (a *app) statusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status <GUN>",
		Short: "Show the staged changes",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := a.notaryRepo(args[0])
			if err != nil {
				return err
			}
			cs, err := r.changes.Read()
			if err != nil {
				return err
			}
			if a.jsonOutput() {
				type row struct {
					Index                     int
					Action, Scope, Type, Path string
				}
				out := []row{}
				for i, c := range cs {
					out = append(out, row{i, c.Record.Action, c.Record.Scope, c.Record.Type, c.Record.Path})
				}
				return a.printJSON(out)
			}
			if len(cs) == 0 {
				fmt.Fprintf(a.env.Stdout, "No unpublished changes for %s\n", args[0])
				return nil
			}
			fmt.Fprintf(a.env.Stdout, "Unpublished changes for %s:\n\n", args[0])
			tw := table(a.env.Stdout, "#", "ACTION", "SCOPE", "TYPE", "PATH")
			for i, c := range cs {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", i, printable.Quote(c.Record.Action), printable.Quote(c.Record.Scope), printable.Quote(c.Record.Type), printable.Quote(c.Record.Path))
			}
			return tw.Flush()
		},
	}
}

func (a *app) resetCmd() *cobra.Command {
	var all bool
	var numbers []int
	cmd := &cobra.Command{
		Use:   "reset <GUN>",
		Short: "Drop staged changes (all, or by number as status shows them)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !all && len(numbers) == 0 {
				return usageError("give --all or -n with the numbers of the changes to drop")
			}
			r, err := a.notaryRepo(args[0])
			if err != nil {
				return err
			}
			cs, err := r.changes.Read()
			if err != nil {
				return err
			}
			var drop []changes.Staged
			if all {
				drop = cs
			} else {
				for _, n := range numbers {
					if n < 0 || n >= len(cs) {
						return usageError("there is no change number %d (see signet status %s)", n, args[0])
					}
					drop = append(drop, cs[n])
				}
			}
			if err := r.changes.Remove(drop); err != nil {
				return err
			}
			fmt.Fprintf(a.env.Stdout, "Successfully reset specified changes for repository %s\n", args[0])
			return nil
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "drop every staged change")
	cmd.Flags().IntSliceVarP(&numbers, "number", "n", nil, "numbers of the changes to drop")
	return cmd
}

func (a *app) witnessCmd() *cobra.Command {
	var publish bool
	cmd := &cobra.Command{
		Use:   "witness <GUN> <role>...",
		Short: "Stage re-signing roles as they are (after a key change made them invalid)",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			roles, err := splitRoles(args[1:])
			if err != nil {
				return err
			}
			r, err := a.notaryRepo(args[0])
			if err != nil {
				return err
			}
			var cs []changes.Change
			for _, role := range roles {
				cs = append(cs, changes.Witness{Role: role})
			}
			if err := a.stage(cmd.Context(), r, false, cs...); err != nil {
				return err
			}
			fmt.Fprintf(a.env.Stdout, "The following roles were successfully marked for witnessing on the next publish:\n")
			for _, role := range roles {
				fmt.Fprintf(a.env.Stdout, "\t- %s\n", role)
			}
			if publish {
				return a.publish(cmd.Context(), r)
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&publish, "publish", "p", false, "publish right away")
	return cmd
}

func (a *app) deleteCmd() *cobra.Command {
	var remote bool
	cmd := &cobra.Command{
		Use:   "delete <GUN>",
		Short: "Delete the local trust data of a repository (and the server's with --remote)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := a.notaryRepo(args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(a.env.Stdout, "Deleting trust data for repository %s\n", args[0])
			if remote {
				if err := r.remote.Delete(cmd.Context()); err != nil {
					return r.settings.explainTLS(err)
				}
			}
			if err := r.dir.RemoveRepo(r.gun); err != nil {
				return err
			}
			where := ""
			if remote {
				where = " and remote"
			}
			fmt.Fprintf(a.env.Stdout, "Successfully deleted local%s trust data for repository %s\n", where, args[0])
			return nil
		},
	}
	cmd.Flags().BoolVar(&remote, "remote", false, "also delete the repository on the trust server")
	return cmd
}

// confirm asks a yes/no question on standard input.
func (a *app) confirm(question string) bool {
	fmt.Fprint(a.env.Stdout, question)
	line, _ := bufio.NewReader(a.env.Stdin).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true
	}
	return false
}
