package cli

import (
	"bytes"
	"context"
	"crypto"
	"encoding/pem"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/signet-trust/signet/internal/atomicfile"
	"github.com/signet-trust/signet/internal/client/changes"
	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/printable"
	"github.com/signet-trust/signet/internal/trustdir"
	"github.com/signet-trust/signet/internal/tuf"
)

// localKeys opens the trust directory's key store with notary settings.
func (a *app) localKeys() (*trustdir.KeyStore, string, error) {
	s, err := a.notarySettings()
	if err != nil {
		return nil, "", err
	}
	dir := trustdir.Dir{Path: s.trustDir}
	return a.keyStore(dir, false), filepath.Join(s.trustDir, "private"), nil
}

func (a *app) keyCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "key", Short: "Manage signing keys"}
	cmd.AddCommand(a.keyListCmd(), a.keyGenerateCmd(), a.keyRotateCmd(), a.keyImportCmd(), a.keyExportCmd(), a.keyRemoveCmd(), a.keyPasswdCmd())
	return cmd
}

func (a *app) keyListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the signing keys in the trust directory",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ks, location, err := a.localKeys()
			if err != nil {
				return err
			}
			list, err := ks.List()
			if err != nil {
				return err
			}
			// Keys on tokens are listed with their URI as the location.
			refs, err := ks.TokenRefs()
			if err != nil {
				return err
			}
			locations := map[string]string{}
			for _, ref := range refs {
				list = append(list, trustdir.KeyInfo{ID: ref.ID, Role: ref.Role, Path: ref.Path})
				locations[ref.Path] = ref.URI
			}
			loc := func(k trustdir.KeyInfo) string { return firstNonEmpty(locations[k.Path], location) }
			// Root keys first, then by GUN, role, ID (as notary).
			ordered := append([]trustdir.KeyInfo{}, list...)
			sortKeys(ordered)
			if a.jsonOutput() {
				type row struct{ Role, GUN, ID, Location string }
				out := []row{}
				for _, k := range ordered {
					out = append(out, row{k.Role, k.GUN, k.ID, loc(k)})
				}
				return a.printJSON(out)
			}
			if len(ordered) == 0 {
				fmt.Fprintln(a.env.Stdout, "\nNo signing keys found.")
				return nil
			}
			fmt.Fprintln(a.env.Stdout)
			tw := table(a.env.Stdout, "ROLE", "GUN", "KEY ID", "LOCATION")
			for _, k := range ordered {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", printable.Quote(k.Role), printable.Quote(k.GUN), printable.Quote(k.ID), printable.Quote(loc(k)))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintln(a.env.Stdout)
			return nil
		},
	}
}

func sortKeys(ks []trustdir.KeyInfo) {
	less := func(x, y trustdir.KeyInfo) bool {
		if x.Role != y.Role {
			if x.Role == tuf.RoleRoot {
				return true
			}
			if y.Role == tuf.RoleRoot {
				return false
			}
		}
		for _, p := range [][2]string{{x.GUN, y.GUN}, {x.Role, y.Role}, {x.ID, y.ID}} {
			if p[0] != p[1] {
				return p[0] < p[1]
			}
		}
		return false
	}
	for i := 1; i < len(ks); i++ {
		for j := i; j > 0 && less(ks[j], ks[j-1]); j-- {
			ks[j], ks[j-1] = ks[j-1], ks[j]
		}
	}
}

func (a *app) keyGenerateCmd() *cobra.Command {
	var role, output string
	cmd := &cobra.Command{
		Use:   "generate [ecdsa]",
		Short: "Generate a new key (ECDSA P-256)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 && !strings.EqualFold(args[0], "ecdsa") {
				return usageError("only ecdsa keys can be generated, not %q", args[0])
			}
			ks, _, err := a.localKeys()
			if err != nil {
				return err
			}
			signer, err := newECDSAKey()
			if err != nil {
				return err
			}
			pub, _ := keys.FromCrypto(signer.Public())
			if output == "" {
				id, err := ks.Add(signer, role, "")
				if err != nil {
					return err
				}
				fmt.Fprintf(a.env.Stdout, "Generated new ecdsa %s key with keyID: %s\n", role, id)
				return nil
			}
			pass, err := a.passphrases(false)(pub.ID(), role, true, 0)
			if err != nil {
				return err
			}
			privPEM, err := keys.MarshalPrivateKeyPEM(signer, role, "", pass)
			if err != nil {
				return err
			}
			// A new file at exactly 0600 (an existing file or symbolic
			// link at the name is replaced, never written through).
			if err := atomicfile.Write(output+"-key.pem", privPEM, 0o600); err != nil {
				return err
			}
			if err := atomicfile.Write(output+".pem", keys.MarshalPublicKeyPEM(pub, role), 0o644); err != nil {
				return err
			}
			fmt.Fprintf(a.env.Stdout, "Generated new ecdsa %s key with keyID: %s\n", role, pub.ID())
			return nil
		},
	}
	cmd.Flags().StringVarP(&role, "role", "r", tuf.RoleRoot, "role of the key (root, or a delegation name)")
	cmd.Flags().StringVarP(&output, "output", "o", "", "write <prefix>-key.pem and <prefix>.pem instead of storing the key")
	return cmd
}

