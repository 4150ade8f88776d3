// Package signercmd is signet-signer's command line: it reads flags and the
// optional YAML config, opens the signer's database under the data
// directory, checks the passphrases of its aliases, and serves the signer
// API over mutual TLS until its context ends, then shuts down gracefully.
// `signet-signer rekey --to ALIAS` re-wraps every key's data key under
// another passphrase alias, beside a running signer.
//
// With --pkcs11 URI (a signet-signer built with -tags pkcs11), new keys are
// created inside that PKCS#11 token and never leave it.
//
// Invariants: there is no plain-HTTP or TLS-without-client-certificate
// mode; passphrases and the token PIN come only from the environment
// (SIGNET_SIGNER_PASSPHRASE_<ALIAS>, SIGNET_SIGNER_PKCS11_PIN), never from
// flags, URIs or files named on the command line.
package signercmd

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/signet-trust/signet/internal/custody"
	"github.com/signet-trust/signet/internal/daemon"
	"github.com/signet-trust/signet/internal/keys/pkcs11"
	"github.com/signet-trust/signet/internal/signer"
	"github.com/signet-trust/signet/internal/signer/signerapi"
)

// Config is everything signet-signer can be told, by flag or YAML file.
type Config struct {
	Listen   string `yaml:"listen"`
	DataDir  string `yaml:"data_dir"`
	TLSCert  string `yaml:"tls_cert"`
	TLSKey   string `yaml:"tls_key"`
	ClientCA string `yaml:"client_ca"`
	// DefaultAlias names the passphrase alias new keys are wrapped under;
	// its passphrase is SIGNET_SIGNER_PASSPHRASE_<DEFAULT_ALIAS upper-cased>.
	DefaultAlias string `yaml:"default_alias"`
	// PKCS11 is the RFC 7512 URI of a token new keys are created in, e.g.
	// pkcs11:token=signet-signer?module-path=/usr/lib/softhsm/libsofthsm2.so;
	// its PIN is SIGNET_SIGNER_PKCS11_PIN.
	PKCS11    string `yaml:"pkcs11"`
	LogLevel  string `yaml:"log_level"`
	LogFormat string `yaml:"log_format"`
}

func defaults() Config {
	return Config{
		Listen: "127.0.0.1:4444", DataDir: "./signet-signer-data", DefaultAlias: "default",
		LogLevel: "info", LogFormat: "json",
	}
}

// PassphraseEnv is the environment variable holding an alias's passphrase.
func PassphraseEnv(alias string) string {
	return "SIGNET_SIGNER_PASSPHRASE_" + strings.ToUpper(alias)
}

// PINEnv is the environment variable holding the PIN of the --pkcs11 token.
const PINEnv = "SIGNET_SIGNER_PKCS11_PIN"

// notBuiltPKCS11 explains --pkcs11 in a build without PKCS#11.
const notBuiltPKCS11 = "--pkcs11: this signet-signer was built without PKCS#11 support; " +
	"build it with -tags pkcs11 (go build -tags pkcs11 ./cmd/signet-signer; needs cgo and the token's PKCS#11 library)"

const usage = `Usage:
  signet-signer --tls-cert FILE --tls-key FILE --client-ca FILE [flags]
  signet-signer rekey --to ALIAS [--data-dir DIR] [--config FILE]
  signet-signer version

Holds signet-server's online keys and signs with them, over mutual TLS only:
a client without a certificate from --client-ca is refused. Keys are kept
encrypted in <data-dir>/signer.db, each under its own data key wrapped with
the key-encryption key of a named passphrase alias. The passphrase of alias
NAME is read from SIGNET_SIGNER_PASSPHRASE_<NAME upper-cased>; new keys use
--default-alias, and keys under other aliases stay usable while their
passphrases are set.

With --pkcs11 URI (a build with -tags pkcs11), new keys are ECDSA keys
created inside that PKCS#11 token, not extractable; the database records
only their labels and public keys. The token's PIN is read from
SIGNET_SIGNER_PKCS11_PIN. Example:
  --pkcs11 'pkcs11:token=signet-signer?module-path=/usr/lib/softhsm/libsofthsm2.so'

rekey re-wraps every key under ALIAS (whose passphrase must be set, as well
as those of the aliases the keys are under now). It can run while the signer
serves from the same data directory; give the serving signer the new
alias's passphrase too, so that keys it has not yet loaded stay usable.

The certificates: docs/pki.md makes the CA, the signer's server certificate
and signet-server's client certificate with openssl.`

