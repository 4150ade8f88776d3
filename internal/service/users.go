package service

import (
	"context"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/signet-trust/signet/internal/audit"
	"github.com/signet-trust/signet/internal/service/serviceapi"
)

func checkEmail(email string) error {
	if email == "" {
		return nil
	}
	a, err := mail.ParseAddress(email)
	if err != nil || a.Address != email || a.Name != "" {
		return badRequest("%q is not an e-mail address (name@domain)", email)
	}
	return nil
}

func checkPassword(pw string) error {
	if utf8.RuneCountInString(pw) < MinPassword {
		return badRequest("a password needs at least %d characters", MinPassword)
	}
	if len(pw) > 1024 {
		return badRequest("a password is at most 1024 bytes")
	}
	return nil
}

func checkDescription(what, s string, max int) error {
	if len(s) > max {
		return badRequest("%s is longer than %d bytes", what, max)
	}
	if !utf8.ValidString(s) {
		return badRequest("%s is not UTF-8", what)
	}
	for _, r := range s {
		if r < 0x20 && r != '\n' && r != '\t' || r == 0x7f {
			return badRequest("%s holds a control character", what)
		}
	}
	return nil
}

// CreateUser creates a user with a first API token, returned once.
func (s *Service) CreateUser(ctx context.Context, p Principal, in serviceapi.CreateUser) (serviceapi.UserCreated, error) {
	if !p.Admin() {
		return serviceapi.UserCreated{}, forbidden("only an admin creates users")
	}
	if !ValidUserName(in.Name) {
		return serviceapi.UserCreated{}, badRequest("user name %q: use 1 to 64 lowercase letters, digits, '.', '_' or '-', starting with a letter", in.Name)
	}
	if in.Password != "" {
		if err := checkPassword(in.Password); err != nil {
			return serviceapi.UserCreated{}, err
		}
	}
	if err := checkEmail(in.Email); err != nil {
		return serviceapi.UserCreated{}, err
	}
	if in.Admin && in.Auditor {
		return serviceapi.UserCreated{}, badRequest("a user is an admin or an auditor, not both (an admin reads everything already)")
	}
	now := s.now()
	u := User{Name: in.Name, Email: in.Email, Admin: in.Admin, Auditor: in.Auditor, Created: now, Updated: now}
	if in.Password != "" {
		u.PasswordHash = HashPassword(in.Password)
	}
	secret := randomToken(apiTokenPrefix)
	tok := Token{ID: s.ids.next(now), User: in.Name, Description: "created with the user", Hash: tokenHash(secret), Created: now}
	events := []audit.Event{
		s.event(audit.UserCreate, p.Actor(), audit.Subject{User: in.Name}),
		s.event(audit.TokenCreate, p.Actor(), audit.Subject{User: in.Name, Token: tok.ID}),
	}
	if in.Admin || in.Auditor {
		events[0].Changes = []string{map[bool]string{true: "admin", false: "auditor"}[in.Admin]}
	}
	if err := s.st.CreateUser(ctx, u, &tok, events); err != nil {
		return serviceapi.UserCreated{}, asError(err, "user "+in.Name)
	}
	s.committed(Effects{Events: events})
	return serviceapi.UserCreated{Name: in.Name, Token: secret, TokenID: tok.ID}, nil
}

func userOut(u User) serviceapi.User {
	return serviceapi.User{Name: u.Name, Email: u.Email, Admin: u.Admin, Auditor: u.Auditor, HasPassword: u.PasswordHash != "",
		Created: u.Created, Updated: u.Updated}
}

// mayReadUser: readers, and users themselves.
func mayReadUser(p Principal, name string) bool {
	return p.Reader() || p.Kind == KindUser && p.User.Name == name
}