func (a *app) keyRotateCmd() *cobra.Command {
	var serverManaged bool
	var keyFiles []string
	var rootToken string
	cmd := &cobra.Command{
		Use:   "rotate <GUN> <role>",
		Short: "Rotate the key of a base role (root, targets, snapshot, timestamp) and publish",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			gun, role := args[0], args[1]
			switch role {
			case tuf.RoleRoot, tuf.RoleTargets, tuf.RoleSnapshot, tuf.RoleTimestamp:
			default:
				return usageError("role %q cannot be rotated: give root, targets, snapshot or timestamp", role)
			}
			if role == tuf.RoleTimestamp && !serverManaged {
				return usageError("the timestamp key is always held by the server: use -r")
			}
			if serverManaged && role != tuf.RoleTimestamp && role != tuf.RoleSnapshot {
				return usageError("only the snapshot and timestamp keys can be held by the server")
			}
			if rootToken != "" && (role != tuf.RoleRoot || len(keyFiles) > 0) {
				return usageError("--root-pkcs11 rotates the root key to a key on a token; it goes with role root and without --key")
			}
			if rootToken != "" {
				if err := needPKCS11("--root-pkcs11"); err != nil {
					return err
				}
			}
			r, err := a.notaryRepo(gun)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var newKey *keys.PublicKey
			switch {
			case serverManaged:
				if newKey, err = r.remote.RotateKey(ctx, role); err != nil {
					return r.settings.explainTLS(err)
				}
			case role == tuf.RoleRoot:
				if !a.confirm("Warning: you are about to rotate your root key.\n\nYou must use your old key to sign this root rotation.\nAre you sure you want to proceed?  (yes/no)  ") {
					fmt.Fprintln(a.env.Stdout, "\nAborting action.")
					return nil
				}
				staged, cs, err := r.stagedChanges()
				if err != nil {
					return err
				}
				newRoot := func(ctx context.Context) (crypto.Signer, error) {
					if rootToken != "" {
						return a.tokenRootKey(ctx, r, rootToken, "root-"+gun+"-"+a.now().UTC().Format("20060102T150405Z"))
					}
					return a.keyForRotation(r, keyFiles, role)
				}
				if err := a.publisher(r).RotateRoot(ctx, newRoot, cs...); err != nil {
					return r.settings.explainTLS(err)
				}
				return a.rotated(r, staged, role)
			default:
				signer, err := a.keyForRotation(r, keyFiles, role)
				if err != nil {
					return err
				}
				if newKey, err = keys.FromCrypto(signer.Public()); err != nil {
					return err
				}
			}
			staged, cs, err := r.stagedChanges()
			if err != nil {
				return err
			}
			rotate := changes.RotateKey{Role: role, Keys: []*keys.PublicKey{newKey}}
			if err := a.publisher(r).Publish(ctx, append([]changes.Change{rotate}, cs...)); err != nil {
				return r.settings.explainTLS(err)
			}
			return a.rotated(r, staged, role)
		},
	}
	cmd.Flags().BoolVarP(&serverManaged, "server-managed", "r", false, "let the server hold the key (snapshot, timestamp)")
	cmd.Flags().StringSliceVarP(&keyFiles, "key", "k", nil, "key file to rotate to instead of a new key")
	cmd.Flags().StringVar(&rootToken, "root-pkcs11", "", "root only: rotate to a key on a PKCS#11 token; "+rootPKCS11Help+"; the default label is root-<GUN>-<time>")
	return cmd
}