// command is signet-signer's command line, for its help and errors.
var command = daemon.Command{
	Program: "signet-signer",
	Usage:   usage,
	Examples: `  export SIGNET_SIGNER_PASSPHRASE_DEFAULT="$(cat /run/secrets/signer-passphrase)"
  signet-signer --listen 127.0.0.1:4444 --data-dir /var/lib/signet-signer \
      --tls-cert signer.crt --tls-key signer.key --client-ca ca.crt
  signet-signer --config /etc/signet/signer.yaml
  SIGNET_SIGNER_PASSPHRASE_Q3=… signet-signer rekey --to q3 --config /etc/signet/signer.yaml`,
}

// rekeyCommand is `signet-signer rekey`'s.
var rekeyCommand = daemon.Command{
	Program: "signet-signer rekey",
	Usage: `Usage: signet-signer rekey --to ALIAS [--data-dir DIR] [--config FILE]

Re-wraps every key's data key under the passphrase alias ALIAS, beside a
running signer. SIGNET_SIGNER_PASSPHRASE_<ALIAS> must be set, as well as the
passphrases of the aliases the keys are under now.`,
	Examples: `  SIGNET_SIGNER_PASSPHRASE_Q3=… SIGNET_SIGNER_PASSPHRASE_DEFAULT=… signet-signer rekey --to q3 --data-dir /var/lib/signet-signer`,
}

// Main runs signet-signer with args (without the program name) and returns
// the exit code.
func Main(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "rekey":
			return rekeyMain(ctx, args[1:], getenv, stdout, stderr)
		case "version":
			daemon.Version(stdout, command.Program)
			return 0
		}
	}
	cfg, err := parseConfig(args, stdout)
	if errors.Is(err, flag.ErrHelp) || errors.Is(err, daemon.ErrVersion) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "signet-signer: %v\n", err)
		return 2
	}
	if err := Run(ctx, cfg, getenv, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "signet-signer: %v\n", err)
		return 1
	}
	return 0
}

// flagSet registers the flags shared by the server and rekey on fs, writing
// into flagCfg; configFile receives --config.
func flagSet(name string, serve bool, flagCfg *Config, configFile *string) *flag.FlagSet {
	d := defaults()
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.StringVar(&flagCfg.DataDir, "data-dir", d.DataDir, "`directory` of the signer's database")
	fs.StringVar(configFile, "config", "", "YAML `file` with the same settings (flags win)")
	fs.StringVar(&flagCfg.LogLevel, "log-level", d.LogLevel, "debug, info, warn or error")
	if serve {
		fs.StringVar(&flagCfg.Listen, "listen", d.Listen, "`address` to listen on (host:port)")
		fs.StringVar(&flagCfg.TLSCert, "tls-cert", "", "the signer's TLS certificate `file` (PEM)")
		fs.StringVar(&flagCfg.TLSKey, "tls-key", "", "the signer's TLS private key `file` (PEM)")
		fs.StringVar(&flagCfg.ClientCA, "client-ca", "", "CA certificate `file` (PEM) that client certificates must chain to")
		fs.StringVar(&flagCfg.DefaultAlias, "default-alias", d.DefaultAlias, "passphrase `alias` for new keys")
		fs.StringVar(&flagCfg.PKCS11, "pkcs11", "", "RFC 7512 `URI` of a PKCS#11 token to create new keys in (PIN from "+PINEnv+"; needs a build with -tags pkcs11)")
	}
	return fs
}

// parse parses args for c, printing --help and --version on stdout.
func parse(c daemon.Command, fs *flag.FlagSet, args []string, stdout io.Writer) error {
	err := c.Parse(fs, args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		c.Help(stdout, fs)
	case errors.Is(err, daemon.ErrVersion):
		daemon.Version(stdout, "signet-signer")
	}
	return err
}

