package admission

// The policy file: YAML, decoded strictly (unknown keys are errors), every
// value checked at start, every error naming its line.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path"
	"reflect"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/signet-trust/signet/internal/policy"
)

// Mode is what a namespace does with an image that does not verify.
type Mode string

// Modes.
const (
	// ModeEnforce refuses the object, naming the image, the rule and what
	// was missing.
	ModeEnforce Mode = "enforce"
	// ModeWarn admits it with a warning (kubectl prints it) and records it.
	ModeWarn Mode = "warn"
	// ModeAudit admits it silently and records it.
	ModeAudit Mode = "audit"
)

// NoMatch is what happens to an image no rule of its namespace covers.
type NoMatch string

// What happens without a rule.
const (
	NoMatchAdmit NoMatch = "admit"
	NoMatchDeny  NoMatch = "deny"
)

// Limits of the policy file.
const (
	maxPolicyFile   = 4 << 20
	maxNamespaces   = 10000
	maxRules        = 10000
	maxSecretFile   = 64 << 10
	maxKeyFile      = 1 << 20
	maxDecisionTime = 9 * time.Second // the API server waits 10 s at most (timeoutSeconds default)
)

// Config is the policy file as written.
type Config struct {
	TrustServer string                    `yaml:"trust_server"`
	TrustCA     string                    `yaml:"trust_ca"`
	Registries  map[string]RegistryConfig `yaml:"registries"`
	Audit       AuditConfig               `yaml:"audit"`
	// Default is what an image without a matching rule gets, in every
	// namespace that does not say otherwise (default admit).
	Default NoMatch `yaml:"default"`
	// Timeout bounds one decision, trust data and signatures included
	// (default 8s, at most 9s: the API server gives a webhook 10 s).
	Timeout Duration     `yaml:"timeout"`
	Cache   CacheConfig  `yaml:"cache"`
	Spaces  []*Namespace `yaml:"namespaces"`

	line int
}

