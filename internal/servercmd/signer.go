package servercmd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"time"

	"github.com/signet-trust/signet/internal/custody"
	"github.com/signet-trust/signet/internal/server"
	"github.com/signet-trust/signet/internal/signer/signerapi"
	"github.com/signet-trust/signet/internal/store/sqlstore"
)

// RemoteSigner is how signet-server reaches a signet-signer (--signer):
// over mutual TLS with its own client certificate, trusting only SignerCA.
// Its YAML keys sit at the top level, beside `signer`.
type RemoteSigner struct {
	SignerCert string `yaml:"signer_cert"`
	SignerKey  string `yaml:"signer_key"`
	SignerCA   string `yaml:"signer_ca"`
	// SignerTimeout bounds each call to the signer (default 10s).
	SignerTimeout time.Duration `yaml:"signer_timeout"`
}

// signerFlags are the command-line values of RemoteSigner.
type signerFlags struct {
	v RemoteSigner
}

func addSignerFlags(fs *flag.FlagSet) *signerFlags {
	f := &signerFlags{}
	fs.StringVar(&f.v.SignerCert, "signer-cert", "", "client certificate `file` (PEM) presented to the --signer")
	fs.StringVar(&f.v.SignerKey, "signer-key", "", "private key `file` (PEM) of --signer-cert")
	fs.StringVar(&f.v.SignerCA, "signer-ca", "", "CA certificate `file` (PEM) the --signer's certificate must chain to")
	fs.DurationVar(&f.v.SignerTimeout, "signer-timeout", 0, "bound on each call to the --signer (default 10s)")
	return f
}

// apply copies the flags set on the command line into cfg (after the YAML
// file, so flags win).
func (f *signerFlags) apply(fs *flag.FlagSet, cfg *Config) {
	fs.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case "signer-cert":
			cfg.SignerCert = f.v.SignerCert
		case "signer-key":
			cfg.SignerKey = f.v.SignerKey
		case "signer-ca":
			cfg.SignerCA = f.v.SignerCA
		case "signer-timeout":
			cfg.SignerTimeout = f.v.SignerTimeout
		}
	})
}

// validateSigner checks --signer and its TLS settings: a remote signer is
// reached over https with a client certificate, always.
func (c Config) validateSigner() error {
	var errs []error
	if c.Signer == "" {
		if c.SignerCert != "" || c.SignerKey != "" || c.SignerCA != "" {
			errs = append(errs, errors.New("--signer-cert, --signer-key and --signer-ca need --signer"))
		}
		return errors.Join(errs...)
	}
	if u, err := url.Parse(c.Signer); err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		errs = append(errs, fmt.Errorf("--signer %q: want https://HOST:PORT", c.Signer))
	}
	if c.SignerCert == "" || c.SignerKey == "" || c.SignerCA == "" {
		errs = append(errs, errors.New("--signer needs --signer-cert, --signer-key and --signer-ca: the signer accepts only mutual TLS"))
	}
	if c.SignerTimeout < 0 {
		errs = append(errs, fmt.Errorf("--signer-timeout %v: must be positive", c.SignerTimeout))
	}
	return errors.Join(errs...)
}

// openCustodian returns the custodian of the online keys: a client of the
// remote signet-signer with --signer, else the embedded custodian sealed in
// the server's own database.
func openCustodian(ctx context.Context, cfg Config, st *sqlstore.Store, getenv func(string) string, dataDir string, log *slog.Logger) (server.Custodian, error) {
	if cfg.Signer == "" {
		return embeddedCustodian(ctx, cfg, st, getenv, dataDir, log)
	}
	tlsCfg, err := signerapi.ClientTLSConfig(cfg.SignerCert, cfg.SignerKey, cfg.SignerCA)
	if err != nil {
		return nil, fmt.Errorf("--signer: %w", err)
	}
	c, err := signerapi.NewClient(cfg.Signer, tlsCfg, signerapi.ClientOptions{Algorithm: cfg.KeyAlgorithm, Timeout: cfg.SignerTimeout})
	if err != nil {
		return nil, fmt.Errorf("--signer: %w", err)
	}
	// The server starts whether or not the signer answers now: reads need
	// no signer, and writes answer 503 until it is back.
	checkCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := c.Check(checkCtx); err != nil {
		log.Warn("the signer does not answer yet; publishes will fail with 503 until it does", "signer", cfg.Signer, "error", err.Error())
	} else {
		log.Info("online keys are held by a remote signer", "signer", cfg.Signer)
	}
	return c, nil
}

// embeddedCustodian opens the custody core that keeps online keys sealed in
// the server's database, under SIGNET_KEY_PASSPHRASE or a passphrase
// generated into the data directory (the passphrase of its one alias,
// custody.ServerAlias). Keys sealed by earlier releases are migrated as it
// opens (ADR 0008).
func embeddedCustodian(ctx context.Context, cfg Config, st *sqlstore.Store, getenv func(string) string, dataDir string, log *slog.Logger) (*custody.Core, error) {
	sealed, err := custody.Initialized(ctx, st)
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	passphrase, generated, err := keyPassphrase(getenv, dataDir, sealed)
	if err != nil {
		return nil, err
	}
	if generated != "" {
		log.Warn("SIGNET_KEY_PASSPHRASE is not set: online keys are encrypted with a passphrase generated into the data directory, so they are protected only by that file's permissions; set SIGNET_KEY_PASSPHRASE (keeping the same value) for real protection",
			"passphrase_file", generated)
	}
	opts := custody.ServerOptions(passphrase, cfg.KeyAlgorithm, time.Now)
	opts.Logger = log
	cust, err := custody.New(ctx, st, opts)
	if err != nil {
		if errors.Is(err, custody.ErrWrongPassphrase) {
			return nil, fmt.Errorf("%w: SIGNET_KEY_PASSPHRASE (or %s) differs from the one the keys were sealed with", err, filepath.Join(dataDir, passphraseFile))
		}
		return nil, err
	}
	return cust, nil
}

// withSignerCheck adds the reference's "Trust operational" health check
// when the custodian is a remote signer.
func withSignerCheck(checks map[string]func(context.Context) error, cust server.Custodian) map[string]func(context.Context) error {
	if c, ok := cust.(*signerapi.Client); ok {
		checks["Trust operational"] = c.Check
	}
	return checks
}
