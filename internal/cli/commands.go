package cli

import "github.com/spf13/cobra"

// commands lists every top-level command of signet, in one place: adding a
// command is adding its constructor here.
func (a *app) commands() []*cobra.Command {
	d := &dockerTrust{a: a} // shared by `trust` and `verify` (--insecure-skip-tls-verify)
	return []*cobra.Command{
		// notary's client (notary_repo.go, notary_keys.go, notary_delegation.go)
		a.initCmd(), a.addCmd(), a.addHashCmd(), a.removeCmd(), a.listCmd(), a.lookupCmd(),
		a.publishCmd(), a.statusCmd(), a.resetCmd(), a.witnessCmd(), a.deleteCmd(),
		a.keyCmd(), a.delegationCmd(),
		// docker trust's (trust*.go)
		d.command(),
		// the deploy gate, which also serves notary's `verify GUN TARGET`
		// (verify.go)
		d.verifyCommand(),
		// expiry of the metadata and root certificates (expiry.go)
		a.expiryCmd(),
		// the audit log's checks from outside (audit.go)
		a.auditCommand(),
		// the signing service (request.go, admin.go)
		a.requestCommand(),
		a.adminCommand(),
		// cosign signatures and attestations in registries (cosign.go)
		(&cosignCmd{a: a}).command(),
		// DCT signatures carried over to cosign's formats (migrate.go)
		(&migrateCmd{a: a}).command(),
		// a repository's history from another Notary server (mirror.go)
		(&mirrorCmd{a: a}).command(),
	}
}
