package service

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/signet-trust/signet/internal/audit"
	"github.com/signet-trust/signet/internal/custody"
	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/policy"
	"github.com/signet-trust/signet/internal/service/serviceapi"
	"github.com/signet-trust/signet/internal/store"
	"github.com/signet-trust/signet/internal/tuf"
)

// checkRepository checks that repo is a repository name (GUN) as Docker
// writes it, without tag or digest.
func (s *Service) checkRepository(repo string) error {
	n, err := s.cfg.Images.Parse(repo)
	if err != nil {
		return badRequest("repository %q is not a repository name: %v", repo, err)
	}
	if n.Tag != "" || n.Digest != "" {
		return badRequest("repository %q names a tag or digest; give the repository alone", repo)
	}
	if n.GUN != repo {
		return badRequest("repository %q is %q as Docker Content Trust names it; use that", repo, n.GUN)
	}
	return nil
}

func checkSigner(name string) error {
	if _, err := policy.ParseSigner(name); err != nil || strings.HasPrefix(name, "targets/") {
		return badRequest("signer %q: use lowercase letters, digits, '_' and '-' as docker trust does; \"releases\" is reserved", name)
	}
	return nil
}

// parseKeyFile reads a private key file to import.
func parseKeyFile(pemText, passphrase string) (crypto.Signer, error) {
	k, err := keys.ParsePrivateKeyPEM([]byte(pemText), keys.Passphrase([]byte(passphrase)))
	switch {
	case errors.Is(err, keys.ErrWrongPassphrase), errors.Is(err, keys.ErrPassphraseRequired):
		return nil, badRequest("the private key is encrypted and the passphrase does not open it")
	case err != nil:
		return nil, badRequest("the private key is not a key file notary or docker trust writes: %v", err)
	}
	if k.PublicKey().Type() != keys.TypeECDSA {
		return nil, badRequest("the private key is %s; delegation keys are ECDSA P-256, as docker trust makes them", k.PublicKey().Type())
	}
	return k.Key(), nil
}

// newKey makes (or imports) a key in custody and describes it for the
// project's records.
func (s *Service) newKey(ctx context.Context, spec custody.Spec, pemText, passphrase, signerName string) (ProjectKey, error) {
	var (
		k   custody.Key
		err error
	)
	if pemText != "" {
		priv, perr := parseKeyFile(pemText, passphrase)
		if perr != nil {
			return ProjectKey{}, perr
		}
		k, err = s.cfg.Keys.ImportKey(ctx, spec, priv)
		if errors.Is(err, custody.ErrExists) {
			return ProjectKey{}, conflict("the key %s is already held by the service", keyIDOf(priv))
		}
	} else {
		spec.Algorithm = custody.AlgorithmECDSA
		k, err = s.cfg.Keys.CreateKey(ctx, spec)
	}
	if err != nil {
		if errors.Is(err, custody.ErrInvalid) {
			return ProjectKey{}, badRequest("%v", err)
		}
		return ProjectKey{}, &Error{Status: 503, Code: serviceapi.CodeUnavailable, Message: "the key custodian could not make the key; retry later", Err: err}
	}
	pk := ProjectKey{
		ID: k.ID(), Role: spec.Role, Purpose: KeyPurpose(spec.Purpose), Imported: pemText != "", Created: s.now(),
		Public: keys.MarshalPublicKeyPEM(k.Public, signerName),
	}
	return pk, nil
}

func keyIDOf(priv crypto.Signer) string {
	k, err := keys.FromCrypto(priv.Public())
	if err != nil {
		return "?"
	}
	return k.ID()
}

// retire retires keys in custody after the records that used them are
// gone or replaced; a failure is logged (the key is no longer referenced).
func (s *Service) retire(ctx context.Context, ids ...string) {
	for _, id := range ids {
		if id == "" {
			continue
		}
		if _, err := s.cfg.Keys.RetireKey(ctx, id); err != nil && !errors.Is(err, custody.ErrNotHeld) {
			s.log.WarnContext(ctx, "retiring a project key in custody failed", "key", id, "error", err.Error())
		}
	}
}

func keyEvent(s *Service, p Principal, k ProjectKey, project, gun string) audit.Event {
	typ := audit.KeyCreate
	if k.Imported {
		typ = audit.KeyImport
	}
	return s.event(typ, p.Actor(), audit.Subject{KeyID: k.ID, Project: project, GUN: gun, Role: k.Role, Policy: k.Policy})
}

