package client

import (
	"context"
	"crypto"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/tuf"
)

// InitOptions are the keys of a new repository.
type InitOptions struct {
	// Root signs the root; RootCert is its self-signed certificate (CN =
	// GUN). When RootCert is nil one is made, valid for ten years.
	Root     crypto.Signer
	RootCert *x509.Certificate
	// Targets signs targets.
	Targets crypto.Signer
	// Snapshot signs snapshots; nil asks the server to manage the snapshot.
	Snapshot crypto.Signer
	// Expiry sets the lifetimes of the metadata signed (zero: defaults).
	Expiry Expiries
}

// Initialize prepares a new repository locally, as `notary init` does: it
// fetches the server's timestamp key (and snapshot key when the server is
// to manage the snapshot), signs root, targets and (client-held) snapshot
// at version 1 and caches them. Nothing is uploaded until the first
// publish, which sends them.
func Initialize(ctx context.Context, remote *Remote, cache Cache, opts InitOptions, now time.Time) error {
	gun := remote.GUN()
	cert := opts.RootCert
	if cert == nil {
		var err error
		cert, err = keys.NewRootCertificate(opts.Root, gun, now, now.Add(RootExpiry))
		if err != nil {
			return err
		}
	}
	if cert.Subject.CommonName != gun {
		return fmt.Errorf("client: the root certificate is for %q, not %q", cert.Subject.CommonName, gun)
	}
	rootKey, err := keys.FromCertificate(cert)
	if err != nil {
		return err
	}
	targetsKey, err := keys.FromCrypto(opts.Targets.Public())
	if err != nil {
		return err
	}
	tsKey, err := remote.GetKey(ctx, tuf.RoleTimestamp)
	if err != nil {
		return fmt.Errorf("fetching the server's timestamp key: %w", err)
	}
	var snapKey *keys.PublicKey
	if opts.Snapshot == nil {
		if snapKey, err = remote.GetKey(ctx, tuf.RoleSnapshot); err != nil {
			return fmt.Errorf("fetching the server's snapshot key: %w", err)
		}
	} else if snapKey, err = keys.FromCrypto(opts.Snapshot.Public()); err != nil {
		return err
	}
	root := tuf.Root{
		Common: tuf.Common{Type: tuf.TypeRoot, Version: 1, Expires: now.Add(opts.Expiry.root()).UTC()},
		Keys:   map[string]*keys.PublicKey{},
		Roles:  map[string]*tuf.RoleKeys{},
	}
	for role, k := range map[string]*keys.PublicKey{tuf.RoleRoot: rootKey, tuf.RoleTargets: targetsKey, tuf.RoleSnapshot: snapKey, tuf.RoleTimestamp: tsKey} {
		root.Keys[k.ID()] = k
		root.Roles[role] = &tuf.RoleKeys{KeyIDs: []string{k.ID()}, Threshold: 1}
	}
	rootB, err := tuf.Sign(&root, tuf.Signer{Key: rootKey, Signer: opts.Root})
	if err != nil {
		return err
	}
	targets := emptyTargets(now)
	targets.Version = 1
	targets.Expires = now.Add(opts.Expiry.targets()).UTC()
	targetsB, err := tuf.Sign(targets, tuf.Signer{Key: targetsKey, Signer: opts.Targets})
	if err != nil {
		return err
	}
	files := map[string][]byte{tuf.RoleRoot: rootB, tuf.RoleTargets: targetsB}
	if opts.Snapshot != nil {
		snap := tuf.Snapshot{
			Common: tuf.Common{Type: tuf.TypeSnapshot, Version: 1, Expires: now.Add(opts.Expiry.snapshot()).UTC()},
			Meta:   map[string]tuf.FileMeta{tuf.RoleRoot: tuf.NewFileMeta(rootB), tuf.RoleTargets: tuf.NewFileMeta(targetsB)},
		}
		if files[tuf.RoleSnapshot], err = tuf.Sign(&snap, tuf.Signer{Key: snapKey, Signer: opts.Snapshot}); err != nil {
			return err
		}
	}
	for _, role := range []string{tuf.RoleRoot, tuf.RoleTargets, tuf.RoleSnapshot} {
		if b := files[role]; b != nil {
			if err := cache.Put(role, b); err != nil {
				return err
			}
		}
	}
	return nil
}
