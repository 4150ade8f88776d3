package ui

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/signet-trust/signet/internal/service"
)

// Cookie names: __Host- makes browsers refuse them unless Secure, for the
// whole host and path /.
const (
	sessionCookie = "__Host-signet_session"
	loginCookie   = "__Host-signet_login"
)

// session is a logged-in browser.
type session struct {
	user    string
	p       service.Principal
	csrf    string
	expires time.Time // absolute
	idle    time.Time // when unused since
}

func (s *session) checkCSRF(tok string) bool {
	return tok != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(s.csrf)) == 1
}

// sessions are kept by the SHA-256 of their cookie's value, so that the
// map holds no credential.
type sessions struct {
	mu sync.Mutex
	m  map[[32]byte]*session
}

func newSessions() *sessions { return &sessions{m: map[[32]byte]*session{}} }

func randomString() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("ui: no randomness: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// maxSessions bounds the sessions held; the oldest expiring go first.
const maxSessions = 100_000

func (ss *sessions) add(s *session, now time.Time) string {
	tok := randomString()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if len(ss.m) >= maxSessions {
		for k, o := range ss.m {
			if now.After(o.expires) || now.After(o.idle) {
				delete(ss.m, k)
			}
		}
		for k := range ss.m { // still full: drop any
			if len(ss.m) < maxSessions {
				break
			}
			delete(ss.m, k)
		}
	}
	ss.m[sha256.Sum256([]byte(tok))] = s
	return tok
}

func (ss *sessions) get(tok string, now time.Time, idle time.Duration) *session {
	k := sha256.Sum256([]byte(tok))
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.m[k]
	if s == nil {
		return nil
	}
	if now.After(s.expires) || now.After(s.idle) {
		delete(ss.m, k)
		return nil
	}
	s.idle = now.Add(idle)
	c := *s
	return &c
}

func (ss *sessions) remove(tok string) {
	ss.mu.Lock()
	delete(ss.m, sha256.Sum256([]byte(tok)))
	ss.mu.Unlock()
}

// current returns the request's session, with the user as stored now, or
// nil.
func (u *UI) current(r *http.Request) *session {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" || len(c.Value) > 100 {
		return nil
	}
	s := u.sessions.get(c.Value, u.now(), u.cfg.SessionIdle)
	if s == nil {
		return nil
	}
	p, err := u.cfg.Service.UserPrincipal(r.Context(), s.user)
	if err != nil {
		u.sessions.remove(c.Value)
		return nil
	}
	s.p = p
	return s
}

func setCookie(w http.ResponseWriter, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
}

type loginData struct {
	Error    string
	Username string
	Token    string
}

// loginForm shows the form, with a fresh login CSRF token bound to a
// cookie.
func (u *UI) loginForm(w http.ResponseWriter, r *http.Request) error {
	if u.current(r) != nil {
		http.Redirect(w, r, "/ui/", http.StatusSeeOther)
		return nil
	}
	u.showLogin(w, r, http.StatusOK, loginData{})
	return nil
}

func (u *UI) showLogin(w http.ResponseWriter, r *http.Request, status int, d loginData) {
	d.Token = randomString()
	setCookie(w, loginCookie, d.Token, 3600)
	u.render(w, r, nil, status, "login", d)
}

// clientAddress is the request's peer address without the port.
func clientAddress(r *http.Request) string {
	h, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return h
}

// login checks the form and starts a session.
func (u *UI) login(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		return badRequest("The form could not be read.")
	}
	c, err := r.Cookie(loginCookie)
	tok := r.PostForm.Get("csrf")
	if err != nil || tok == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(tok)) != 1 {
		u.log.Info("ui: login refused without its CSRF token", "address", clientAddress(r))
		u.showLogin(w, r, http.StatusForbidden, loginData{Error: "The form had expired or did not come from this page. Please log in again."})
		return nil
	}
	name, password := r.PostForm.Get("username"), r.PostForm.Get("password")
	now := u.now()
	okAddr, waitAddr := u.byAddr.Take(clientAddress(r), now)
	okUser, waitUser := u.byUser.Take(name, now)
	if !okAddr || !okUser {
		wait := max(waitAddr, waitUser).Round(time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(int(max(wait, time.Second)/time.Second)))
		u.log.Info("ui: login rate-limited", "user", name, "address", clientAddress(r))
		u.showLogin(w, r, http.StatusTooManyRequests, loginData{Username: name,
			Error: "Too many login attempts. Wait " + max(wait, time.Second).String() + " and try again."})
		return nil
	}
	p, err := u.cfg.Service.Login(r.Context(), name, password)
	if errors.Is(err, service.ErrBadLogin) {
		u.log.Info("ui: wrong user name or password", "user", name, "address", clientAddress(r))
		u.showLogin(w, r, http.StatusUnauthorized, loginData{Username: name, Error: "Wrong user name or password."})
		return nil
	}
	if err != nil {
		return err
	}
	s := &session{user: p.User.Name, p: p, csrf: randomString(), expires: now.Add(u.cfg.SessionTTL), idle: now.Add(u.cfg.SessionIdle)}
	value := u.sessions.add(s, now)
	setCookie(w, sessionCookie, value, int(u.cfg.SessionTTL/time.Second))
	setCookie(w, loginCookie, "", -1)
	u.log.Info("ui: logged in", "user", s.user, "address", clientAddress(r))
	http.Redirect(w, r, "/ui/", http.StatusSeeOther)
	return nil
}

// logout ends the session.
func (u *UI) logout(w http.ResponseWriter, r *http.Request, s *session) error {
	if c, err := r.Cookie(sessionCookie); err == nil {
		u.sessions.remove(c.Value)
	}
	setCookie(w, sessionCookie, "", -1)
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
	return nil
}