// CreateProject creates a project: its delegation key (generated in
// custody, or imported) and its cosign key.
func (s *Service) CreateProject(ctx context.Context, p Principal, in serviceapi.CreateProject) (serviceapi.Project, error) {
	if !p.Admin() {
		return serviceapi.Project{}, forbidden("only an admin creates projects")
	}
	if !ValidName(in.Name) {
		return serviceapi.Project{}, badRequest("project name %q: use 1 to 64 lowercase letters, digits, '.', '_' or '-'", in.Name)
	}
	if err := s.checkRepository(in.Repository); err != nil {
		return serviceapi.Project{}, err
	}
	if err := checkSigner(in.Signer); err != nil {
		return serviceapi.Project{}, err
	}
	if in.RateLimit < 0 {
		return serviceapi.Project{}, badRequest("rate_limit %d: give a positive number of requests per hour, or 0 for the default", in.RateLimit)
	}
	if in.PrivateKey == "" && in.Passphrase != "" {
		return serviceapi.Project{}, badRequest("a passphrase without a private_key")
	}
	// Refuse what the store would refuse before keys are made in custody.
	if _, err := s.st.GetProject(ctx, in.Name); err == nil {
		return serviceapi.Project{}, conflict("project %s already exists", in.Name)
	} else if !errors.Is(err, store.ErrNotFound) {
		return serviceapi.Project{}, asError(err, "")
	}
	if err := s.knownUsers(ctx, in.Managers); err != nil {
		return serviceapi.Project{}, err
	}
	owner := custody.ProjectOwner(in.Name)
	role := policy.Signer(in.Signer).Role()
	dk, err := s.newKey(ctx, custody.Spec{GUN: in.Repository, Role: role, Purpose: custody.PurposeDelegation, Owner: owner}, in.PrivateKey, in.Passphrase, in.Signer)
	if err != nil {
		return serviceapi.Project{}, err
	}
	ck, err := s.newKey(ctx, custody.Spec{Purpose: custody.PurposeCosign, Owner: owner}, "", "", "")
	if err != nil {
		s.retire(ctx, dk.ID)
		return serviceapi.Project{}, err
	}
	now := s.now()
	managers := in.Managers
	if managers == nil {
		managers = []string{}
	}
	proj := Project{Name: in.Name, Repository: in.Repository, Signer: in.Signer, KeyID: dk.ID, CosignKeyID: ck.ID,
		Managers: managers, RateLimit: in.RateLimit, Created: now, Updated: now}
	events := []audit.Event{
		s.event(audit.ProjectCreate, p.Actor(), audit.Subject{Project: in.Name, GUN: in.Repository, Role: role}),
		keyEvent(s, p, dk, in.Name, in.Repository),
		keyEvent(s, p, ck, in.Name, ""),
	}
	if err := s.st.CreateProject(ctx, proj, []ProjectKey{dk, ck}, events); err != nil {
		s.retire(ctx, dk.ID, ck.ID)
		if errors.Is(err, store.ErrConflict) {
			return serviceapi.Project{}, conflict("%v", strings.TrimPrefix(err.Error(), "sqlstore: create project "+in.Name+": "))
		}
		return serviceapi.Project{}, asError(err, "project "+in.Name)
	}
	s.committed(Effects{Events: events})
	return s.projectOut(ctx, proj, false)
}

// knownUsers refuses names of users that do not exist (the store refuses
// them too; this names them before keys are made).
func (s *Service) knownUsers(ctx context.Context, names []string) error {
	var missing []string
	for _, n := range names {
		if _, err := s.st.GetUser(ctx, n); errors.Is(err, store.ErrNotFound) {
			if !slices.Contains(missing, n) {
				missing = append(missing, n)
			}
		} else if err != nil {
			return asError(err, "")
		}
	}
	if len(missing) > 0 {
		return asError(&UnknownUsersError{Names: missing}, "")
	}
	return nil
}