// rotated clears the changes published with a rotation, removes the
// private keys the rotation replaced, and says so.
func (a *app) rotated(r *repo, staged []changes.Staged, role string) error {
	if err := r.changes.Remove(staged); err != nil {
		return err
	}
	if err := removeReplacedKeys(r, role); err != nil {
		return err
	}
	fmt.Fprintf(a.env.Stdout, "Successfully rotated %s key for repository %s\n", role, r.gun)
	return nil
}

// removeReplacedKeys deletes the private keys of role for this repository
// that the published root no longer lists, as notary removes a rotated-out
// targets or snapshot key from its key store (root keys are kept, as by
// notary, to sign later rotations). Unlike notary, which deletes them
// before it uploads, this runs only once the new root is published.
func removeReplacedKeys(r *repo, role string) error {
	if role == tuf.RoleRoot {
		return nil
	}
	b, err := r.cache.Get(tuf.RoleRoot)
	if err != nil || b == nil {
		return err
	}
	root, err := tuf.ParseRoot(b)
	if err != nil {
		return err
	}
	listed := map[string]bool{}
	for _, rk := range root.Signed.Roles {
		for _, id := range rk.KeyIDs {
			if k := root.Signed.Keys[id]; k != nil {
				listed[k.CanonicalID()] = true
			}
		}
	}
	held, err := r.keys.List()
	if err != nil {
		return err
	}
	for _, k := range held {
		if k.Role == role && k.GUN == r.gun.String() && !listed[k.ID] {
			if err := r.keys.Remove(k.ID); err != nil {
				return err
			}
		}
	}
	return nil
}

// keyForRotation returns the new key of a local rotation: from a file
// (imported) or freshly generated, stored in the trust directory.
func (a *app) keyForRotation(r *repo, files []string, role string) (*keys.PrivateKey, error) {
	gun := r.gun.String()
	if role == tuf.RoleRoot {
		gun = ""
	}
	if len(files) > 1 {
		return nil, usageError("give at most one --key")
	}
	if len(files) == 1 {
		b, err := readFile(files[0])
		if err != nil {
			return nil, err
		}
		k, err := keys.ParsePrivateKeyPEM(b, func(attempt int) ([]byte, error) {
			return a.passphrases(r.settings.docker)("", role, false, attempt)
		})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", files[0], err)
		}
		if _, err := r.keys.Add(k, role, gun); err != nil {
			return nil, err
		}
		return k, nil
	}
	s, err := newECDSAKey()
	if err != nil {
		return nil, err
	}
	id, err := r.keys.Add(s, role, gun)
	if err != nil {
		return nil, err
	}
	k, _, err := r.keys.Load(id)
	return k, err
}

