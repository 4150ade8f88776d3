package ui

import (
	"cmp"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/signet-trust/signet/internal/audit"
	"github.com/signet-trust/signet/internal/notaryapi"
	"github.com/signet-trust/signet/internal/store"
	"github.com/signet-trust/signet/internal/tuf"
)

func (u *UI) repositories(w http.ResponseWriter, r *http.Request, s *session) error {
	q := r.URL.Query()
	search, after := strings.TrimSpace(q.Get("q")), q.Get("after")
	if len(search) > 255 || len(after) > 255 {
		return badRequest("The search is too long.")
	}
	guns, err := u.cfg.Repos.Repositories(r.Context(), search, after, pageSize+1)
	if err != nil {
		return err
	}
	d := struct {
		GUNs         []string
		Search, Next string
	}{Search: search}
	if len(guns) > pageSize {
		guns = guns[:pageSize]
		d.Next = guns[len(guns)-1]
	}
	d.GUNs = guns
	page := "repositories"
	w.Header().Set("Vary", "HX-Request")
	if r.Header.Get("HX-Request") == "true" {
		page = "repolist" // the list alone, for the search box
	}
	u.render(w, r, s, http.StatusOK, page, d)
	return nil
}

// roleInfo is a role of a repository as the page shows it.
type roleInfo struct {
	Name      string
	Version   int
	Expires   time.Time
	KeyIDs    []string
	Threshold int
	Missing   bool // delegated, but nothing published yet
}

// tagSigner is a role that lists a tag, with the digest it says.
type tagSigner struct {
	Role, Digest string
	Differs      bool // targets/releases lists another digest
}

// tagInfo is a tag of a repository.
type tagInfo struct {
	Tag, Digest string
	Size        int64
	Signers     []tagSigner
	// Hole: targets/releases points at another digest than a signer's
	// own role says (what Docker would pull is not what that signer
	// signed).
	Hole bool
}

type repoPage struct {
	GUN      string
	Roles    []roleInfo
	Tags     []tagInfo
	Timeline chart
	History  []auditRow
}

func sha256Hex(m tuf.FileMeta) string {
	if h, ok := m.Hashes["sha256"]; ok {
		return hex.EncodeToString(h)
	}
	return ""
}