// ListUsers lists users (admins and auditors).
func (s *Service) ListUsers(ctx context.Context, p Principal) (serviceapi.UserList, error) {
	if !p.Reader() {
		return serviceapi.UserList{}, forbidden("only admins and auditors list users")
	}
	us, err := s.st.ListUsers(ctx)
	if err != nil {
		return serviceapi.UserList{}, asError(err, "")
	}
	out := serviceapi.UserList{Users: []serviceapi.User{}}
	for _, u := range us {
		out.Users = append(out.Users, userOut(u))
	}
	return out, nil
}

// GetUser reads a user (readers, or the user themself).
func (s *Service) GetUser(ctx context.Context, p Principal, name string) (serviceapi.User, error) {
	if !mayReadUser(p, name) {
		return serviceapi.User{}, forbidden("only admins, auditors and %s read this user", name)
	}
	u, err := s.st.GetUser(ctx, name)
	if err != nil {
		return serviceapi.User{}, asError(err, "user "+name)
	}
	return userOut(u), nil
}

// UpdateUser changes a user: admins change anything; users change their
// own password and e-mail address.
func (s *Service) UpdateUser(ctx context.Context, p Principal, name string, in serviceapi.UpdateUser) (serviceapi.User, error) {
	self := p.Kind == KindUser && p.User.Name == name
	if !p.Admin() && !(self && in.Admin == nil && in.Auditor == nil) {
		return serviceapi.User{}, forbidden("only an admin changes other users or roles")
	}
	if in.Password != nil && *in.Password != "" {
		if err := checkPassword(*in.Password); err != nil {
			return serviceapi.User{}, err
		}
	}
	if in.Email != nil {
		if err := checkEmail(*in.Email); err != nil {
			return serviceapi.User{}, err
		}
	}
	var fx Effects
	u, err := s.st.UpdateUser(ctx, name, func(u *User) ([]audit.Event, error) {
		var changes []string
		if in.Password != nil {
			if *in.Password == "" {
				u.PasswordHash = ""
			} else {
				u.PasswordHash = HashPassword(*in.Password)
			}
			changes = append(changes, "password")
		}
		if in.Email != nil && *in.Email != u.Email {
			u.Email = *in.Email
			changes = append(changes, "email")
		}
		if in.Admin != nil && *in.Admin != u.Admin {
			u.Admin = *in.Admin
			changes = append(changes, "admin")
		}
		if in.Auditor != nil && *in.Auditor != u.Auditor {
			u.Auditor = *in.Auditor
			changes = append(changes, "auditor")
		}
		if u.Admin && u.Auditor {
			return nil, badRequest("a user is an admin or an auditor, not both")
		}
		if len(changes) == 0 {
			return nil, ErrUnchanged
		}
		u.Updated = s.now()
		e := s.event(audit.UserUpdate, p.Actor(), audit.Subject{User: name})
		e.Changes = changes
		fx.Events = []audit.Event{e}
		return fx.Events, nil
	})
	if err != nil {
		return serviceapi.User{}, asError(err, "user "+name)
	}
	s.committed(fx)
	return userOut(u), nil
}

// DeleteUser deletes a user and their tokens (admins). A user still named
// by a project or policy is refused, naming them.
func (s *Service) DeleteUser(ctx context.Context, p Principal, name string) error {
	if !p.Admin() {
		return forbidden("only an admin deletes users")
	}
	if p.Kind == KindUser && p.User.Name == name {
		return conflict("an admin does not delete themself; another admin (or SIGNET_ADMIN_TOKEN) can")
	}
	events := []audit.Event{s.event(audit.UserDelete, p.Actor(), audit.Subject{User: name})}
	if err := s.st.DeleteUser(ctx, name, events); err != nil {
		return asError(err, "user "+name)
	}
	s.committed(Effects{Events: events})
	return nil
}

func tokenOut(t Token) serviceapi.Token {
	out := serviceapi.Token{ID: t.ID, User: t.User, Description: t.Description, Created: t.Created}
	if !t.Expires.IsZero() {
		e := t.Expires
		out.Expires = &e
	}
	if !t.Revoked.IsZero() {
		r := t.Revoked
		out.Revoked = &r
	}
	return out
}