// load applies the YAML file, then the flags set on the command line.
func load(fs *flag.FlagSet, flagCfg Config, configFile string) (Config, error) {
	cfg := defaults()
	if configFile != "" {
		raw, err := os.ReadFile(configFile)
		if err != nil {
			return cfg, fmt.Errorf("config: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
			return cfg, fmt.Errorf("config %s: %w", configFile, err)
		}
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "listen":
			cfg.Listen = flagCfg.Listen
		case "data-dir":
			cfg.DataDir = flagCfg.DataDir
		case "tls-cert":
			cfg.TLSCert = flagCfg.TLSCert
		case "tls-key":
			cfg.TLSKey = flagCfg.TLSKey
		case "client-ca":
			cfg.ClientCA = flagCfg.ClientCA
		case "default-alias":
			cfg.DefaultAlias = flagCfg.DefaultAlias
		case "pkcs11":
			cfg.PKCS11 = flagCfg.PKCS11
		case "log-level":
			cfg.LogLevel = flagCfg.LogLevel
		}
	})
	return cfg, nil
}

func parseConfig(args []string, stdout io.Writer) (Config, error) {
	var flagCfg Config
	var configFile string
	fs := flagSet("signet-signer", true, &flagCfg, &configFile)
	if err := parse(command, fs, args, stdout); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q (see signet-signer --help)", fs.Arg(0))
	}
	cfg, err := load(fs, flagCfg, configFile)
	if err != nil {
		return cfg, err
	}
	return cfg, cfg.validate()
}

func (c Config) validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("--listen %q: %v", c.Listen, err))
	}
	if c.TLSCert == "" || c.TLSKey == "" || c.ClientCA == "" {
		errs = append(errs, errors.New("--tls-cert, --tls-key and --client-ca are required: the signer serves over mutual TLS only"))
	}
	if !custody.ValidAlias(c.DefaultAlias) {
		errs = append(errs, fmt.Errorf("--default-alias %q: use 1 to 64 lowercase letters, digits or underscores", c.DefaultAlias))
	}
	if c.PKCS11 != "" {
		if _, err := c.tokenURI(); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, c.validateLog()...)
	return errors.Join(errs...)
}

// tokenURI parses --pkcs11: a token (token= or serial=) and its module,
// no key, no PIN.
func (c Config) tokenURI() (pkcs11.URI, error) {
	if !pkcs11Built {
		return pkcs11.URI{}, errors.New(notBuiltPKCS11)
	}
	u, err := pkcs11.ParseURI(c.PKCS11)
	switch {
	case err != nil:
		return u, fmt.Errorf("--pkcs11: %w", err)
	case u.ModulePath == "":
		return u, errors.New("--pkcs11: the URI needs ?module-path= (the token's PKCS#11 library, e.g. /usr/lib/softhsm/libsofthsm2.so)")
	case !filepath.IsAbs(u.ModulePath):
		return u, fmt.Errorf("--pkcs11: module-path=%s is not an absolute path: name the PKCS#11 library by its full path, e.g. /usr/lib/softhsm/libsofthsm2.so", u.ModulePath)
	case u.Token == "" && u.Serial == "":
		return u, errors.New("--pkcs11: the URI needs token= (the token's label) or serial=")
	case u.Object != "" || len(u.ID) > 0:
		return u, errors.New("--pkcs11: the URI names the token new keys go in, not a key: drop object= and id=")
	case u.PINSource != "":
		return u, errors.New("--pkcs11: pin-source is not used by signet-signer: set " + PINEnv)
	}
	return u, nil
}

func (c Config) validateLog() []error {
	var errs []error
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.LogLevel)); err != nil {
		errs = append(errs, fmt.Errorf("--log-level %q: %v", c.LogLevel, err))
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		errs = append(errs, fmt.Errorf("log_format %q: use json or text", c.LogFormat))
	}
	return errs
}

func (c Config) logger(stderr io.Writer) (*slog.Logger, slog.Handler) {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.LogLevel))
	h := daemon.LogHandler(stderr, lvl, c.LogFormat)
	return slog.New(h), h
}

// openService opens the signer's database and the custody core over it,
// with token (nil for none) for new keys.
func openService(ctx context.Context, cfg Config, defaultAlias string, token custody.Token, getenv func(string) string, log *slog.Logger) (*signer.Service, error) {
	svc, err := signer.Open(ctx, cfg.DataDir, custody.Options{
		DefaultAlias: defaultAlias,
		Passphrase: func(alias string) []byte {
			if p := getenv(PassphraseEnv(alias)); p != "" {
				return []byte(p)
			}
			return nil
		},
		Logger: log,
		Now:    time.Now,
		Token:  token,
	})
	if err != nil {
		if errors.Is(err, custody.ErrNoPassphrase) {
			return nil, fmt.Errorf("%w: set %s", err, PassphraseEnv(defaultAlias))
		}
		return nil, err
	}
	return svc, nil
}