// projectOut shows a project; full adds its keys, policies and the state
// of its repository.
func (s *Service) projectOut(ctx context.Context, proj Project, full bool) (serviceapi.Project, error) {
	ks, err := s.st.ListProjectKeys(ctx, proj.Name)
	if err != nil {
		return serviceapi.Project{}, asError(err, "")
	}
	out := serviceapi.Project{Name: proj.Name, Repository: proj.Repository, Signer: proj.Signer, KeyID: proj.KeyID,
		CosignKeyID: proj.CosignKeyID, Managers: proj.Managers, RateLimit: proj.RateLimit, Created: proj.Created, Updated: proj.Updated}
	if out.Managers == nil {
		out.Managers = []string{}
	}
	for _, k := range ks {
		switch k.ID {
		case proj.KeyID:
			out.PublicKey = string(k.Public)
		case proj.CosignKeyID:
			out.CosignPublicKey = string(k.Public)
		}
		if full {
			pk := serviceapi.ProjectKey{ID: k.ID, Policy: k.Policy, Role: k.Role, Purpose: string(k.Purpose), PublicKey: string(k.Public),
				Imported: k.Imported, Created: k.Created}
			if !k.Retired.IsZero() {
				r := k.Retired
				pk.Retired = &r
			}
			out.Keys = append(out.Keys, pk)
		}
	}
	if !full {
		return out, nil
	}
	pols, err := s.st.ListPolicies(ctx, proj.Name)
	if err != nil {
		return serviceapi.Project{}, asError(err, "")
	}
	for _, pol := range pols {
		out.Policies = append(out.Policies, pol.Name)
	}
	st, err := s.repoState(ctx, proj.Repository, proj.Signer, proj.KeyID)
	if err != nil {
		return serviceapi.Project{}, asError(err, "")
	}
	out.State = &st
	return out, nil
}

// mayRead reports whether p may read project proj: readers, its managers
// and the users its policies name.
func (s *Service) mayRead(ctx context.Context, p Principal, proj Project) (bool, error) {
	if p.Reader() || mayManage(p, proj) {
		return true, nil
	}
	if p.Kind != KindUser {
		return false, nil
	}
	pols, err := s.st.PoliciesNaming(ctx, p.User.Name)
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(pols, func(pol Policy) bool { return pol.Project == proj.Name }), nil
}

// visibleProjects is nil for readers (everything), else the projects p
// manages or is named in.
func (s *Service) visibleProjects(ctx context.Context, p Principal) ([]string, error) {
	if p.Reader() {
		return nil, nil
	}
	out := []string{}
	if p.Kind != KindUser {
		return out, nil
	}
	ps, err := s.st.ListProjects(ctx)
	if err != nil {
		return nil, err
	}
	for _, pr := range ps {
		if mayManage(p, pr) {
			out = append(out, pr.Name)
		}
	}
	pols, err := s.st.PoliciesNaming(ctx, p.User.Name)
	if err != nil {
		return nil, err
	}
	for _, pol := range pols {
		if !slices.Contains(out, pol.Project) {
			out = append(out, pol.Project)
		}
	}
	return out, nil
}

// getProject reads a project p may read.
func (s *Service) getProject(ctx context.Context, p Principal, name string) (Project, error) {
	proj, err := s.st.GetProject(ctx, name)
	if err != nil {
		return Project{}, asError(err, "project "+name)
	}
	ok, err := s.mayRead(ctx, p, proj)
	if err != nil {
		return Project{}, asError(err, "")
	}
	if !ok {
		return Project{}, forbidden("project %s is not one you manage or are named in", name)
	}
	return proj, nil
}

// GetProject reads a project with the state of its repository.
func (s *Service) GetProject(ctx context.Context, p Principal, name string) (serviceapi.Project, error) {
	proj, err := s.getProject(ctx, p, name)
	if err != nil {
		return serviceapi.Project{}, err
	}
	return s.projectOut(ctx, proj, true)
}

// ListProjects lists the projects p may read.
func (s *Service) ListProjects(ctx context.Context, p Principal) (serviceapi.ProjectList, error) {
	ps, err := s.st.ListProjects(ctx)
	if err != nil {
		return serviceapi.ProjectList{}, asError(err, "")
	}
	visible, err := s.visibleProjects(ctx, p)
	if err != nil {
		return serviceapi.ProjectList{}, asError(err, "")
	}
	out := serviceapi.ProjectList{Projects: []serviceapi.Project{}}
	for _, pr := range ps {
		if visible != nil && !slices.Contains(visible, pr.Name) {
			continue
		}
		po, err := s.projectOut(ctx, pr, false)
		if err != nil {
			return serviceapi.ProjectList{}, err
		}
		out.Projects = append(out.Projects, po)
	}
	return out, nil
}