// loadRepository reads a repository's current trust data.
func (u *UI) loadRepository(ctx context.Context, gun string) (*repoPage, error) {
	d := &repoPage{GUN: gun}
	get := func(role string) ([]byte, *store.File, error) {
		f, err := u.cfg.Meta.GetCurrent(ctx, gun, role)
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil, nil
		}
		if err != nil {
			return nil, nil, err
		}
		return f.Data, &f, nil
	}
	rootRaw, _, err := get(tuf.RoleRoot)
	if err != nil {
		return nil, err
	}
	if rootRaw == nil {
		return nil, errNotFound
	}
	root, err := tuf.ParseRoot(rootRaw)
	if err != nil {
		return nil, fmt.Errorf("ui: %s root: %w", gun, err)
	}
	for _, name := range tuf.BaseRoles {
		ri := roleInfo{Name: name}
		if rk := root.Signed.Roles[name]; rk != nil {
			ri.KeyIDs, ri.Threshold = rk.KeyIDs, rk.Threshold
		}
		raw, _, err := get(name)
		if err != nil {
			return nil, err
		}
		if raw == nil {
			ri.Missing = true
		} else if c, err := tuf.Peek(raw); err == nil {
			ri.Version, ri.Expires = c.Version, c.Expires
		}
		d.Roles = append(d.Roles, ri)
	}
	targetsRaw, _, err := get(tuf.RoleTargets)
	if err != nil || targetsRaw == nil {
		return d, err
	}
	top, err := tuf.ParseTargets(tuf.RoleTargets, targetsRaw)
	if err != nil {
		return nil, fmt.Errorf("ui: %s targets: %w", gun, err)
	}
	lists := map[string]map[string]tuf.FileMeta{tuf.RoleTargets: top.Signed.Targets}
	var delegated []string
	for _, dr := range top.Signed.Delegations.Roles {
		ri := roleInfo{Name: dr.Name, KeyIDs: dr.KeyIDs, Threshold: dr.Threshold}
		raw, _, err := get(dr.Name)
		if err != nil {
			return nil, err
		}
		if raw == nil {
			ri.Missing = true
		} else if m, err := tuf.ParseTargets(dr.Name, raw); err == nil {
			ri.Version, ri.Expires = m.Signed.Version, m.Signed.Expires
			lists[dr.Name] = m.Signed.Targets
		}
		delegated = append(delegated, dr.Name)
		d.Roles = append(d.Roles, ri)
	}
	tags := map[string]*tagInfo{}
	order := append([]string{tuf.RoleTargets}, delegated...)
	const releases = "targets/releases"
	for _, role := range order {
		for tag, m := range lists[role] {
			t := tags[tag]
			if t == nil {
				t = &tagInfo{Tag: tag}
				tags[tag] = t
			}
			dg := sha256Hex(m)
			if role == releases || role == tuf.RoleTargets || t.Digest == "" {
				if role != tuf.RoleTargets || t.Digest == "" {
					t.Digest, t.Size = dg, m.Length
				}
			}
			t.Signers = append(t.Signers, tagSigner{Role: role, Digest: dg})
		}
	}
	for _, t := range tags {
		rel, ok := lists[releases][t.Tag]
		if ok {
			t.Digest, t.Size = sha256Hex(rel), rel.Length
		}
		for i, sg := range t.Signers {
			if ok && sg.Role != releases && sg.Role != tuf.RoleTargets && sg.Digest != sha256Hex(rel) {
				t.Signers[i].Differs, t.Hole = true, true
			}
		}
		d.Tags = append(d.Tags, *t)
	}
	sort.Slice(d.Tags, func(i, j int) bool { return d.Tags[i].Tag < d.Tags[j].Tag })
	return d, nil
}

func (u *UI) repository(w http.ResponseWriter, r *http.Request, s *session) error {
	raw := r.PathValue("gun")
	gun, err := notaryapi.ParseGUN(raw)
	if err != nil {
		return badRequest("%q is not a repository name.", raw)
	}
	d, err := u.loadRepository(r.Context(), gun.String())
	if err != nil {
		return err
	}
	d.Timeline = u.expiryTimeline(d.Roles)
	if u.cfg.AuditEntries != nil && s.p.Reader() {
		d.History = u.publishes(r.Context(), d.GUN, 20)
	}
	u.render(w, r, s, http.StatusOK, "repository", d)
	return nil
}

// publishes returns the newest publishes of gun in the audit log (among
// its newest auditScan entries).
func (u *UI) publishes(ctx context.Context, gun string, n int) []auditRow {
	st, err := u.cfg.AuditEntries.State(ctx)
	if err != nil {
		return nil
	}
	var out []auditRow
	end := st.Size
	for scanned := 0; end > 0 && len(out) < n && scanned < auditScan; {
		start := end - min(end, 500)
		es, err := u.cfg.AuditEntries.Entries(ctx, start, int(end-start))
		if err != nil {
			return out
		}
		for i := len(es) - 1; i >= 0 && len(out) < n; i-- {
			scanned++
			e, err := audit.ParseEvent(es[i].Data)
			if err != nil || e.Subject.GUN != gun {
				continue
			}
			if e.Type == audit.TUFPublish || e.Type == audit.RequestSign || e.Type == audit.TUFDelete || e.Type == audit.TUFResign {
				out = append(out, auditRow{Index: es[i].Index, E: e, Link: subjectLink(e.Subject)})
			}
		}
		end = start
	}
	return out
}

// chart is a server-rendered SVG chart: its parts computed here, drawn by
// the template.
type chart struct {
	Width, Height int
	Bars          []bar
	Labels        []label
	Lines         []line
	Title         string
	Empty         bool
}

type bar struct {
	X, Y, W, H int
	Class      string
	Title      string
}

