package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/signet-trust/signet/internal/atomicfile"
	"github.com/signet-trust/signet/internal/client"
	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/printable"
	"github.com/signet-trust/signet/internal/trustdir"
	"github.com/signet-trust/signet/internal/tuf"
)

// Environment variables that set the lifetimes of what this client signs
// (defaults as notary's: root 10 years, targets and snapshot 3 years).
const (
	envRootExpiry     = "SIGNET_ROOT_EXPIRY"
	envTargetsExpiry  = "SIGNET_TARGETS_EXPIRY"
	envSnapshotExpiry = "SIGNET_SNAPSHOT_EXPIRY"
)

// expiries reads the lifetimes from the environment.
func (a *app) expiries() (client.Expiries, error) {
	var e client.Expiries
	for _, v := range []struct {
		env string
		dst *time.Duration
		max time.Duration
	}{
		{envRootExpiry, &e.Root, client.RootExpiry}, // the root certificate lives 10 years
		{envTargetsExpiry, &e.Targets, 0},
		{envSnapshotExpiry, &e.Snapshot, 0},
	} {
		s := a.env.Getenv(v.env)
		if s == "" {
			continue
		}
		d, err := parseLifetime(s)
		if err != nil {
			return e, fmt.Errorf("%s: %w", v.env, err)
		}
		if d < time.Hour {
			return e, fmt.Errorf("%s=%s: a lifetime under an hour would expire before it is used", v.env, s)
		}
		if v.max > 0 && d > v.max {
			return e, fmt.Errorf("%s=%s: at most %s (the root certificate's lifetime)", v.env, s, formatIn(v.max))
		}
		*v.dst = d
	}
	return e, nil
}

// parseLifetime reads a duration: Go's forms (36h, 90m) and whole days,
// weeks and years (30d, 2w, 3y; a year is 365 days), combinable (1y30d).
func parseLifetime(s string) (time.Duration, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return 0, fmt.Errorf("%q is negative", s)
		}
		return d, nil
	}
	var total time.Duration
	rest := s
	for rest != "" {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 0 || i == len(rest) {
			return 0, fmt.Errorf("%q is not a duration (e.g. 90d, 2w, 1y, 36h)", s)
		}
		n, err := strconv.Atoi(rest[:i])
		if err != nil || n > 1000*365 {
			return 0, fmt.Errorf("%q is not a duration (e.g. 90d, 2w, 1y, 36h)", s)
		}
		unit := map[byte]time.Duration{'d': 24 * time.Hour, 'w': 7 * 24 * time.Hour, 'y': 365 * 24 * time.Hour}[rest[i]]
		if unit == 0 {
			if d, err := time.ParseDuration(rest); err == nil && d >= 0 {
				return total + d, nil
			}
			return 0, fmt.Errorf("%q is not a duration (e.g. 90d, 2w, 1y, 36h)", s)
		}
		total += time.Duration(n) * unit
		rest = rest[i+1:]
	}
	return total, nil
}

// expiryRow is one expiring thing: a role's metadata or a root
// certificate.
type expiryRow struct {
	TrustDir string    `json:"trust_dir"`
	GUN      string    `json:"gun"`
	Role     string    `json:"role"`
	Kind     string    `json:"kind"` // "metadata" or "certificate"
	Version  int       `json:"version,omitempty"`
	KeyID    string    `json:"key_id,omitempty"` // certificates: the root key's ID
	Expires  time.Time `json:"expires"`
	// InSeconds is the time left at the moment of the listing (negative:
	// expired).
	InSeconds int64 `json:"in_seconds"`
	Expired   bool  `json:"expired"`
}