// UpdateProject changes a project's managers or rate limit (admins).
func (s *Service) UpdateProject(ctx context.Context, p Principal, name string, in serviceapi.UpdateProject) (serviceapi.Project, error) {
	if !p.Admin() {
		return serviceapi.Project{}, forbidden("only an admin changes a project's managers and rate limit")
	}
	if in.RateLimit != nil && *in.RateLimit < 0 {
		return serviceapi.Project{}, badRequest("rate_limit %d: give a positive number of requests per hour, or 0 for the default", *in.RateLimit)
	}
	var fx Effects
	proj, err := s.st.UpdateProject(ctx, name, func(pr *Project) ([]audit.Event, error) {
		var changes []string
		if in.Managers != nil && !slices.Equal(*in.Managers, pr.Managers) {
			pr.Managers = slices.Clone(*in.Managers)
			if pr.Managers == nil {
				pr.Managers = []string{}
			}
			changes = append(changes, "managers")
		}
		if in.RateLimit != nil && *in.RateLimit != pr.RateLimit {
			pr.RateLimit = *in.RateLimit
			changes = append(changes, "rate_limit")
		}
		if len(changes) == 0 {
			return nil, ErrUnchanged
		}
		pr.Updated = s.now()
		e := s.event(audit.ProjectUpdate, p.Actor(), audit.Subject{Project: name})
		e.Changes = changes
		fx.Events = []audit.Event{e}
		return fx.Events, nil
	})
	if err != nil {
		return serviceapi.Project{}, asError(err, "project "+name)
	}
	s.committed(fx)
	return s.projectOut(ctx, proj, true)
}

// DeleteProject deletes a project, its policies and its keys (admins); a
// project with pending requests is refused. Its keys are retired in
// custody.
func (s *Service) DeleteProject(ctx context.Context, p Principal, name string) error {
	if !p.Admin() {
		return forbidden("only an admin deletes projects")
	}
	ks, err := s.st.ListProjectKeys(ctx, name)
	if err != nil {
		return asError(err, "")
	}
	events := []audit.Event{s.event(audit.ProjectDelete, p.Actor(), audit.Subject{Project: name})}
	if err := s.st.DeleteProject(ctx, name, events); err != nil {
		return asError(err, "project "+name)
	}
	s.committed(Effects{Events: events})
	for _, k := range ks {
		if k.Retired.IsZero() {
			s.retire(ctx, k.ID)
		}
	}
	return nil
}

// RotateKey gives the project's signer (or a policy's own signer) a new
// delegation key, generated or imported (admins and the project's
// managers). The repository owner re-delegates to it; signatures of the
// old key stay valid as long as the old key stays in the delegation.
func (s *Service) RotateKey(ctx context.Context, p Principal, project string, in serviceapi.RotateKey) (serviceapi.Project, error) {
	proj, err := s.st.GetProject(ctx, project)
	if err != nil {
		return serviceapi.Project{}, asError(err, "project "+project)
	}
	if !mayManage(p, proj) {
		return serviceapi.Project{}, forbidden("only an admin or a manager of %s rotates its keys", project)
	}
	if in.PrivateKey == "" && in.Passphrase != "" {
		return serviceapi.Project{}, badRequest("a passphrase without a private_key")
	}
	signerName, old := proj.Signer, proj.KeyID
	if in.Policy != "" {
		pol, err := s.st.GetPolicy(ctx, project, in.Policy)
		if err != nil {
			return serviceapi.Project{}, asError(err, "policy "+project+"/"+in.Policy)
		}
		if pol.Signer == "" {
			return serviceapi.Project{}, badRequest("policy %s signs as the project's signer %s; rotate the project's key (no policy)", in.Policy, proj.Signer)
		}
		signerName, old = pol.Signer, pol.KeyID
	}
	role := policy.Signer(signerName).Role()
	k, err := s.newKey(ctx, custody.Spec{GUN: proj.Repository, Role: role, Purpose: custody.PurposeDelegation, Owner: custody.ProjectOwner(project)},
		in.PrivateKey, in.Passphrase, signerName)
	if err != nil {
		return serviceapi.Project{}, err
	}
	k.Project, k.Policy = project, in.Policy
	e := keyEvent(s, p, k, project, proj.Repository)
	rot := s.event(audit.KeyRotate, p.Actor(), audit.Subject{KeyID: k.ID, Project: project, GUN: proj.Repository, Role: role, Policy: in.Policy})
	rot.Comment = "replaces " + old
	events := []audit.Event{e, rot}
	if err := s.st.RotateKey(ctx, k, events); err != nil {
		s.retire(ctx, k.ID)
		return serviceapi.Project{}, asError(err, "project "+project)
	}
	s.committed(Effects{Events: events})
	s.retire(ctx, old)
	proj, err = s.st.GetProject(ctx, project)
	if err != nil {
		return serviceapi.Project{}, asError(err, "")
	}
	return s.projectOut(ctx, proj, true)
}