type label struct {
	X, Y   int
	Text   string
	Anchor string
	Class  string
}

type line struct {
	X1, Y1, X2, Y2 int
	Class          string
}

// barChart draws the requests of each day from since.
func barChart(since time.Time, counts []int) chart {
	const w, h, left, bottom, top = 560, 180, 30, 30, 10
	c := chart{Width: w, Height: h, Title: "Signing requests per day, last 14 days"}
	peak, total := 1, 0
	for _, n := range counts {
		peak = max(peak, n)
		total += n
	}
	c.Empty = total == 0
	n := len(counts)
	slot := (w - left) / max(n, 1)
	for i, v := range counts {
		x := left + i*slot + 2
		day := since.AddDate(0, 0, i)
		if hv := v * (h - bottom - top) / peak; hv > 0 {
			c.Bars = append(c.Bars, bar{X: x, Y: h - bottom - hv, W: slot - 4, H: hv, Class: "signed", Title: fmt.Sprintf("%s: %d requests", day.Format("Jan 2"), v)})
		}
		if i%2 == 0 {
			c.Labels = append(c.Labels, label{X: x + slot/2 - 2, Y: h - bottom + 16, Text: day.Format("Jan 2"), Anchor: "middle"})
		}
	}
	c.Lines = append(c.Lines, line{X1: left, Y1: h - bottom, X2: w, Y2: h - bottom, Class: "axis"})
	c.Labels = append(c.Labels, label{X: left - 4, Y: top + 4, Text: fmt.Sprint(peak), Anchor: "end"})
	return c
}

// expiryTimeline draws each role's expiry on one time axis from now.
func (u *UI) expiryTimeline(roles []roleInfo) chart {
	now := u.now()
	var rs []roleInfo
	for _, r := range roles {
		if !r.Expires.IsZero() {
			rs = append(rs, r)
		}
	}
	slices.SortFunc(rs, func(a, b roleInfo) int { return cmp.Or(a.Expires.Compare(b.Expires), strings.Compare(a.Name, b.Name)) })
	const w, left, rowH = 640, 170, 22
	h := 30 + rowH*len(rs)
	c := chart{Width: w, Height: h, Title: "Expiry of each role, from now", Empty: len(rs) == 0}
	last := now.Add(24 * time.Hour)
	for _, r := range rs {
		if r.Expires.After(last) {
			last = r.Expires
		}
	}
	span := last.Sub(now)
	for i, r := range rs {
		y := 10 + i*rowH
		left := r.Expires.Sub(now)
		bw := 0
		if left > 0 {
			bw = int(float64(w-170-10) * float64(left) / float64(span))
		}
		class := "ok"
		switch {
		case left <= 0:
			class = "expired"
		case left < 7*24*time.Hour:
			class = "soon"
		}
		c.Labels = append(c.Labels, label{X: 164, Y: y + 14, Text: r.Name, Anchor: "end"})
		c.Bars = append(c.Bars, bar{X: 170, Y: y, W: max(bw, 2), H: rowH - 6, Class: class,
			Title: fmt.Sprintf("%s expires %s (%s)", r.Name, r.Expires.UTC().Format(time.RFC3339), until(now, r.Expires))})
	}
	c.Lines = append(c.Lines, line{X1: left, Y1: 4, X2: left, Y2: h - 20, Class: "axis"})
	c.Labels = append(c.Labels, label{X: left, Y: h - 4, Text: "now", Anchor: "start"},
		label{X: w - 4, Y: h - 4, Text: last.UTC().Format("2006-01-02"), Anchor: "end"})
	return c
}

// until says how long from now to t, roughly.
func until(now, t time.Time) string {
	d := t.Sub(now)
	switch {
	case d <= 0:
		return "expired"
	case d < time.Hour:
		return "in less than an hour"
	case d < 48*time.Hour:
		return fmt.Sprintf("in %d hours", int(d.Hours()))
	}
	return fmt.Sprintf("in %d days", int(d.Hours()/24))
}
