package cli

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/printable"
	"github.com/signet-trust/signet/internal/trustdir"
)

// minPassphrase is the shortest passphrase accepted for a new key, as notary.
const minPassphrase = 8

// passphraseEnv names the variable that holds the passphrase of a key with
// the given role: notary's NOTARY_<ROLE>_PASSPHRASE, or docker's
// DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE / …_REPOSITORY_PASSPHRASE.
func passphraseEnv(role string, docker bool) []string {
	if docker {
		if role == "root" {
			return []string{"DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE", "NOTARY_ROOT_PASSPHRASE"}
		}
		return []string{"DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE", notaryEnv(role)}
	}
	env := notaryEnv(role)
	if role == "root" {
		return []string{env, "DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE"}
	}
	return []string{env, "DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE"}
}

func notaryEnv(role string) string {
	switch role {
	case "root":
		return "NOTARY_ROOT_PASSPHRASE"
	case "targets":
		return "NOTARY_TARGETS_PASSPHRASE"
	case "snapshot":
		return "NOTARY_SNAPSHOT_PASSPHRASE"
	}
	return "NOTARY_DELEGATION_PASSPHRASE"
}

// passphrases returns the retriever of the key store: the environment
// first, then a prompt on a terminal; otherwise an error naming the
// variable to set.
func (a *app) passphrases(docker bool) trustdir.Passphrases {
	return func(keyID, role string, create bool, attempt int) ([]byte, error) {
		names := passphraseEnv(role, docker)
		for _, name := range names {
			if v := a.env.Getenv(name); v != "" {
				if attempt > 0 {
					return nil, fmt.Errorf("%w (from %s)", keys.ErrWrongPassphrase, name)
				}
				if create && len(v) < minPassphrase {
					return nil, fmt.Errorf("%s is shorter than %d characters", name, minPassphrase)
				}
				return []byte(v), nil
			}
		}
		short := keyID
		if len(short) > 7 {
			short = short[:7]
		}
		if !a.env.Terminal || a.env.ReadPassword == nil {
			return nil, fmt.Errorf("a passphrase is needed for the %s key %s: set %s", roleLabel(role), short, names[0])
		}
		if attempt >= 3 {
			return nil, fmt.Errorf("%w: too many attempts", keys.ErrWrongPassphrase)
		}
		if !create {
			if attempt > 0 {
				fmt.Fprintln(a.env.Stderr, "Passphrase incorrect. Please retry.")
			}
			fmt.Fprintf(a.env.Stderr, "Enter passphrase for %s key with ID %s: ", printable.Quote(roleLabel(role)), short)
			p, err := a.env.ReadPassword()
			fmt.Fprintln(a.env.Stderr)
			return bytes.TrimRight(p, "\r\n"), err
		}
		for {
			fmt.Fprintf(a.env.Stderr, "Enter passphrase for new %s key with ID %s: ", roleLabel(role), short)
			p1, err := a.env.ReadPassword()
			fmt.Fprintln(a.env.Stderr)
			if err != nil {
				return nil, err
			}
			if len(bytes.TrimSpace(p1)) < minPassphrase {
				fmt.Fprintf(a.env.Stderr, "Passphrase is too short. Please use a passphrase of at least %d characters.\n", minPassphrase)
				continue
			}
			fmt.Fprintf(a.env.Stderr, "Repeat passphrase for new %s key with ID %s: ", roleLabel(role), short)
			p2, err := a.env.ReadPassword()
			fmt.Fprintln(a.env.Stderr)
			if err != nil {
				return nil, err
			}
			if !bytes.Equal(p1, p2) {
				fmt.Fprintln(a.env.Stderr, "Passphrases do not match. Please retry.")
				continue
			}
			return bytes.TrimRight(p1, "\r\n"), nil
		}
	}
}

func roleLabel(role string) string {
	switch {
	case role == "":
		return "unnamed"
	case strings.HasPrefix(role, "targets/"):
		return role
	}
	return role
}
