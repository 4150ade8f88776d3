package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/signet-trust/signet/internal/atomicfile"
	"github.com/signet-trust/signet/internal/client"
	"github.com/signet-trust/signet/internal/client/changes"
	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/printable"
	"github.com/signet-trust/signet/internal/trustdir"
)

func (d *dockerTrust) signerCommand() *cobra.Command {
	c := &cobra.Command{Use: "signer", Short: "Manage the signers of repositories"}
	var keyFiles []string
	add := &cobra.Command{
		Use:   "add --key PUBKEY.pem [--key …] NAME REPOSITORY [REPOSITORY…]",
		Short: "Add a signer: its keys go into targets/NAME and targets/releases (a new repository is initialised)",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return d.signerAdd(cmd.Context(), args[0], args[1:], keyFiles)
		},
	}
	add.Flags().StringSliceVar(&keyFiles, "key", nil, "path to the signer's public key file (PUBLIC KEY or CERTIFICATE PEM)")
	var force bool
	remove := &cobra.Command{
		Use:   "remove [-f] NAME REPOSITORY [REPOSITORY…]",
		Short: "Remove a signer: its keys leave targets/releases and targets/NAME is deleted",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return d.signerRemove(cmd.Context(), args[0], args[1:], force)
		},
	}
	remove.Flags().BoolVarP(&force, "force", "f", false, "remove the signer even if targets/releases is left without enough keys (it is then lowered, or deleted when no key is left)")
	c.AddCommand(add, remove)
	return c
}

func checkSignerName(name string) error {
	if name == "releases" {
		return usageError("releases is a reserved keyword, please use a different signer name")
	}
	if !validSignerName.MatchString(name) {
		return usageError("signer name %q must match the regular expression %s", name, validSignerName)
	}
	return nil
}

func (d *dockerTrust) signerAdd(ctx context.Context, name string, repos, keyFiles []string) error {
	if err := checkSignerName(name); err != nil {
		return err
	}
	if len(keyFiles) == 0 {
		return usageError("path to a public key must be provided using the `--key` flag")
	}
	var pubs []*keys.PublicKey
	for _, f := range keyFiles {
		b, err := readFile(f)
		if err != nil {
			return fmt.Errorf("unable to read public key from file: %w", err)
		}
		k, err := keys.ParsePublicKeyPEM(b)
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		for _, c := range k.Certificates() {
			if err := keys.CheckCertificate(c, d.a.now()); err != nil {
				return fmt.Errorf("%s: %w", f, err)
			}
		}
		pubs = append(pubs, k)
	}
	var failed []string
	for _, repoName := range repos {
		fmt.Fprintf(d.a.env.Stdout, "Adding signer \"%s\" to %s...\n", name, repoName)
		if err := d.addSignerToRepo(ctx, name, repoName, pubs); err != nil {
			fmt.Fprintf(d.a.env.Stderr, "%s\n\n", printable.Lines(err.Error()))
			failed = append(failed, repoName)
			continue
		}
		fmt.Fprintf(d.a.env.Stdout, "Successfully added signer: %s to %s\n\n", name, repoName)
	}
	if len(failed) > 0 {
		return fmt.Errorf("failed to add signer to: %s", strings.Join(failed, ", "))
	}
	return nil
}

func (d *dockerTrust) addSignerToRepo(ctx context.Context, name, repoName string, pubs []*keys.PublicKey) error {
	ref, err := parseRef(repoName)
	if err != nil {
		return err
	}
	if ref.Tag != "" || ref.Digest != "" {
		return usageError("%s: a repository takes no tag or digest", repoName)
	}
	r, err := d.openRepo(ref, "push,pull")
	if err != nil {
		return err
	}
	if _, err := r.update(ctx); errors.Is(err, client.ErrNoTrustData) {
		fmt.Fprintf(d.a.env.Stdout, "Initializing signed repository for %s...\n", ref.GUN())
		if err := d.initRepo(ctx, r); err != nil {
			return err
		}
		fmt.Fprintf(d.a.env.Stdout, "Successfully initialized %q\n", ref.GUN())
	} else if err != nil {
		return err
	}
	var cs []changes.Change
	for _, role := range []string{"targets/" + name, releasesRole} {
		cs = append(cs, changes.AddDelegation{Role: role, Keys: pubs, Paths: []string{""}})
	}
	if err := d.a.publisher(r).Publish(ctx, cs); err != nil {
		return fmt.Errorf("failed to add signer to %s: %w", ref.GUN(), r.settings.explainTLS(err))
	}
	return nil
}

func (d *dockerTrust) signerRemove(ctx context.Context, name string, repos []string, force bool) error {
	if err := checkSignerName(name); err != nil {
		return err
	}
	var failed []string
	for _, repoName := range repos {
		fmt.Fprintf(d.a.env.Stdout, "Removing signer \"%s\" from %s...\n", name, repoName)
		if err := d.removeSignerFromRepo(ctx, name, repoName, force); err != nil {
			fmt.Fprintf(d.a.env.Stderr, "%s\n\n", printable.Lines(err.Error()))
			failed = append(failed, repoName)
			continue
		}
		fmt.Fprintf(d.a.env.Stdout, "Successfully removed %s from %s\n\n", name, repoName)
	}
	if len(failed) > 0 {
		return fmt.Errorf("error removing signer from: %s", strings.Join(failed, ", "))
	}
	return nil
}