// Run serves until ctx ends, then shuts down gracefully: it stops accepting
// connections, lets requests in flight finish, and closes the database.
func Run(ctx context.Context, cfg Config, getenv func(string) string, stdout, stderr io.Writer) error {
	log, handler := cfg.logger(stderr)
	tlsCfg, err := signerapi.ServerTLSConfig(cfg.TLSCert, cfg.TLSKey, cfg.ClientCA)
	if err != nil {
		return err
	}
	// Startup runs to completion even if a signal arrives meanwhile.
	setup := context.WithoutCancel(ctx)
	var token custody.Token
	newKeys := fmt.Sprintf("new keys under alias %q", cfg.DefaultAlias)
	if cfg.PKCS11 != "" {
		uri, err := cfg.tokenURI()
		if err != nil {
			return err
		}
		pin := getenv(PINEnv)
		if pin == "" {
			return fmt.Errorf("--pkcs11: set %s to the token's user PIN", PINEnv)
		}
		t, closer, err := openToken(setup, uri, pin)
		if err != nil {
			return fmt.Errorf("--pkcs11: %w", err)
		}
		defer closer.Close()
		token = t
		newKeys = "new keys in PKCS#11 " + t.Name()
	}
	svc, err := openService(setup, cfg, cfg.DefaultAlias, token, getenv, log)
	if err != nil {
		return err
	}
	defer svc.Close()

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	hs := &http.Server{
		Handler:           signerapi.Handler(svc, log),
		TLSConfig:         tlsCfg,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		WriteTimeout:      time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(handler, slog.LevelDebug),
	}
	dataDir, _ := filepath.Abs(cfg.DataDir)
	fmt.Fprintf(stdout, "signet-signer: listening on https://%s (mutual TLS; data in %s, %s)\n",
		ln.Addr(), dataDir, newKeys)

	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.ServeTLS(ln, "", "") }()
	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	fmt.Fprintln(stdout, "signet-signer: stopped")
	return nil
}

func rekeyMain(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	var flagCfg Config
	var configFile string
	fs := flagSet("signet-signer rekey", false, &flagCfg, &configFile)
	to := fs.String("to", "", "passphrase `alias` to re-wrap every key under")
	if err := parse(rekeyCommand, fs, args, stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) || errors.Is(err, daemon.ErrVersion) {
			return 0
		}
		fmt.Fprintf(stderr, "signet-signer rekey: %v\n", err)
		return 2
	}
	cfg, err := load(fs, flagCfg, configFile)
	if err == nil {
		var errs []error
		if fs.NArg() > 0 {
			errs = append(errs, fmt.Errorf("unexpected argument %q", fs.Arg(0)))
		}
		if !custody.ValidAlias(*to) {
			errs = append(errs, fmt.Errorf("--to %q: name an alias of 1 to 64 lowercase letters, digits or underscores", *to))
		}
		err = errors.Join(append(errs, cfg.validateLog()...)...)
	}
	if err != nil {
		fmt.Fprintf(stderr, "signet-signer rekey: %v\n", err)
		return 2
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, signer.DBFile)); err != nil {
		fmt.Fprintf(stderr, "signet-signer rekey: no signer database in %s: %v\n", cfg.DataDir, err)
		return 1
	}
	log, _ := cfg.logger(stderr)
	svc, err := openService(context.WithoutCancel(ctx), cfg, *to, nil, getenv, log)
	if err != nil {
		fmt.Fprintf(stderr, "signet-signer rekey: %v\n", err)
		return 1
	}
	defer svc.Close()
	rep, err := svc.Rekey(ctx, *to)
	fmt.Fprintf(stdout, "signet-signer rekey: %d key(s) re-wrapped under alias %q\n", rep.Rewrapped, *to)
	if err != nil {
		for _, e := range rep.Failed {
			fmt.Fprintf(stderr, "signet-signer rekey: %v\n", e)
		}
		if len(rep.Failed) == 0 {
			fmt.Fprintf(stderr, "signet-signer rekey: %v\n", err)
		}
		return 1
	}
	return 0
}
