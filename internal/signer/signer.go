// Package signer is signet-signer's custody service: the one custody core
// (package custody) over the signer's own database, <data-dir>/signer.db,
// a SQLite file kept by store/sqlstore. It has no network code; package
// signerapi serves it over mutual TLS.
//
// Invariants: the database is created 0600 in a 0700 directory; a database
// written by signet-signer of earlier releases (its own schema: aliases,
// keys, token_keys) is taken over by sqlstore's migrations on first open,
// in one transaction, with every key, alias and token record unchanged
// (ADR 0008); everything else is the custody core's.
package signer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/signet-trust/signet/internal/custody"
	"github.com/signet-trust/signet/internal/store/sqlstore"
)

// DBFile is the signer's database under its data directory.
const DBFile = "signer.db"

// Service is the custody core over the signer's database. Close it when
// done.
type Service struct {
	*custody.Core
	st *sqlstore.Store
}

// Open opens (creating if needed) the signer's database in dataDir and the
// custody core over it (see custody.New for opts and what it checks).
func Open(ctx context.Context, dataDir string, opts custody.Options) (*Service, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("signer: data directory: %w", err)
	}
	st, err := sqlstore.Open(ctx, "sqlite:"+filepath.Join(dataDir, DBFile))
	if err != nil {
		return nil, fmt.Errorf("signer: %w", err)
	}
	core, err := custody.New(ctx, st, opts)
	if err != nil {
		return nil, errors.Join(err, st.Close())
	}
	return &Service{Core: core, st: st}, nil
}

// Close closes the database.
func (s *Service) Close() error { return s.st.Close() }
