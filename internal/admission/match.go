package admission

// Which namespace entry and which rule apply: globs, most specific first.

import (
	"errors"
	"path"
	"regexp"
	"sort"
	"strings"

	"github.com/signet-trust/signet/internal/registry"
)

// compileGlob turns an image pattern into a regular expression over a
// repository name (registry/path, as `docker trust` names it: Docker Hub's
// images are docker.io/library/NAME). "*" matches within one path
// component, "**" across components, "?" one character other than "/".
func compileGlob(p string) (*regexp.Regexp, error) {
	if strings.ContainsAny(p, " \t\n@") {
		return nil, errors.New("a repository glob holds no spaces and no digest")
	}
	if strings.Contains(p, ":") && strings.LastIndex(p, ":") > strings.LastIndex(p, "/") {
		return nil, errors.New("a rule matches repositories, not tags: leave the :tag out")
	}
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(p); i++ {
		switch c := p[i]; c {
		case '*':
			if i+1 < len(p) && p[i+1] == '*' {
				b.WriteString(".*")
				i++
			} else {
				b.WriteString("[^/]*")
			}
		case '?':
			b.WriteString("[^/]")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	return regexp.Compile(b.String())
}

// specificity orders patterns: a pattern without wildcards (an exact name)
// first, then more literal characters, then fewer "**", then fewer "*"
// (a rule written earlier wins a tie).
func specificity(p string) (literal, double, single int) {
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '*':
			if i+1 < len(p) && p[i+1] == '*' {
				double++
				i++
			} else {
				single++
			}
		case '?':
		default:
			literal++
		}
	}
	return
}

// moreSpecific reports whether pattern a is tried before pattern b.
func moreSpecific(a, b string) bool {
	la, da, sa := specificity(a)
	lb, db, sb := specificity(b)
	exactA, exactB := !strings.ContainsAny(a, "*?"), !strings.ContainsAny(b, "*?")
	if exactA != exactB {
		return exactA
	}
	if la != lb {
		return la > lb
	}
	if da != db {
		return da < db
	}
	return sa < sb
}

// sortSpecific orders items by pattern, most specific first, keeping the
// file's order among equals.
func sortSpecific[T any](items []T, pattern func(T) string) {
	sort.SliceStable(items, func(i, j int) bool { return moreSpecific(pattern(items[i]), pattern(items[j])) })
}

// namespaceFor returns the policy of a namespace: the entry whose name
// matches it, most specific first; nil when none does.
func (p *Policy) namespaceFor(ns string) *nsPolicy {
	for _, n := range p.spaces {
		if ok, _ := path.Match(n.name, ns); ok {
			return n
		}
	}
	return nil
}

// ruleFor returns the rule of the namespace that covers a repository, most
// specific first; nil when none does.
func (n *nsPolicy) ruleFor(repo string) *rulePolicy {
	for _, r := range n.rules {
		if r.re.MatchString(repo) {
			return r
		}
	}
	return nil
}

// image is a container image as a pod spec names it.
type image struct {
	written string // as in the spec
	ref     registry.Reference
}

// parseImage reads an image reference as the kubelet does (Docker's
// grammar: a missing registry is Docker Hub, a missing tag is latest).
func parseImage(s string) (image, error) {
	if s == "" {
		return image{}, errors.New("the image is empty")
	}
	if strings.TrimSpace(s) != s {
		return image{}, errors.New("the image has surrounding spaces")
	}
	ref, err := registry.ParseReference(s)
	if err != nil {
		return image{}, err
	}
	if ref.Tag == "" && ref.Digest == "" {
		ref.Tag = "latest"
	}
	return image{written: s, ref: ref}, nil
}

// repo is the repository name rules match (the GUN).
func (i image) repo() string { return i.ref.GUN() }

// pinned is the image as written without its tag or digest, at digest.
func (i image) pinned(digest string) string {
	name, _, _ := strings.Cut(i.written, "@")
	if c := strings.LastIndex(name, ":"); c > strings.LastIndex(name, "/") {
		name = name[:c]
	}
	return name + "@" + digest
}
