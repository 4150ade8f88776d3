package signer

import (
	"context"
	"crypto/cipher"
	"errors"
	"fmt"
)

// RekeyReport is what Rekey did.
type RekeyReport struct {
	Rewrapped int     // keys whose data key is now wrapped under the new alias
	Failed    []error // keys left as they were, one error each
}

// rekeyBatch is how many keys Rekey reads at a time.
const rekeyBatch = 100

// Rekey wraps the data key of every key not yet under alias with alias's
// key-encryption key (creating the alias's salt and check value if it is
// new). The private keys themselves are not re-encrypted. Each key changes
// in one statement that applies only if the key was not changed meanwhile,
// so a signer serving from the same database keeps working throughout: it
// signs with keys already in memory, and unseals the others under whichever
// alias they are when it reads them (it needs the new alias's passphrase
// for those). A key that cannot be unwrapped (its alias has no passphrase,
// or it is tampered) is left as it is and reported; the others are done.
func (s *Service) Rekey(ctx context.Context, alias string) (RekeyReport, error) {
	var rep RekeyReport
	if !ValidAlias(alias) {
		return rep, fmt.Errorf("signer: alias %q: use 1 to 64 lowercase letters, digits or underscores", alias)
	}
	to, err := s.kek(ctx, alias, true)
	if err != nil {
		return rep, err
	}
	after := ""
	for {
		recs, err := s.db.keysNotUnder(ctx, alias, after, rekeyBatch)
		if err != nil {
			return rep, err
		}
		if len(recs) == 0 {
			break
		}
		for _, rec := range recs {
			after = rec.id
			done, err := s.rekeyOne(ctx, rec, alias, to)
			if err != nil {
				rep.Failed = append(rep.Failed, err)
				continue
			}
			if done {
				rep.Rewrapped++
			}
		}
	}
	if len(rep.Failed) > 0 {
		return rep, fmt.Errorf("signer: rekey to %q: %d key(s) not rewrapped: %w", alias, len(rep.Failed), errors.Join(rep.Failed...))
	}
	return rep, nil
}

// rekeyOne rewraps one key, retrying if another process changed it between
// the read and the write. done is false if it was already under alias.
func (s *Service) rekeyOne(ctx context.Context, rec keyRecord, alias string, to cipher.AEAD) (done bool, err error) {
	for range 3 {
		if rec.alias == alias {
			return false, nil
		}
		// Unseal fully, not just the data key: a tampered key is reported
		// now rather than carried over under a fresh wrapping.
		if _, err := s.unseal(ctx, rec); err != nil {
			return false, err
		}
		dek, err := s.unwrap(ctx, rec)
		if err != nil {
			return false, err
		}
		wrapped := seal(to, dek, dekAD(alias, rec.id, rec.gun, rec.role))
		ok, err := s.db.rewrap(ctx, rec.id, rec.alias, rec.wrappedDEK, alias, wrapped)
		if err != nil || ok {
			return ok, err
		}
		var found bool
		if rec, found, err = s.db.getKey(ctx, rec.id); err != nil {
			return false, err
		} else if !found {
			return false, nil
		}
	}
	return false, fmt.Errorf("signer: key %s kept changing during rekey", rec.id)
}
