package registry

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/signet-trust/signet/internal/atomicfile"
)

// Credentials are what a registry is given to prove who the user is.
type Credentials struct {
	Username string
	Password string
	// IdentityToken is an OAuth2 refresh token (Docker's "identitytoken"),
	// exchanged at the token realm for an access token.
	IdentityToken string
	// RegistryToken is a bearer token sent as it is.
	RegistryToken string
}

// Empty reports whether there is nothing to send (anonymous access).
func (c Credentials) Empty() bool { return c == Credentials{} }

// Keychain finds the credentials for a registry host[:port]; it returns
// empty Credentials for anonymous access.
type Keychain interface {
	Credentials(ctx context.Context, registry string) (Credentials, error)
}

// Anonymous is the keychain with no credentials.
var Anonymous Keychain = anonymous{}

type anonymous struct{}

func (anonymous) Credentials(context.Context, string) (Credentials, error) {
	return Credentials{}, nil
}

// DockerConfig is the part of Docker's config.json that holds registry
// credentials.
type DockerConfig struct {
	Auths map[string]struct {
		Auth          string `json:"auth"`
		Username      string `json:"username"`
		Password      string `json:"password"`
		IdentityToken string `json:"identitytoken"`
		RegistryToken string `json:"registrytoken"`
	} `json:"auths"`
	CredsStore  string            `json:"credsStore"`
	CredHelpers map[string]string `json:"credHelpers"`

	// helperEnv is the environment credential helpers run with (nil: the
	// process's).
	helperEnv []string
}

// MaxConfigSize bounds the Docker configuration file read (Docker's own
// are a few kilobytes; a link to /dev/zero must not exhaust memory).
const MaxConfigSize = 4 << 20

// LoadDockerConfig reads dir/config.json (dir is $DOCKER_CONFIG, default
// ~/.docker). A missing file is an empty configuration. helperEnv is the
// environment credential helpers run with (nil for the process's own).
func LoadDockerConfig(dir string, helperEnv []string) (*DockerConfig, error) {
	cfg := &DockerConfig{helperEnv: helperEnv}
	b, err := atomicfile.ReadFile(filepath.Join(dir, "config.json"), MaxConfigSize)
	if errors.Is(err, os.ErrNotExist) {
		return cfg, nil
	}
	if err != nil {
		return nil, fmt.Errorf("registry: docker config: %w", err)
	}
	if err := json.Unmarshal(b, cfg); err != nil {
		return nil, fmt.Errorf("registry: docker config %s: %w", filepath.Join(dir, "config.json"), err)
	}
	return cfg, nil
}

// dockerHubKey is the key Docker files Docker Hub's credentials under.
const dockerHubKey = "https://index.docker.io/v1/"

// configKey normalises a config.json auths key ("https://host/v1/",
// "host:port", "http://host") to host[:port].
func configKey(k string) string {
	k = strings.TrimPrefix(strings.TrimPrefix(k, "https://"), "http://")
	k, _, _ = strings.Cut(k, "/")
	return k
}

// Credentials implements Keychain as the Docker CLI does: a credential
// helper for the registry (credHelpers), else the credential store
// (credsStore), else the inline auths entry.
func (c *DockerConfig) Credentials(ctx context.Context, registry string) (Credentials, error) {
	key := registry
	if registry == hubIndex || registry == hubGUN {
		key = dockerHubKey
	}
	if h := c.CredHelpers[registry]; h != "" {
		return c.helper(ctx, h, key)
	}
	for k, a := range c.Auths {
		if k != key && configKey(k) != configKey(key) {
			continue
		}
		cred := Credentials{Username: a.Username, Password: a.Password, IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken}
		if a.Auth != "" {
			raw, err := base64.StdEncoding.DecodeString(a.Auth)
			if err != nil {
				return Credentials{}, fmt.Errorf("registry: docker config: the auth of %s is not base64: %w", k, err)
			}
			user, pass, ok := strings.Cut(string(raw), ":")
			if !ok {
				return Credentials{}, fmt.Errorf("registry: docker config: the auth of %s is not user:password", k)
			}
			cred.Username, cred.Password = user, pass
		}
		if !cred.Empty() || c.CredsStore == "" {
			return cred, nil
		}
	}
	if c.CredsStore != "" {
		return c.helper(ctx, c.CredsStore, key)
	}
	return Credentials{}, nil
}

// helperName is what a credential helper's name may be: the suffix of a
// program name found on PATH, never a path (a name with "/" would run a
// program of config.json's choosing from anywhere on disk).
var helperName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// helper runs docker-credential-<name> get, as the Docker CLI does.
func (c *DockerConfig) helper(ctx context.Context, helper, server string) (Credentials, error) {
	if !helperName.MatchString(helper) {
		return Credentials{}, fmt.Errorf("registry: docker config: credential helper %q is not a helper name (letters, digits, \".\", \"_\", \"-\"; no path)", helper)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	prog := "docker-credential-" + helper
	cmd := exec.CommandContext(ctx, prog, "get")
	cmd.Env = c.helperEnv
	cmd.Stdin = strings.NewReader(server)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(out.String() + errOut.String())
		if strings.Contains(msg, "credentials not found") {
			return Credentials{}, nil
		}
		return Credentials{}, fmt.Errorf("registry: credential helper %s for %s: %w: %s", prog, server, err, msg)
	}
	var resp struct {
		Username string
		Secret   string
	}
	if err := json.Unmarshal(out.Bytes(), &resp); err != nil {
		return Credentials{}, fmt.Errorf("registry: credential helper %s: %w", prog, err)
	}
	if resp.Username == "<token>" {
		return Credentials{IdentityToken: resp.Secret}, nil
	}
	return Credentials{Username: resp.Username, Password: resp.Secret}, nil
}