func (a *app) expiryCmd() *cobra.Command {
	var within string
	cmd := &cobra.Command{
		Use:   "expiry",
		Short: "List when the cached trust data of every known repository expires",
		Long: `List the expiry of the trust data cached for every repository in the trust
directory (--trustDir, or ~/.notary and $DOCKER_CONFIG/trust): root, targets,
delegations, snapshot and timestamp metadata, and the root certificates
(whose end locks a repository for good). Soonest first; --within keeps what
expires within a duration (e.g. 30d, 2w, 36h), expired included.

The cache is what this client last verified: the server re-signs the
timestamp (and a server-managed snapshot) by itself, so their entries may be
older than the server's. This client signs with the lifetimes set by
` + envRootExpiry + `, ` + envTargetsExpiry + ` and ` + envSnapshotExpiry + `
(default 10y, 3y and 3y).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var horizon time.Duration = -1
			if within != "" {
				d, err := parseLifetime(within)
				if err != nil {
					return usageError("--within: %v", err)
				}
				horizon = d
			}
			dirs, err := a.knownTrustDirs()
			if err != nil {
				return err
			}
			now := a.now()
			var rows []expiryRow
			for _, dir := range dirs {
				rs, err := scanExpiry(dir, now)
				if err != nil {
					return err
				}
				rows = append(rows, rs...)
			}
			rows = dedupeExpiry(rows)
			if horizon >= 0 {
				kept := rows[:0]
				for _, r := range rows {
					if !r.Expires.After(now.Add(horizon)) {
						kept = append(kept, r)
					}
				}
				rows = kept
			}
			sort.SliceStable(rows, func(i, j int) bool {
				x, y := rows[i], rows[j]
				if !x.Expires.Equal(y.Expires) {
					return x.Expires.Before(y.Expires)
				}
				if x.GUN != y.GUN {
					return x.GUN < y.GUN
				}
				return x.Role < y.Role
			})
			if a.jsonOutput() {
				if rows == nil {
					rows = []expiryRow{}
				}
				return a.printJSON(rows)
			}
			if len(rows) == 0 {
				if horizon >= 0 {
					fmt.Fprintf(a.env.Stdout, "Nothing expires within %s.\n", within)
				} else {
					fmt.Fprintf(a.env.Stdout, "No cached trust data in %s.\n", strings.Join(dirs, ", "))
				}
				return nil
			}
			tw := table(a.env.Stdout, "GUN", "ROLE", "VERSION", "EXPIRES", "IN")
			for _, r := range rows {
				role, version := r.Role, strconv.Itoa(r.Version)
				if r.Kind == "certificate" {
					role, version = "root certificate "+short(r.KeyID), "-"
				}
				in := formatIn(r.Expires.Sub(now))
				if r.Expired {
					in = "EXPIRED " + formatIn(now.Sub(r.Expires)) + " ago"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", printable.Quote(r.GUN), printable.Quote(role), version, r.Expires.UTC().Format(time.RFC3339), in)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&within, "within", "", "only what expires within this duration (e.g. 30d, 2w, 36h); expired included")
	return cmd
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// knownTrustDirs are the trust directories to scan: --trustDir alone, or
// the notary client's (config or ~/.notary) and docker's.
func (a *app) knownTrustDirs() ([]string, error) {
	if a.trustDir != "" {
		return []string{a.trustDir}, nil
	}
	s, err := a.notarySettings()
	if err != nil {
		return nil, err
	}
	dockerCfg := a.env.Getenv("DOCKER_CONFIG")
	if dockerCfg == "" {
		dockerCfg = filepath.Join(a.home(), ".docker")
	}
	var out []string
	for _, d := range []string{s.trustDir, filepath.Join(a.expand(dockerCfg), "trust")} {
		d = filepath.Clean(d)
		if !contains(out, d) {
			out = append(out, d)
		}
	}
	return out, nil
}

// scanExpiry reads every tuf/<GUN>/metadata/ directory under a trust
// directory. Files that do not parse are skipped: the cache is re-fetched
// and verified on next use anyway.
func scanExpiry(trustDir string, now time.Time) ([]expiryRow, error) {
	base := filepath.Join(trustDir, "tuf")
	var rows []expiryRow
	err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return filepath.SkipAll
		}
		if err != nil {
			return err
		}
		if !d.IsDir() || d.Name() != "metadata" {
			return nil
		}
		gun, err := filepath.Rel(base, filepath.Dir(p))
		if err != nil || gun == "." {
			return filepath.SkipDir
		}
		gun = filepath.ToSlash(gun)
		rows = append(rows, scanRepo(trustDir, gun, p, now)...)
		return filepath.SkipDir
	})
	return rows, err
}

func scanRepo(trustDir, gun, metaDir string, now time.Time) []expiryRow {
	var rows []expiryRow
	add := func(r expiryRow) {
		r.TrustDir, r.GUN = trustDir, gun
		r.InSeconds = int64(r.Expires.Sub(now) / time.Second)
		r.Expired = !now.Before(r.Expires)
		rows = append(rows, r)
	}
	_ = filepath.WalkDir(metaDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".json") {
			return nil
		}
		rel, err := filepath.Rel(metaDir, p)
		if err != nil {
			return nil
		}
		role := strings.TrimSuffix(filepath.ToSlash(rel), ".json")
		if !tuf.ValidRole(role) {
			return nil
		}
		raw, err := atomicfile.ReadFile(p, trustdir.MaxMetadataFile)
		if err != nil {
			return nil
		}
		c, err := tuf.Peek(raw)
		if err != nil {
			return nil
		}
		add(expiryRow{Role: role, Kind: "metadata", Version: c.Version, Expires: c.Expires.UTC()})
		if role != tuf.RoleRoot {
			return nil
		}
		root, err := tuf.ParseRoot(raw)
		if err != nil {
			return nil
		}
		rk := root.Signed.Roles[tuf.RoleRoot]
		if rk == nil {
			return nil
		}
		for _, id := range rk.KeyIDs {
			k := root.Signed.Keys[id]
			if k == nil || len(k.Certificates()) == 0 {
				continue
			}
			add(expiryRow{Role: tuf.RoleRoot, Kind: "certificate", KeyID: certKeyID(k), Expires: k.Certificates()[0].NotAfter.UTC()})
		}
		return nil
	})
	return rows
}

// certKeyID is the root key's ID as `signet key list` shows it.
func certKeyID(k *keys.PublicKey) string { return k.CanonicalID() }

// dedupeExpiry drops rows that two trust directories share (the same
// repository cached by both notary and docker at the same version).
func dedupeExpiry(rows []expiryRow) []expiryRow {
	seen := map[string]bool{}
	var out []expiryRow
	for _, r := range rows {
		k := fmt.Sprintf("%s\x00%s\x00%s\x00%d\x00%s\x00%s", r.GUN, r.Role, r.Kind, r.Version, r.KeyID, r.Expires)
		if !seen[k] {
			seen[k] = true
			out = append(out, r)
		}
	}
	return out
}

// formatIn renders a duration for people: 9y 364d, 29d 23h, 5h 10m.
func formatIn(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	day := 24 * time.Hour
	switch {
	case d >= 365*day:
		y := d / (365 * day)
		return fmt.Sprintf("%dy %dd", y, (d-y*365*day)/day)
	case d >= 2*day:
		return fmt.Sprintf("%dd %dh", d/day, (d%day)/time.Hour)
	case d >= time.Hour:
		return fmt.Sprintf("%dh %dm", d/time.Hour, (d%time.Hour)/time.Minute)
	}
	return fmt.Sprintf("%dm", d/time.Minute)
}
