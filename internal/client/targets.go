package client

import (
	"slices"
	"strings"

	"github.com/signet-trust/signet/internal/tuf"
	"github.com/signet-trust/signet/internal/tuf/trust"
)

// Target is a target as a role lists it.
type Target struct {
	Name string
	Meta tuf.FileMeta
	Role string
}

// walk visits the loaded roles under start breadth first, in the order
// delegations are listed, skipping the roles in skip and their subtrees;
// visit gets each role's verified metadata and effective paths.
func walk(v *trust.Repo, start string, skip map[string]bool, visit func(role string, t *tuf.Targets, paths []string) bool) {
	queue := []string{start}
	for len(queue) > 0 {
		role := queue[0]
		queue = queue[1:]
		if skip[role] {
			continue
		}
		m := v.Targets(role)
		if m == nil {
			continue
		}
		if !visit(role, &m.Signed, v.Paths(role)) {
			return
		}
		for _, d := range m.Signed.Delegations.Roles {
			queue = append(queue, d.Name)
		}
	}
}

// ListTargets lists the targets of a repository as the notary client does:
// roles in priority order (default "targets"), each walked with its
// delegations; the first role to list a name wins, and a role's targets
// outside its delegated paths are ignored. The result is sorted by name.
func ListTargets(v *trust.Repo, roles ...string) []Target {
	if len(roles) == 0 {
		roles = []string{tuf.RoleTargets}
	}
	// Every target of every role visited, in visiting order; a stable sort
	// by name then puts the first role to list a name first among the
	// roles listing it. (Cheaper than a map of the names seen: a role
	// lists each name once, so most repositories have nothing to drop.)
	var out []Target
	contributed := 0
	for _, start := range roles {
		skip := map[string]bool{}
		for _, r := range roles {
			if r != start {
				skip[r] = true
			}
		}
		walk(v, start, skip, func(role string, t *tuf.Targets, paths []string) bool {
			n := len(out)
			if out == nil {
				out = make([]Target, 0, len(t.Targets))
			}
			for name, fm := range t.Targets {
				if tuf.PathAllowed(paths, name) {
					out = append(out, Target{Name: name, Meta: fm, Role: role})
				}
			}
			if len(out) > n {
				contributed++
			}
			return true
		})
	}
	if out == nil {
		return []Target{}
	}
	byName := func(a, b Target) int { return strings.Compare(a.Name, b.Name) }
	if contributed <= 1 {
		slices.SortFunc(out, byName) // one role's names are unique
		return out
	}
	slices.SortStableFunc(out, byName)
	return slices.CompactFunc(out, func(a, b Target) bool { return a.Name == b.Name })
}

// Lookup finds one target with the precedence of ListTargets.
func Lookup(v *trust.Repo, name string, roles ...string) (Target, bool) {
	if len(roles) == 0 {
		roles = []string{tuf.RoleTargets}
	}
	for _, start := range roles {
		skip := map[string]bool{}
		for _, r := range roles {
			if r != start {
				skip[r] = true
			}
		}
		var found Target
		ok := false
		walk(v, start, skip, func(role string, t *tuf.Targets, paths []string) bool {
			if fm, listed := t.Targets[name]; listed && tuf.PathAllowed(paths, name) {
				found, ok = Target{Name: name, Meta: fm, Role: role}, true
				return false
			}
			return true
		})
		if ok {
			return found, true
		}
	}
	return Target{}, false
}

// RoleTarget returns a target exactly as one role lists it (no walking),
// honouring that role's delegated paths.
func RoleTarget(v *trust.Repo, role, name string) (Target, bool) {
	fm, ok := v.RoleTarget(role, name)
	if !ok {
		return Target{}, false
	}
	return Target{Name: name, Meta: fm, Role: role}, true
}
