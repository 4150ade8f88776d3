// Package oidc checks CI OIDC ID tokens against a signing policy's origin
// rule: the token must come from the rule's issuer, be meant for the rule's
// audience, be within its validity window, carry a signature by a key the
// issuer publishes, and hold claims that match every pattern of the rule.
//
// # Origin rules
//
// A Rule names an https issuer, an audience and claim patterns. Examples
// (the claim names are the issuers' own):
//
//	# GitHub Actions, tag releases of one repository from one workflow
//	issuer:   https://token.actions.githubusercontent.com
//	audience: https://signet.example.com
//	claims:
//	  repository:   org/repo
//	  ref:          refs/tags/v*
//	  workflow_ref: org/repo/.github/workflows/release.yml@refs/tags/v*
//	  event_name:   push
//
//	# GitLab CI, protected branches of one project
//	issuer:   https://gitlab.com
//	audience: https://signet.example.com
//	claims:
//	  project_path:    group/project
//	  ref_type:        branch
//	  ref:             main
//	  ref_protected:   "true"
//	  pipeline_source: push
//
// GitHub Actions tokens carry repository, repository_owner, ref (refs/heads/…
// for branches, refs/tags/… for tags), ref_type, sha, workflow_ref,
// job_workflow_ref, event_name, environment and more; GitLab CI tokens carry
// project_path, namespace_path, ref (a bare branch or tag name), ref_type
// (branch or tag), ref_protected, pipeline_source, environment and more. A
// rule must constrain at least one claim: an audience alone is chosen by the
// workflow, so any repository on a shared issuer could present it.
//
// # Patterns
//
// A claim pattern is matched against the whole claim value (a string, or a
// number or boolean in its JSON text, so ref_protected: "true" matches both
// "true" and true). Its syntax:
//
//   - "*" matches any run of characters that does not cross '/';
//   - "**" matches any run of characters, crossing '/';
//   - "?" matches one character other than '/';
//   - "\c" matches the character c itself (\*, \?, \\).
//
// Every other character matches itself; a pattern without wildcards is an
// exact match. So refs/tags/v* matches refs/tags/v1.2.0 but not
// refs/tags/v1/x or refs/heads/v1, and org/* matches every repository of
// org.
//
// # Errors
//
// Verify separates three outcomes so callers can answer correctly:
// a token that is not a valid ID token of the issuer for the audience
// (ErrInvalidToken, a *TokenError: 401), a valid token whose claims do not
// match the rule (ErrClaimMismatch, a *MismatchError: 403), and an issuer
// whose discovery document or keys cannot be fetched (ErrIssuerUnavailable,
// an *UnavailableError: 503 with Retry-After). Every message is a plain
// sentence naming the check, claim or rule that failed.
//
// # Keys
//
// Discovery (issuer + "/.well-known/openid-configuration", whose issuer must
// equal the rule's) and the JWKS are fetched over HTTPS only, with the system
// roots unless the caller gives an *http.Client (Go's system roots honour
// SSL_CERT_FILE and SSL_CERT_DIR). Keys are cached per issuer for KeyTTL; a
// token naming an unknown kid refetches them, at most once per MinRefresh
// per issuer, so tokens with random kids cannot make the verifier hammer an
// issuer. Only asymmetric algorithms verify (ES256/384/512, RS256/384/512,
// PS256/384/512, EdDSA); "none" and HMAC never do.
package oidc