func (d *dockerTrust) removeSignerFromRepo(ctx context.Context, name, repoName string, force bool) error {
	ref, err := parseRef(repoName)
	if err != nil {
		return err
	}
	r, err := d.openRepo(ref, "push,pull")
	if err != nil {
		return err
	}
	v, err := r.update(ctx)
	if err != nil {
		return err
	}
	role := "targets/" + name
	if v.Delegation(role) == nil {
		return fmt.Errorf("no signer %s for repository %s", name, ref.GUN())
	}
	signerIDs, _, signerKeys, _ := v.RoleKeys(role)
	remove := map[string]bool{}
	for _, id := range signerIDs {
		if k := signerKeys[id]; k != nil {
			remove[k.CanonicalID()] = true
		}
	}
	var cs []changes.Change
	if rel := v.Delegation(releasesRole); rel != nil {
		_, _, relKeys, _ := v.RoleKeys(releasesRole)
		var gone []string
		left := 0
		for _, id := range rel.KeyIDs {
			k := relKeys[id]
			if k != nil && remove[k.CanonicalID()] {
				gone = append(gone, k.CanonicalID())
			} else {
				left++
			}
		}
		switch {
		case len(gone) == 0:
		case left >= rel.Threshold:
			cs = append(cs, changes.UpdateDelegation{Role: releasesRole, RemoveKeys: gone})
		case !force:
			return fmt.Errorf("removing %s would leave %s of %s with %d key(s) but it needs %d signatures: nobody could sign released tags any more. "+
				"Add another signer first (signet trust signer add), or pass --force to remove it anyway (%s is then lowered to the keys left, or deleted with its tags when none is left)",
				name, releasesRole, ref.GUN(), left, rel.Threshold, releasesRole)
		case left == 0:
			fmt.Fprintf(d.a.env.Stderr, "WARNING: %s had no key but %s's; deleting it and the tags it signed\n", releasesRole, name)
			cs = append(cs, changes.RemoveDelegation{Role: releasesRole})
		default:
			fmt.Fprintf(d.a.env.Stderr, "WARNING: lowering the threshold of %s to %d\n", releasesRole, left)
			cs = append(cs, changes.UpdateDelegation{Role: releasesRole, RemoveKeys: gone, Threshold: left})
		}
	}
	cs = append(cs, changes.RemoveDelegation{Role: role})
	if err := d.a.publisher(r).Publish(ctx, cs); err != nil {
		return fmt.Errorf("failed to remove %s from %s: %w", name, ref.GUN(), r.settings.explainTLS(err))
	}
	return nil
}

func (d *dockerTrust) keyCommand() *cobra.Command {
	c := &cobra.Command{Use: "key", Short: "Manage keys for signing images"}
	var dir string
	gen := &cobra.Command{
		Use:   "generate NAME",
		Short: "Generate a signing key pair: NAME.pub in --dir, the encrypted private key in the trust directory",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return d.keyGenerate(args[0], dir)
		},
	}
	gen.Flags().StringVar(&dir, "dir", "", "directory to write the public key to (default the current directory)")
	var name string
	load := &cobra.Command{
		Use:   "load [--name NAME] KEYFILE",
		Short: "Load a private key file into the trust directory under a signer name",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return d.keyLoad(args[0], name)
		},
	}
	load.Flags().StringVar(&name, "name", defaultSignerKey, "name of the signer the key is for")
	c.AddCommand(gen, load)
	return c
}

// keyStore is the key store of the Docker trust directory.
func (d *dockerTrust) keyStore() *trustdir.KeyStore {
	dir := trustdir.Dir{Path: firstNonEmpty(d.a.trustDir, filepath.Join(d.configDir(), "trust"))}
	return dir.Keys(d.a.passphrases(true))
}

func (d *dockerTrust) keyGenerate(name, dir string) error {
	if !validSignerName.MatchString(name) {
		return usageError("key name %q must match the regular expression %s", name, validSignerName)
	}
	pubFile := filepath.Join(dir, name+".pub")
	if _, err := os.Lstat(pubFile); err == nil {
		return fmt.Errorf("public key file already exists: %q", pubFile)
	}
	fmt.Fprintf(d.a.env.Stdout, "Generating key for %s...\n", name)
	k, err := newSignerKey()
	if err != nil {
		return err
	}
	if _, err := d.keyStore().Add(k, name, ""); err != nil {
		return fmt.Errorf("failed to generate key for %s: %w", name, err)
	}
	pub, err := keys.FromCrypto(k.Public())
	if err != nil {
		return err
	}
	if err := atomicfile.Write(pubFile, keys.MarshalPublicKeyPEM(pub, name), 0o644); err != nil {
		return fmt.Errorf("failed to write the public key: %w", err)
	}
	fmt.Fprintf(d.a.env.Stdout, "Successfully generated and loaded private key. Corresponding public key available: %s\n", pubFile)
	return nil
}

func (d *dockerTrust) keyLoad(file, name string) error {
	if !validSignerName.MatchString(name) {
		return usageError("key name %q must match the regular expression %s", name, validSignerName)
	}
	fmt.Fprintf(d.a.env.Stdout, "Loading key from \"%s\"...\n", file)
	fi, err := os.Stat(file)
	if err != nil {
		return fmt.Errorf("error reading key file: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("private key file %s must not be readable or writable by others (chmod 600 %s)", file, file)
	}
	b, err := readFile(file)
	if err != nil {
		return fmt.Errorf("error reading key file: %w", err)
	}
	retr := d.a.passphrases(true)
	k, err := keys.ParsePrivateKeyPEM(b, func(attempt int) ([]byte, error) {
		return retr("", name, false, attempt)
	})
	if err != nil {
		return fmt.Errorf("error importing key from %s: %w", file, err)
	}
	if _, err := d.keyStore().Add(k, name, ""); err != nil {
		return fmt.Errorf("error importing key from %s: %w", file, err)
	}
	fmt.Fprintf(d.a.env.Stdout, "Successfully imported key from %s\n", file)
	return nil
}
