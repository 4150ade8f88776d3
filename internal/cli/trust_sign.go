package cli

import (
	"context"
	"crypto"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/signet-trust/signet/internal/client"
	"github.com/signet-trust/signet/internal/client/changes"
	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/registry"
	"github.com/signet-trust/signet/internal/trustdir"
	"github.com/signet-trust/signet/internal/tuf"
	"github.com/signet-trust/signet/internal/tuf/trust"
)

func (d *dockerTrust) signCommand() *cobra.Command {
	var o signOptions
	c := &cobra.Command{
		Use:   "sign IMAGE:TAG",
		Short: "Sign an image's tag (the digest comes from the registry; no Docker daemon)",
		Long: `Sign IMAGE:TAG into every role docker would sign it into: each delegation directly under
targets whose key is in the trust directory (targets/releases and targets/<signer>), or
targets itself when the repository has no delegations. With --signer NAME, only NAME's keys
sign, into the roles they are in (targets/NAME and targets/releases), even when the trust
directory holds other signers' keys too.

The digest and size signed are those of the manifest the registry serves for the tag now
(resolved with the registry credentials of the Docker configuration; loopback registries over
plain HTTP), or those given with --digest and --size.

A repository that has no trust data yet is initialised first, as docker does: the local root
key with the lowest ID (or a new one), a new targets key, a snapshot key held by the server, and
one signer added to targets/<signer> and targets/releases. The signer is --signer; without it,
the one signer whose key is in the trust directory, else (as docker) the registry user name of
the Docker configuration. Its key is the local key with that role, or a new one.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return d.sign(cmd.Context(), args[0], o)
		},
	}
	c.Flags().StringVar(&o.signer, "signer", "", "sign only as this signer: its own role targets/NAME and targets/releases, with its keys only (for a repository without trust data: its first signer)")
	c.Flags().StringVar(&o.digest, "digest", "", "sign this manifest digest (sha256:…) instead of asking the registry; needs --size")
	c.Flags().Int64Var(&o.size, "size", 0, "manifest size in bytes, with --digest")
	return c
}

type signOptions struct {
	signer string
	digest string
	size   int64
}

func (d *dockerTrust) sign(ctx context.Context, arg string, o signOptions) error {
	ref, err := parseRef(arg)
	if err != nil {
		return err
	}
	if ref.Tag == "" || ref.Digest != "" {
		return usageError("trust sign needs IMAGE:TAG, got %s", arg)
	}
	r, err := d.openRepo(ref, "push,pull")
	if err != nil {
		return err
	}
	name := ref.GUN() + ":" + ref.Tag
	desc, err := d.resolve(ctx, ref, o)
	if err != nil {
		return err
	}
	meta := tuf.FileMeta{Length: desc.Size, Hashes: map[string][]byte{"sha256": desc.SHA256()}}
	held, err := heldKeys(r.keys)
	if err != nil {
		return err
	}
	v, err := r.update(ctx)
	var cs []changes.Change
	var signWith client.KeyStore // nil: every key held
	switch {
	case errors.Is(err, client.ErrNoTrustData):
		signer, key, err := d.pickSigner(ctx, r, ref, o.signer, held)
		if err != nil {
			return err
		}
		fmt.Fprintf(d.a.env.Stdout, "Initializing signed repository for %s...\n", ref.GUN())
		if err := d.initRepo(ctx, r); err != nil {
			return err
		}
		for _, role := range []string{releasesRole, "targets/" + signer} {
			cs = append(cs, changes.AddDelegation{Role: role, Keys: []*keys.PublicKey{key}, Paths: []string{""}})
		}
		for _, role := range []string{releasesRole, "targets/" + signer} {
			cs = append(cs, changes.AddTarget{Role: role, Name: ref.Tag, Meta: meta})
		}
		fmt.Fprintf(d.a.env.Stdout, "Created signer: %s\n", signer)
	case err != nil:
		return err
	default:
		if t, ok := releasedTarget(v, ref.Tag); ok {
			fmt.Fprintf(d.a.env.Stdout, "Existing signatures for tag %s digest %s from:\n%s\n", ref.Tag, hex.EncodeToString(t.Meta.Hashes["sha256"]), quoteAll(tagSigners(v, ref.Tag, t.Meta)))
			if o.digest == "" && !t.Meta.Equal(meta) && len(t.Meta.Hashes["sha256"]) > 0 && hex.EncodeToString(t.Meta.Hashes["sha256"]) != desc.Hex() {
				fmt.Fprintf(d.a.env.Stderr, "Note: %s now points to %s in the registry; signing that digest.\n", name, desc.Digest)
			}
		}
		if o.signer != "" {
			// --signer: only that signer's keys sign, in the roles its
			// keys are in (targets/NAME, targets/releases).
			if held, signWith, err = onlySigner(v, held, r.keys, o.signer); err != nil {
				return err
			}
		}
		roles, err := signableRoles(v, held, ref.Tag)
		if err != nil {
			return err
		}
		for _, role := range roles {
			cs = append(cs, changes.AddTarget{Role: role, Name: ref.Tag, Meta: meta})
		}
	}
	fmt.Fprintf(d.a.env.Stdout, "Signing and pushing trust metadata for %s\n", name)
	pub := d.a.publisher(r)
	if signWith != nil {
		pub.Keys = signWith
	}
	if err := pub.Publish(ctx, cs); err != nil {
		return fmt.Errorf("failed to sign %s: %w", name, r.settings.explainTLS(err))
	}
	fmt.Fprintf(d.a.env.Stdout, "Successfully signed %s\n", name)
	return nil
}

// resolve finds the digest and size to sign.
func (d *dockerTrust) resolve(ctx context.Context, ref registry.Reference, o signOptions) (registry.Descriptor, error) {
	if o.digest != "" {
		h, ok := strings.CutPrefix(o.digest, "sha256:")
		if b, err := hex.DecodeString(h); !ok || err != nil || len(b) != 32 {
			return registry.Descriptor{}, usageError("--digest must be sha256:<64 hex digits>, got %q", o.digest)
		}
		if o.size <= 0 {
			return registry.Descriptor{}, usageError("--digest needs --size (the manifest's length in bytes)")
		}
		return registry.Descriptor{Digest: "sha256:" + strings.ToLower(h), Size: o.size}, nil
	}
	if o.size != 0 {
		return registry.Descriptor{}, usageError("--size goes with --digest")
	}
	kc, err := d.keychain()
	if err != nil {
		return registry.Descriptor{}, err
	}
	// The registry's token realm may be the trust server's own token
	// service: reach it with the trust server's CA.
	tr, _, err := d.transport(ref)
	if err != nil {
		return registry.Descriptor{}, err
	}
	rc := &registry.Client{Keychain: kc, UserAgent: "signet", Transport: tr}
	desc, err := rc.Resolve(ctx, ref)
	if err != nil {
		return registry.Descriptor{}, fmt.Errorf("resolving %s in the registry: %w", ref, err)
	}
	return desc, nil
}

// pickSigner chooses the signer of a new repository and its public key,
// creating the key if none is held.
func (d *dockerTrust) pickSigner(ctx context.Context, r *repo, ref registry.Reference, name string, held map[string]trustdir.KeyInfo) (string, *keys.PublicKey, error) {
	if name == "" {
		names := map[string]bool{}
		for _, k := range held {
			if isSignerRole(k.Role) {
				names[k.Role] = true
			}
		}
		switch len(names) {
		case 1:
			for n := range names {
				name = n
			}
		case 0:
			kc, err := d.keychain()
			if err != nil {
				return "", nil, err
			}
			cred, err := kc.Credentials(ctx, ref.Registry)
			if err != nil {
				return "", nil, err
			}
			name = strings.ToLower(cred.Username)
			if name == "" {
				return "", nil, usageError("%s has no trust data yet; name its first signer with --signer NAME", ref.GUN())
			}
		default:
			var list []string
			for n := range names {
				list = append(list, n)
			}
			sort.Strings(list)
			return "", nil, usageError("%s has no trust data yet and the trust directory holds keys of several signers (%s); choose one with --signer", ref.GUN(), strings.Join(list, ", "))
		}
	}
	if !validSignerName.MatchString(name) || name == "releases" {
		return "", nil, usageError("signer name %q must match %s and not be \"releases\"", name, validSignerName)
	}
	var ids []string
	for id, k := range held {
		if k.Role == name {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	if len(ids) > 0 {
		k, ok, err := r.keys.Load(ids[0])
		if err != nil {
			return "", nil, err
		}
		if ok {
			return name, k.PublicKey(), nil
		}
	}
	k, err := newSignerKey()
	if err != nil {
		return "", nil, err
	}
	if _, err := r.keys.Add(k, name, ""); err != nil {
		return "", nil, err
	}
	pub, err := keys.FromCrypto(k.Public())
	return name, pub, err
}

// isSignerRole reports whether a key file's role is a docker signer name
// (not a base role, not a notary delegation path).
func isSignerRole(role string) bool {
	switch role {
	case "", tuf.RoleRoot, tuf.RoleTargets, tuf.RoleSnapshot, tuf.RoleTimestamp:
		return false
	}
	return validSignerName.MatchString(role)
}

// releasedTarget looks a tag up as docker does: targets/releases, then
// targets, and no other role.
func releasedTarget(v *trust.Repo, tag string) (client.Target, bool) {
	for _, role := range []string{releasesRole, tuf.RoleTargets} {
		if t, ok := client.RoleTarget(v, role, tag); ok {
			return t, true
		}
	}
	return client.Target{}, false
}

// tagSigners names the roles that sign tag with meta's digest, as inspect
// shows them.
func tagSigners(v *trust.Repo, tag string, meta tuf.FileMeta) []string {
	info := inspectRepo(v, v.GUN(), tag)
	want := hex.EncodeToString(meta.Hashes["sha256"])
	for _, t := range info.SignedTags {
		if t.Digest == want {
			return t.Signers
		}
	}
	return []string{repoAdminSigner}
}

func (d *dockerTrust) revokeCommand() *cobra.Command {
	var yes bool
	c := &cobra.Command{
		Use:   "revoke [-y] IMAGE[:TAG]",
		Short: "Remove trust for an image's tag (or all its tags) from every role you can sign",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return d.revoke(cmd.Context(), args[0], yes)
		},
	}
	c.Flags().BoolVarP(&yes, "yes", "y", false, "do not prompt for confirmation")
	return c
}

func (d *dockerTrust) revoke(ctx context.Context, arg string, yes bool) error {
	ref, err := parseRef(arg)
	if err != nil {
		return err
	}
	if ref.Digest != "" {
		return usageError("cannot use a digest reference for IMAGE:TAG")
	}
	if ref.Tag == "" && !yes {
		if !d.confirm(fmt.Sprintf("Please confirm you would like to delete all signature data for %s?", ref.GUN())) {
			fmt.Fprintln(d.a.env.Stdout, "Aborting action.")
			return nil
		}
	}
	r, err := d.openRepo(ref, "push,pull")
	if err != nil {
		return err
	}
	v, err := r.update(ctx)
	if err != nil {
		return fmt.Errorf("could not remove signature for %s: %w", arg, err)
	}
	held, err := heldKeys(r.keys)
	if err != nil {
		return err
	}
	var tags []string
	if ref.Tag != "" {
		if _, ok := releasedTarget(v, ref.Tag); !ok {
			return fmt.Errorf("could not remove signature for %s: no signed tag %s", arg, ref.Tag)
		}
		tags = []string{ref.Tag}
	} else {
		for _, t := range client.ListTargets(v, releasesRole, tuf.RoleTargets) {
			if t.Role == releasesRole || t.Role == tuf.RoleTargets {
				tags = append(tags, t.Name)
			}
		}
	}
	var cs []changes.Change
	for _, tag := range tags {
		roles, err := signableRoles(v, held, tag)
		if err != nil {
			return fmt.Errorf("could not remove signature for %s: %w", arg, err)
		}
		for _, role := range roles {
			if _, listed := client.RoleTarget(v, role, tag); listed {
				cs = append(cs, changes.RemoveTarget{Role: role, Name: tag})
			}
		}
	}
	if len(cs) > 0 {
		if err := d.a.publisher(r).Publish(ctx, cs); err != nil {
			return fmt.Errorf("could not remove signature for %s: %w", arg, r.settings.explainTLS(err))
		}
	}
	if ref.Tag != "" {
		fmt.Fprintf(d.a.env.Stdout, "Successfully deleted signature for %s:%s\n", ref.GUN(), ref.Tag)
	} else {
		fmt.Fprintf(d.a.env.Stdout, "Successfully deleted signature for %s\n", ref.GUN())
	}
	return nil
}

// onlySigner narrows a signature to one signer of an existing repository:
// the held keys that are the signer's (targets/NAME's), and a key store
// that gives no other delegation key. It fails when NAME is not a signer
// of the repository or none of its keys is held.
func onlySigner(v *trust.Repo, held map[string]trustdir.KeyInfo, ks client.KeyStore, name string) (map[string]trustdir.KeyInfo, client.KeyStore, error) {
	t := v.Targets(tuf.RoleTargets)
	role := tuf.RoleTargets + "/" + name
	mine := map[string]bool{}
	delegated := map[string]bool{}
	var signers []string
	if t != nil {
		for _, dr := range t.Signed.Delegations.Roles {
			if n, ok := strings.CutPrefix(dr.Name, tuf.RoleTargets+"/"); ok && n != "releases" {
				signers = append(signers, n)
			}
			for _, id := range dr.KeyIDs {
				k := t.Signed.Delegations.Keys[id]
				if k == nil {
					continue
				}
				delegated[k.CanonicalID()] = true
				if dr.Name == role {
					mine[k.CanonicalID()] = true
				}
			}
		}
	}
	if len(mine) == 0 {
		sort.Strings(signers)
		return nil, nil, usageError("--signer %s: not a signer of %s (its signers: %s)", name, v.GUN(), strings.Join(signers, ", "))
	}
	out := map[string]trustdir.KeyInfo{}
	for id, k := range held {
		if mine[id] {
			out[id] = k
		}
	}
	if len(out) == 0 {
		return nil, nil, fmt.Errorf("--signer %s: none of its keys (%s) is in the trust directory; load it with signet trust key load --name %s KEY", name, strings.Join(sortedSet(mine), ", "), name)
	}
	deny := map[string]bool{}
	for id := range delegated {
		if !mine[id] {
			deny[id] = true
		}
	}
	return out, withoutKeys{ks, deny}, nil
}

// withoutKeys is a key store that does not give the denied keys.
type withoutKeys struct {
	client.KeyStore
	deny map[string]bool
}

func (w withoutKeys) Signer(ctx context.Context, id string) (crypto.Signer, bool, error) {
	if w.deny[id] {
		return nil, false, nil
	}
	return w.KeyStore.Signer(ctx, id)
}

func sortedSet(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
