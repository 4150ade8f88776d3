package custody

import (
	"context"
	"errors"
	"time"

	"github.com/signet-trust/signet/internal/store"
)

// ServerAlias is the passphrase alias of signet-server's embedded custodian:
// its one passphrase (SIGNET_KEY_PASSPHRASE) is this alias's.
const ServerAlias = "default"

// Open opens signet-server's embedded custodian over st: a Core whose
// default (and only) alias is ServerAlias, opened with passphrase, making
// new keys of algorithm. Keys sealed by earlier releases are migrated (see
// New).
func Open(ctx context.Context, st Storage, passphrase []byte, algorithm string, now func() time.Time) (*Core, error) {
	if len(passphrase) == 0 {
		return nil, errors.New("custody: empty passphrase")
	}
	return New(ctx, st, ServerOptions(passphrase, algorithm, now))
}

// ServerOptions are the Options of signet-server's embedded custodian (see
// Open), without a logger.
func ServerOptions(passphrase []byte, algorithm string, now func() time.Time) Options {
	return Options{
		DefaultAlias: ServerAlias,
		Passphrase: func(alias string) []byte {
			if alias == ServerAlias {
				return passphrase
			}
			return nil
		},
		Algorithm: algorithm,
		Now:       now,
	}
}

// Initialized reports whether st already has the server's key-encryption
// key (and so needs the passphrase it was made with): ServerAlias, or the
// settings of an earlier release.
func Initialized(ctx context.Context, st Storage) (bool, error) {
	_, err := st.GetAlias(ctx, ServerAlias)
	if err == nil || !errors.Is(err, store.ErrNotFound) {
		return err == nil, err
	}
	_, err = st.LegacyKEK(ctx)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}
