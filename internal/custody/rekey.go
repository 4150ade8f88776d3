package custody

import (
	"context"
	"crypto/cipher"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"

	"github.com/signet-trust/signet/internal/store"
)

// RekeyReport is what Rekey did.
type RekeyReport struct {
	Rewrapped int     // keys whose data key is now wrapped under the new alias
	Failed    []error // keys left as they were, one error each
}

// batch is how many records Rekey and the migration read at a time.
const batch = 100

// Rekey wraps the data key of every software key not yet under alias with
// alias's key-encryption key (creating the alias's salt and check value if
// it is new). The private keys themselves are not re-encrypted. Each key
// changes in one compare-and-swap, so processes serving from the same store
// keep working throughout: they sign with keys already in memory, and
// unseal the others under whichever alias they are when they read them
// (they need the new alias's passphrase for those). A key that cannot be
// unwrapped (its alias has no passphrase, or it is tampered) is left as it
// is and reported; the others are done.
func (c *Core) Rekey(ctx context.Context, alias string) (RekeyReport, error) {
	var rep RekeyReport
	if !ValidAlias(alias) {
		return rep, fmt.Errorf("custody: alias %q: use 1 to 64 lowercase letters, digits or underscores", alias)
	}
	to, err := c.kek(ctx, alias, true)
	if err != nil {
		return rep, err
	}
	err = c.walkSealed(ctx, func(rec Record) error {
		if rec.Seal.Alias == alias {
			return nil
		}
		done, err := c.reseal(ctx, rec, func(ctx context.Context, rec Record) (Record, bool, error) {
			if rec.Seal.Alias == alias {
				return rec, false, nil
			}
			if rec.Seal.Format == FormatLegacy {
				return rec, false, fmt.Errorf("custody: key %s is sealed in the format of an earlier release; open the store with the passphrase of alias %q to migrate it first", rec.ID, c.defaultAlias)
			}
			return c.rewrap(ctx, rec, alias, to)
		})
		switch {
		case err != nil:
			rep.Failed = append(rep.Failed, err)
		case done:
			rep.Rewrapped++
		}
		return nil
	})
	if err != nil {
		return rep, err
	}
	if len(rep.Failed) > 0 {
		return rep, fmt.Errorf("custody: rekey to %q: %d key(s) not rewrapped: %w", alias, len(rep.Failed), errors.Join(rep.Failed...))
	}
	return rep, nil
}

// rewrap returns rec with its data key wrapped under alias (key to).
func (c *Core) rewrap(ctx context.Context, rec Record, alias string, to cipher.AEAD) (Record, bool, error) {
	// Unseal fully, not just the data key: a tampered key is reported now
	// rather than carried over under a fresh wrapping.
	if _, _, err := c.unseal(ctx, rec); err != nil {
		return rec, false, err
	}
	dek, err := c.unwrap(ctx, rec)
	if err != nil {
		return rec, false, err
	}
	next := rec
	next.Seal.Alias = alias
	next.Seal.WrappedDEK = seal(to, dek, dekAD(rec.Seal.Format, alias, rec))
	return next, true, nil
}

// walkSealed calls f with every software-key record, in ID order.
func (c *Core) walkSealed(ctx context.Context, f func(Record) error) error {
	after := ""
	for {
		recs, err := c.st.SealedKeys(ctx, after, batch)
		if err != nil {
			return fmt.Errorf("custody: list keys: %w", err)
		}
		if len(recs) == 0 {
			return nil
		}
		for _, rec := range recs {
			after = rec.ID
			if err := f(rec); err != nil {
				return err
			}
		}
	}
}

// reseal applies change to rec and stores the result with a compare and
// swap, reading the record again and retrying if another process changed it
// meanwhile. change reports false when there is nothing to do; done reports
// whether this call changed the record.
func (c *Core) reseal(ctx context.Context, rec Record, change func(context.Context, Record) (Record, bool, error)) (done bool, err error) {
	for range 3 {
		next, ok, err := change(ctx, rec)
		if err != nil || !ok {
			return false, err
		}
		swapped, err := c.st.Reseal(ctx, rec, next)
		if err != nil {
			return false, fmt.Errorf("custody: reseal key %s: %w", rec.ID, err)
		}
		if swapped {
			c.forget(rec.ID)
			return true, nil
		}
		if rec, err = c.st.GetKey(ctx, rec.ID); errors.Is(err, store.ErrNotFound) {
			return false, nil
		} else if err != nil {
			return false, fmt.Errorf("custody: read key %s: %w", rec.ID, err)
		}
	}
	return false, fmt.Errorf("custody: key %s kept changing", rec.ID)
}