// repoState reads what the repository's current trust data says about the
// service's key keyID as signer.
func (s *Service) repoState(ctx context.Context, gun, signer, keyID string) (serviceapi.RepositoryState, error) {
	var st serviceapi.RepositoryState
	role := policy.Signer(signer).Role()
	addFix := fmt.Sprintf("the repository owner adds the project's key: save public_key as %s.pub and run `docker trust signer add --key %s.pub %s %s`", signer, signer, signer, gun)
	if _, err := s.cfg.Repos.Current(ctx, gun, tuf.RoleRoot); errors.Is(err, store.ErrNotFound) {
		st.Fix = "the repository has no trust data yet: " + addFix + " (it initialises the repository)"
		return st, nil
	} else if err != nil {
		return st, err
	}
	st.Initialized = true
	managed, err := s.cfg.Repos.SnapshotManaged(ctx, gun)
	if err != nil {
		return st, err
	}
	st.ServerManagedSnapshot = managed
	raw, err := s.cfg.Repos.Current(ctx, gun, tuf.RoleTargets)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return st, err
	}
	var problems []string
	soon := s.now().Add(expiryNotice)
	if raw != nil {
		t, err := tuf.ParseTargets(tuf.RoleTargets, raw)
		if err != nil {
			return st, fmt.Errorf("stored targets of %s: %w", gun, err)
		}
		exp := t.Signed.Expires.UTC()
		st.DelegationExpires = &exp
		if exp.Before(soon) {
			st.Notices = append(st.Notices, fmt.Sprintf("the repository's targets metadata, which delegates to %s, expires at %s: the owner re-signs it (signet witness %s targets -p, or any publish with the repository key)",
				role, exp.Format(time.RFC3339), gun))
		}
		for _, d := range t.Signed.Delegations.Roles {
			if (d.Name == role || d.Name == policy.ReleasesRole) && slices.Contains(d.KeyIDs, keyID) {
				if d.Threshold > 1 {
					problems = append(problems, fmt.Sprintf("%s needs %d signatures, and the service signs once", d.Name, d.Threshold))
					continue
				}
				if d.Name == role {
					st.SignerRole = true
				} else {
					st.ReleasesRole = true
				}
			}
		}
	}
	if b, err := s.cfg.Repos.Current(ctx, gun, role); err == nil {
		if t, err := tuf.ParseTargets(role, b); err == nil {
			exp := t.Signed.Expires.UTC()
			st.SignerRoleExpires = &exp
			if exp.Before(soon) {
				st.Notices = append(st.Notices, fmt.Sprintf("%s expires at %s; the next signing renews it", role, exp.Format(time.RFC3339)))
			}
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return st, err
	}
	st.Delegated = st.SignerRole && st.ReleasesRole
	st.Ready = st.Delegated && st.ServerManagedSnapshot && len(problems) == 0
	switch {
	case !st.ServerManagedSnapshot:
		st.Fix = fmt.Sprintf("the repository's snapshot key is held by its owner, so the service cannot publish; the owner hands it to the server with `notary key rotate %s snapshot -r` (docker trust does this by default)", gun)
	case len(problems) > 0:
		st.Fix = strings.Join(problems, "; ") + "; set the delegation's threshold to 1"
	case !st.Delegated:
		missing := role
		if st.SignerRole {
			missing = policy.ReleasesRole
		} else if !st.ReleasesRole {
			missing = role + " and " + policy.ReleasesRole
		}
		st.Fix = fmt.Sprintf("%s does not list the key %s: %s", missing, shortID(keyID), addFix)
	}
	return st, nil
}

// expiryNotice is how early GET /projects/{name} warns of expiring
// metadata.
const expiryNotice = 30 * 24 * time.Hour

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