// RegistryConfig is how to reach one registry host (host[:port]): its
// credentials (for tag → digest and signatures, and for the trust
// server's token service, as docker sends them) and its CA.
type RegistryConfig struct {
	Username     string `yaml:"username"`
	Password     string `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
	CA           string `yaml:"ca"`

	line int
}

// AuditConfig is where decisions and break-glass records go: the audit
// log's append API of a signet-server.
type AuditConfig struct {
	URL       string `yaml:"url"`
	Token     string `yaml:"token"`
	TokenFile string `yaml:"token_file"`
	// CA is the CA of the audit server (default trust_ca).
	CA string `yaml:"ca"`
	// Verified also records admissions whose images all verified (default
	// false: denials, unverified admissions in warn and audit mode,
	// break-glass and revocations are recorded).
	Verified bool `yaml:"verified"`

	line int
}

// CacheConfig bounds the cache of verified trust data and signatures.
type CacheConfig struct {
	// TTL is how long verified trust data of a repository is used before
	// it is fetched again (default 2m).
	TTL Duration `yaml:"ttl"`
	// MaxStale is how old cached trust data may be, when the trust server
	// cannot be reached, before decisions fail (default 15m; 0 disables
	// stale answers: write 0s).
	MaxStale *Duration `yaml:"max_stale"`
	// MaxEntries bounds the repositories (and signature results) kept
	// (default 10000).
	MaxEntries int `yaml:"max_entries"`
	// FailureTTL is how long a failure to fetch trust data is remembered
	// (default 5s), so that a storm of pods does not hammer a server
	// that is down.
	FailureTTL Duration `yaml:"failure_ttl"`

	line int
}

// Namespace is the policy of the namespaces whose name matches Name (a
// glob; "*" is every namespace).
type Namespace struct {
	Name       string  `yaml:"name"`
	Mode       Mode    `yaml:"mode"`
	BreakGlass bool    `yaml:"break_glass"`
	Default    NoMatch `yaml:"default"`
	Rules      []*Rule `yaml:"rules"`

	line int
}

// Rule says how the images whose repository matches Images are verified.
type Rule struct {
	Images string        `yaml:"images"`
	DCT    *DCTConfig    `yaml:"dct"`
	Cosign *CosignConfig `yaml:"cosign"`

	line int
}

// DCTConfig requires Docker Content Trust signatures by named signers.
type DCTConfig struct {
	Signers   []string `yaml:"signers"`
	Threshold int      `yaml:"threshold"`
	// RootKey pins the repositories' root (a PEM certificate or public
	// key); without it the first root the trust server gives is trusted
	// for the life of the process.
	RootKey string `yaml:"root_key"`
	// Releases is what targets/releases counts for: docker (default: only
	// compared, a difference is a warning), must_agree (a difference
	// refuses) or ignore.
	Releases string `yaml:"releases"`

	line int
}

// CosignConfig requires a cosign signature by one of the keys.
type CosignConfig struct {
	Keys []string `yaml:"keys"`

	line int
}

// Duration is a time.Duration written as Go writes it ("90s", "5m").
type Duration time.Duration

// UnmarshalYAML reads a duration.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return lineErr(n, "want a duration such as 30s or 5m")
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return lineErr(n, "%q is not a duration (such as 30s or 5m)", s)
	}
	*d = Duration(v)
	return nil
}

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// LineError is an error of the policy file at a line.
type LineError struct {
	Line int
	Msg  string
}

func (e *LineError) Error() string {
	if e.Line == 0 {
		return e.Msg
	}
	return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
}

func lineErr(n *yaml.Node, format string, args ...any) error {
	return &LineError{Line: n.Line, Msg: fmt.Sprintf(format, args...)}
}

func atLine(line int, format string, args ...any) error {
	return &LineError{Line: line, Msg: fmt.Sprintf(format, args...)}
}

// strict decodes a mapping node into v (a pointer to a struct), refusing
// keys the struct has no field for and keys given twice.
func strict(n *yaml.Node, v any, what string) error {
	if n.Kind != yaml.MappingNode {
		return lineErr(n, "%s must be a mapping (key: value)", what)
	}
	known := map[string]bool{}
	var names []string
	rt := reflect.TypeOf(v).Elem()
	for i := 0; i < rt.NumField(); i++ {
		tag, _, _ := strings.Cut(rt.Field(i).Tag.Get("yaml"), ",")
		if tag != "" && tag != "-" {
			known[tag] = true
			names = append(names, tag)
		}
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if !known[k.Value] {
			return lineErr(k, "%s has no setting %q (known: %s)", what, k.Value, strings.Join(names, ", "))
		}
		if seen[k.Value] {
			return lineErr(k, "%s sets %q twice", what, k.Value)
		}
		seen[k.Value] = true
	}
	if err := n.Decode(v); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) && len(te.Errors) > 0 {
			return errors.New(te.Errors[0])
		}
		return err
	}
	return nil
}

// UnmarshalYAML decodes the whole file.
func (c *Config) UnmarshalYAML(n *yaml.Node) error {
	type plain Config
	if err := strict(n, (*plain)(c), "the policy file"); err != nil {
		return err
	}
	c.line = n.Line
	return nil
}

// UnmarshalYAML decodes a registry's settings.
func (r *RegistryConfig) UnmarshalYAML(n *yaml.Node) error {
	type plain RegistryConfig
	if err := strict(n, (*plain)(r), "a registry"); err != nil {
		return err
	}
	r.line = n.Line
	return nil
}

// UnmarshalYAML decodes audit.
func (a *AuditConfig) UnmarshalYAML(n *yaml.Node) error {
	type plain AuditConfig
	if err := strict(n, (*plain)(a), "audit"); err != nil {
		return err
	}
	a.line = n.Line
	return nil
}

// UnmarshalYAML decodes cache.
func (c *CacheConfig) UnmarshalYAML(n *yaml.Node) error {
	type plain CacheConfig
	if err := strict(n, (*plain)(c), "cache"); err != nil {
		return err
	}
	c.line = n.Line
	return nil
}

// UnmarshalYAML decodes a namespace entry.
func (ns *Namespace) UnmarshalYAML(n *yaml.Node) error {
	type plain Namespace
	if err := strict(n, (*plain)(ns), "a namespace"); err != nil {
		return err
	}
	ns.line = n.Line
	return nil
}

// UnmarshalYAML decodes a rule.
func (r *Rule) UnmarshalYAML(n *yaml.Node) error {
	type plain Rule
	if err := strict(n, (*plain)(r), "a rule"); err != nil {
		return err
	}
	r.line = n.Line
	return nil
}

// UnmarshalYAML decodes dct.
func (d *DCTConfig) UnmarshalYAML(n *yaml.Node) error {
	type plain DCTConfig
	if err := strict(n, (*plain)(d), "dct"); err != nil {
		return err
	}
	d.line = n.Line
	return nil
}

// UnmarshalYAML decodes cosign.
func (c *CosignConfig) UnmarshalYAML(n *yaml.Node) error {
	type plain CosignConfig
	if err := strict(n, (*plain)(c), "cosign"); err != nil {
		return err
	}
	c.line = n.Line
	return nil
}

// ParseConfig reads a policy file and checks every value that needs no
// file: URLs, modes, globs, signer names, thresholds, durations. Files
// (CAs, keys, secrets) are read by Load.
func ParseConfig(b []byte) (*Config, error) {
	if len(b) > maxPolicyFile {
		return nil, fmt.Errorf("the policy file is larger than %d bytes", maxPolicyFile)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var c Config
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("the policy file is empty")
		}
		return nil, err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, lineErr(&extra, "the policy file holds more than one YAML document")
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	return &c, nil
}

// check validates the values and fills in defaults.
func (c *Config) check() error {
	if c.TrustServer == "" {
		if c.needsDCT() {
			return atLine(c.line, "trust_server is required: a rule has dct")
		}
	} else if err := checkURL(c.TrustServer); err != nil {
		return atLine(c.line, "trust_server: %v", err)
	}
	for host, r := range c.Registries {
		if host == "" || strings.ContainsAny(host, "/ ") {
			return atLine(r.line, "registries: %q is not a registry host[:port]", host)
		}
		if r.Password != "" && r.PasswordFile != "" {
			return atLine(r.line, "registry %s: password and password_file are exclusive", host)
		}
		if (r.Password != "" || r.PasswordFile != "") && r.Username == "" {
			return atLine(r.line, "registry %s: a password needs a username", host)
		}
	}
	a := &c.Audit
	if a.URL != "" {
		if err := checkURL(a.URL); err != nil {
			return atLine(a.line, "audit.url: %v", err)
		}
		if a.Token == "" && a.TokenFile == "" {
			return atLine(a.line, "audit: a token (token or token_file) is required with url")
		}
		if a.Token != "" && a.TokenFile != "" {
			return atLine(a.line, "audit: token and token_file are exclusive")
		}
	} else if a.Token != "" || a.TokenFile != "" || a.CA != "" {
		return atLine(a.line, "audit: url is required")
	}
	switch c.Default {
	case "":
		c.Default = NoMatchAdmit
	case NoMatchAdmit, NoMatchDeny:
	default:
		return atLine(c.line, "default %q: want admit or deny", c.Default)
	}
	switch {
	case c.Timeout == 0:
		c.Timeout = Duration(8 * time.Second)
	case c.Timeout.D() > maxDecisionTime:
		return atLine(c.line, "timeout %v: at most %v (the API server waits 10 s for a webhook)", c.Timeout.D(), maxDecisionTime)
	}
	cc := &c.Cache
	if cc.TTL == 0 {
		cc.TTL = Duration(2 * time.Minute)
	}
	if cc.MaxStale == nil {
		d := Duration(15 * time.Minute)
		cc.MaxStale = &d
	}
	if cc.FailureTTL == 0 {
		cc.FailureTTL = Duration(5 * time.Second)
	}
	switch {
	case cc.MaxEntries == 0:
		cc.MaxEntries = 10000
	case cc.MaxEntries < 0:
		return atLine(cc.line, "cache.max_entries must be positive")
	}
	if len(c.Spaces) > maxNamespaces {
		return fmt.Errorf("more than %d namespace entries", maxNamespaces)
	}
	names := map[string]int{}
	rules := 0
	for _, ns := range c.Spaces {
		if ns == nil {
			return atLine(c.line, "an empty namespace entry")
		}
		if err := ns.check(); err != nil {
			return err
		}
		if prev, dup := names[ns.Name]; dup {
			return atLine(ns.line, "namespace %q is already given at line %d", ns.Name, prev)
		}
		names[ns.Name] = ns.line
		rules += len(ns.Rules)
	}
	if rules > maxRules {
		return fmt.Errorf("more than %d rules", maxRules)
	}
	return nil
}

func (c *Config) needsDCT() bool {
	for _, ns := range c.Spaces {
		if ns == nil {
			continue
		}
		for _, r := range ns.Rules {
			if r != nil && r.DCT != nil {
				return true
			}
		}
	}
	return false
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Scheme != "https" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q is not an https://host[:port] URL", s)
	}
	return nil
}

func (ns *Namespace) check() error {
	if ns.Name == "" {
		return atLine(ns.line, "a namespace entry needs a name (a namespace, a glob, or \"*\")")
	}
	if _, err := path.Match(ns.Name, ""); err != nil || strings.Contains(ns.Name, "/") {
		return atLine(ns.line, "namespace name %q is not a valid glob", ns.Name)
	}
	switch ns.Mode {
	case "":
		ns.Mode = ModeEnforce
	case ModeEnforce, ModeWarn, ModeAudit:
	default:
		return atLine(ns.line, "namespace %q: mode %q: want enforce, warn or audit", ns.Name, ns.Mode)
	}
	switch ns.Default {
	case "", NoMatchAdmit, NoMatchDeny:
	default:
		return atLine(ns.line, "namespace %q: default %q: want admit or deny", ns.Name, ns.Default)
	}
	for _, r := range ns.Rules {
		if r == nil {
			return atLine(ns.line, "namespace %q: an empty rule", ns.Name)
		}
		if err := r.check(ns.Name); err != nil {
			return err
		}
	}
	return nil
}

func (r *Rule) check(ns string) error {
	if r.Images == "" {
		return atLine(r.line, "namespace %q: a rule needs images (a repository glob)", ns)
	}
	if _, err := compileGlob(r.Images); err != nil {
		return atLine(r.line, "namespace %q: images %q: %v", ns, r.Images, err)
	}
	if r.DCT == nil && r.Cosign == nil {
		return atLine(r.line, "namespace %q: rule %q requires nothing: give dct, cosign or both", ns, r.Images)
	}
	if d := r.DCT; d != nil {
		if _, err := d.policy(); err != nil {
			return atLine(d.line, "namespace %q: rule %q: dct: %v", ns, r.Images, err)
		}
	}
	if c := r.Cosign; c != nil && len(c.Keys) == 0 {
		return atLine(c.line, "namespace %q: rule %q: cosign needs keys (PEM public key files)", ns, r.Images)
	}
	return nil
}

// policy is the verification policy the dct settings make.
func (d *DCTConfig) policy() (policy.Policy, error) {
	var rel policy.Releases
	switch d.Releases {
	case "", "docker":
		rel = policy.ReleasesDocker
	case "must_agree":
		rel = policy.ReleasesMustAgree
	case "ignore":
		rel = policy.ReleasesIgnored
	default:
		return policy.Policy{}, fmt.Errorf("releases %q: want docker, must_agree or ignore", d.Releases)
	}
	if len(d.Signers) == 0 {
		return policy.Policy{}, errors.New("signers are required: name the signers (targets/<name>) whose own roles must sign; targets/releases alone is never enough")
	}
	return policy.New(d.Signers, d.Threshold, rel)
}