func (a *app) keyImportCmd() *cobra.Command {
	var role, gun string
	cmd := &cobra.Command{
		Use:   "import <pemfile>...",
		Short: "Import private keys (PEM) into the trust directory",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ks, _, err := a.localKeys()
			if err != nil {
				return err
			}
			// A file may hold several keys (notary's key export writes one
			// PEM block per key); each is imported.
			type pemKey struct {
				file string
				b    []byte
			}
			var blocks []pemKey
			for _, f := range args {
				b, err := readFile(f)
				if err != nil {
					return err
				}
				n := 0
				for block, rest := pem.Decode(b); block != nil; block, rest = pem.Decode(rest) {
					blocks = append(blocks, pemKey{f, pem.EncodeToMemory(block)})
					n++
				}
				if n == 0 {
					blocks = append(blocks, pemKey{f, b}) // reported below
				}
			}
			for i, pk := range blocks {
				f, b := pk.file, pk.b
				info, err := keys.InspectPrivateKeyPEM(b)
				if err != nil {
					return fmt.Errorf("%s: %w", f, err)
				}
				kr, kg := firstNonEmpty(info.Role, role), firstNonEmpty(info.GUN, gun)
				if kr == "" {
					kr = "delegation"
				}
				k, err := keys.ParsePrivateKeyPEM(b, func(attempt int) ([]byte, error) {
					return a.passphrases(false)("", kr, false, attempt)
				})
				if err != nil {
					return fmt.Errorf("%s: %w", f, err)
				}
				if kr != tuf.RoleTargets && kr != tuf.RoleSnapshot {
					kg = ""
				}
				id, err := ks.Add(k, kr, kg)
				if err != nil {
					return err
				}
				if len(blocks) > 3 && a.env.Terminal {
					fmt.Fprintf(a.env.Stderr, "\rimported %d/%d keys", i+1, len(blocks))
				}
				if a.verbose {
					fmt.Fprintf(a.env.Stdout, "Imported %s key %s from %s\n", printable.Quote(kr), id, f)
				}
			}
			if len(blocks) > 3 && a.env.Terminal {
				fmt.Fprintln(a.env.Stderr)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&role, "role", "r", "", "role of keys whose file has no role header")
	cmd.Flags().StringVarP(&gun, "gun", "g", "", "GUN of targets/snapshot keys whose file has no gun header")
	return cmd
}

func (a *app) keyExportCmd() *cobra.Command {
	var ids, guns []string
	var output string
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Export encrypted key files as PEM (all, or by --key / --gun)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ks, privDir, err := a.localKeys()
			if err != nil {
				return err
			}
			list, err := ks.List()
			if err != nil {
				return err
			}
			var buf bytes.Buffer
			for _, k := range list {
				if len(ids) > 0 && !contains(ids, k.ID) {
					continue
				}
				if len(guns) > 0 && !contains(guns, k.GUN) {
					continue
				}
				b, err := readFile(k.Path)
				if err != nil {
					return err
				}
				// As notary, every block gets a "path:" header (the key
				// file's name in private/, without .key): notary's key
				// import needs it to store an encrypted key.
				rel, err := filepath.Rel(privDir, k.Path)
				if err != nil {
					return err
				}
				rel = strings.TrimSuffix(filepath.ToSlash(rel), ".key")
				for block, rest := pem.Decode(b); block != nil; block, rest = pem.Decode(rest) {
					if block.Headers == nil {
						block.Headers = map[string]string{}
					}
					block.Headers["path"] = rel
					if err := pem.Encode(&buf, block); err != nil {
						return err
					}
				}
			}
			if buf.Len() == 0 {
				return fmt.Errorf("no keys match")
			}
			if output != "" {
				return atomicfile.Write(output, buf.Bytes(), 0o600)
			}
			_, err = a.env.Stdout.Write(buf.Bytes())
			return err
		},
	}
	cmd.Flags().StringSliceVar(&ids, "key", nil, "key IDs to export")
	cmd.Flags().StringSliceVar(&guns, "gun", nil, "GUNs whose keys to export")
	cmd.Flags().StringVarP(&output, "output", "o", "", "file to write (default standard output)")
	return cmd
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (a *app) keyRemoveCmd() *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "remove <keyID>",
		Short: "Remove a key from the trust directory",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ks, _, err := a.localKeys()
			if err != nil {
				return err
			}
			if !yes && !a.confirm(fmt.Sprintf("Are you sure you want to remove %s?  (yes/no)  ", args[0])) {
				fmt.Fprintln(a.env.Stdout, "\nAborting action.")
				return nil
			}
			if err := ks.Remove(args[0]); err != nil {
				return err
			}
			fmt.Fprintf(a.env.Stdout, "\nDeleted %s.\n", args[0])
			return nil
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}

func (a *app) keyPasswdCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "passwd <keyID>",
		Short: "Change the passphrase of a key (new one from SIGNET_NEW_PASSPHRASE or a prompt)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ks, _, err := a.localKeys()
			if err != nil {
				return err
			}
			list, err := ks.List()
			if err != nil {
				return err
			}
			var info *trustdir.KeyInfo
			for i := range list {
				if list[i].ID == args[0] {
					info = &list[i]
				}
			}
			if info == nil {
				return fmt.Errorf("no key with ID %s", args[0])
			}
			k, _, err := ks.Load(info.ID)
			if err != nil {
				return err
			}
			newPass := []byte(a.env.Getenv("SIGNET_NEW_PASSPHRASE"))
			retr := a.passphrases(false)
			if len(newPass) == 0 {
				if newPass, err = retrNew(retr, info.ID, info.Role); err != nil {
					return err
				}
			}
			b, err := keys.MarshalPrivateKeyPEM(k, info.Role, info.GUN, newPass)
			if err != nil {
				return err
			}
			if err := atomicfile.Write(info.Path, b, 0o600); err != nil {
				return err
			}
			fmt.Fprintf(a.env.Stdout, "\nSuccessfully updated passphrase for key ID: %s\n", info.ID)
			return nil
		},
	}
}

func retrNew(retr trustdir.Passphrases, id, role string) ([]byte, error) {
	return retr(id, role, true, 0)
}