// openLegacy handles the records of the embedded custodian of releases up
// to de57e35: all private keys sealed under one key-encryption key from
// SIGNET_KEY_PASSPHRASE, whose salt and check value the store keeps apart
// (LegacyKEK). That passphrase is the default alias's now. If the store has
// such settings and no default alias yet, the alias is created with the
// same salt and cost, so its key-encryption key is the same (and a wrong
// passphrase is refused as it was). Then each record still in that format
// is re-sealed in the current one under the default alias, with purpose and
// owner set as the server's online keys. A record that cannot be migrated
// is logged and left as it is: it still signs through the legacy key (or,
// tampered, fails on use as it would have), and the next start tries again.
func (c *Core) openLegacy(ctx context.Context, legacyKeys int) error {
	settings, err := c.st.LegacyKEK(ctx)
	if errors.Is(err, store.ErrNotFound) {
		if legacyKeys > 0 {
			c.log.ErrorContext(ctx, "keys in the format of an earlier release, without its key-encryption settings: they cannot sign", slog.Int("keys", legacyKeys))
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("custody: read legacy key-encryption settings: %w", err)
	}
	a, err := c.st.GetAlias(ctx, c.defaultAlias)
	aliasExists := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("custody: read alias %s: %w", c.defaultAlias, err)
	}
	if legacyKeys == 0 && aliasExists {
		return nil
	}
	pass := c.passphrase(c.defaultAlias)
	if len(pass) == 0 {
		return fmt.Errorf("%w %q: keys sealed by an earlier release are opened with it", ErrNoPassphrase, c.defaultAlias)
	}
	if len(settings) <= saltSize {
		return fmt.Errorf("%w: legacy key-encryption settings are truncated", ErrTampered)
	}
	salt, check := settings[:saltSize], settings[saltSize:]
	legacy, err := deriveKEK(pass, salt, legacyKDF)
	if err != nil {
		return err
	}
	if plain, err := open(legacy, check, []byte(legacyCheckAD)); err != nil || string(plain) != legacyCheckPlain {
		return fmt.Errorf("%w (alias %q, the key passphrase of an earlier release)", ErrWrongPassphrase, c.defaultAlias)
	}
	if !aliasExists {
		if a, err = c.addAlias(ctx, c.defaultAlias, legacyKDF, salt, legacy, pass); err != nil {
			return err
		}
	}
	if a.KDF == legacyKDF && string(a.Salt) == string(salt) {
		// The alias took the release's salt: its key is this one.
		if err := checkAlias(legacy, a); err != nil {
			return err
		}
		c.kekMu.Lock()
		c.keks[c.defaultAlias] = legacy
		c.kekMu.Unlock()
	}
	if legacyKeys == 0 {
		return nil
	}
	c.kekMu.Lock()
	c.legacy = legacy
	c.kekMu.Unlock()
	migrated, left := 0, 0
	err = c.walkSealed(ctx, func(rec Record) error {
		if rec.Seal.Format != FormatLegacy {
			return nil
		}
		done, err := c.reseal(ctx, rec, c.migrate)
		switch {
		case err != nil:
			left++
			c.log.ErrorContext(ctx, "key of an earlier release not migrated; the next start tries again", slog.String("key", rec.ID), slog.String("error", err.Error()))
		case done:
			migrated++
		}
		return nil
	})
	if err != nil {
		return err
	}
	c.log.InfoContext(ctx, "keys of an earlier release re-sealed in the current format",
		slog.Int("migrated", migrated), slog.Int("left", left), slog.String("alias", c.defaultAlias))
	if left == 0 {
		c.kekMu.Lock()
		c.legacy = nil
		c.kekMu.Unlock()
	}
	return nil
}

// migrate returns rec re-sealed in the current format, if it is still in
// the legacy one.
func (c *Core) migrate(ctx context.Context, rec Record) (Record, bool, error) {
	if rec.Seal.Format != FormatLegacy {
		return rec, false, nil
	}
	signer, _, err := c.unseal(ctx, rec)
	if err != nil {
		return rec, false, err
	}
	purpose, ok := PurposeForRole(rec.Role)
	if !ok {
		return rec, false, fmt.Errorf("%w: key %s has role %q, which has no online key", ErrTampered, rec.ID, rec.Role)
	}
	next := rec
	next.Purpose, next.Owner = purpose, OwnerServer
	der, err := x509.MarshalPKCS8PrivateKey(signer)
	if err != nil {
		return rec, false, fmt.Errorf("custody: key %s: %w", rec.ID, err)
	}
	if next.Seal, err = c.sealNew(ctx, next, der); err != nil {
		return rec, false, err
	}
	return next, true, nil
}
