package cli

import (
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// globalUse says how one command tree reads signet's global flags: for
// each flag that applies there, its help text (with the defaults of that
// tree). Flags not listed do not apply and are hidden from the tree's
// help. A tree without an entry in globalUses reads every global flag as
// notary does (the notary commands, expiry, audit).
type globalUse map[string]string

// dockerGlobals are the global flags of the docker trust commands and of
// signet verify: no notary defaults there, the Docker configuration's.
var dockerGlobals = globalUse{
	"server":     "URL of the trust server (https; default DOCKER_CONTENT_TRUST_SERVER, else https://notary.docker.io for Docker Hub, else https://<registry host:port>)",
	"trustDir":   "directory of keys and trust metadata (default $DOCKER_CONFIG/trust, ~/.docker/trust)",
	"tlscacert":  "CA certificate file the trust server's certificate must chain to (default the *.crt files in $DOCKER_CONFIG/tls/<server host:port>/)",
	"tlscert":    "TLS client certificate file for the trust server (default $DOCKER_CONFIG/tls/<server host:port>/*.cert)",
	"tlskey":     "TLS client key file for the trust server (default $DOCKER_CONFIG/tls/<server host:port>/*.key)",
	"configFile": "notary configuration file whose trust_pinning (certs, ca, disable_tofu) decides the first root of a repository (default none: trust on first use)",
}

// globalUses lists the command trees (by top-level command name) that read
// the global flags their own way; a new command tree adds its line here.
var globalUses = map[string]globalUse{
	"trust":  dockerGlobals,
	"verify": with(dockerGlobals, "output", "output format: table (the digest) or json"),
	// cosign talks to registries only (credentials from $DOCKER_CONFIG).
	"cosign": {"output": "output format: table or json"},
}

func with(u globalUse, name, usage string) globalUse {
	out := globalUse{name: usage}
	for k, v := range u {
		out[k] = v
	}
	return out
}

// topLevel returns the top-level command c belongs to (nil for the root).
func topLevel(c *cobra.Command) *cobra.Command {
	for c.HasParent() && c.Parent().HasParent() {
		c = c.Parent()
	}
	if !c.HasParent() {
		return nil
	}
	return c
}

// globalsFor shows c's help with the global flags as c's tree reads them:
// those that do not apply hidden, the others with the tree's help text.
// Flags are restored afterwards, so the change is for this help only.
func globalsFor(c *cobra.Command, show func()) {
	top := topLevel(c)
	if top == nil {
		show()
		return
	}
	use, ok := globalUses[top.Name()]
	if !ok {
		show()
		return
	}
	type saved struct {
		hidden bool
		usage  string
	}
	restore := map[*pflag.Flag]saved{}
	c.Root().PersistentFlags().VisitAll(func(f *pflag.Flag) {
		restore[f] = saved{f.Hidden, f.Usage}
		if u, ok := use[f.Name]; ok {
			f.Usage = u
		} else {
			f.Hidden = true
		}
	})
	defer func() {
		for f, s := range restore {
			f.Hidden, f.Usage = s.hidden, s.usage
		}
	}()
	show()
}