// CreateToken makes an API token for a user (admins, or the user
// themself), returned once.
func (s *Service) CreateToken(ctx context.Context, p Principal, user string, in serviceapi.CreateToken) (serviceapi.TokenCreated, error) {
	if !p.Admin() && !(p.Kind == KindUser && p.User.Name == user) {
		return serviceapi.TokenCreated{}, forbidden("only an admin or %s makes %s's tokens", user, user)
	}
	if err := checkDescription("the description", in.Description, 200); err != nil {
		return serviceapi.TokenCreated{}, err
	}
	now := s.now()
	tok := Token{ID: s.ids.next(now), User: user, Description: strings.TrimSpace(in.Description), Created: now}
	if in.ExpiresIn != "" {
		d, err := time.ParseDuration(in.ExpiresIn)
		if err != nil || d <= 0 {
			return serviceapi.TokenCreated{}, badRequest("expires_in %q is not a positive duration such as 720h", in.ExpiresIn)
		}
		tok.Expires = now.Add(d)
	}
	secret := randomToken(apiTokenPrefix)
	tok.Hash = tokenHash(secret)
	events := []audit.Event{s.event(audit.TokenCreate, p.Actor(), audit.Subject{User: user, Token: tok.ID})}
	if err := s.st.CreateToken(ctx, tok, events); err != nil {
		return serviceapi.TokenCreated{}, asError(err, "user "+user)
	}
	s.committed(Effects{Events: events})
	return serviceapi.TokenCreated{Token: tokenOut(tok), Secret: secret}, nil
}

// ListTokens lists a user's tokens (readers, or the user themself).
func (s *Service) ListTokens(ctx context.Context, p Principal, user string) (serviceapi.TokenList, error) {
	if !mayReadUser(p, user) {
		return serviceapi.TokenList{}, forbidden("only admins, auditors and %s list %s's tokens", user, user)
	}
	if _, err := s.st.GetUser(ctx, user); err != nil {
		return serviceapi.TokenList{}, asError(err, "user "+user)
	}
	ts, err := s.st.ListTokens(ctx, user)
	if err != nil {
		return serviceapi.TokenList{}, asError(err, "")
	}
	out := serviceapi.TokenList{Tokens: []serviceapi.Token{}}
	for _, t := range ts {
		out.Tokens = append(out.Tokens, tokenOut(t))
	}
	return out, nil
}

// RevokeToken revokes a user's token (admins, or the user themself).
func (s *Service) RevokeToken(ctx context.Context, p Principal, user, id string) error {
	if !p.Admin() && !(p.Kind == KindUser && p.User.Name == user) {
		return forbidden("only an admin or %s revokes %s's tokens", user, user)
	}
	events := []audit.Event{s.event(audit.TokenRevoke, p.Actor(), audit.Subject{User: user, Token: id})}
	if _, err := s.st.RevokeToken(ctx, user, id, s.now(), events); err != nil {
		return asError(err, "token "+id+" of "+user)
	}
	s.committed(Effects{Events: events})
	return nil
}

// Me says who p is.
func (s *Service) Me(ctx context.Context, p Principal) (serviceapi.Me, error) {
	out := serviceapi.Me{Kind: string(p.Kind), Admin: p.Admin(), Auditor: p.Reader() && !p.Admin()}
	if p.Kind == KindUser {
		out.Name = p.User.Name
		ps, err := s.st.ListProjects(ctx)
		if err != nil {
			return out, asError(err, "")
		}
		for _, pr := range ps {
			if mayManage(Principal{Kind: KindUser, User: User{Name: p.User.Name}}, pr) {
				out.Manages = append(out.Manages, pr.Name)
			}
		}
	}
	return out, nil
}
