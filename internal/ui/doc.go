// Package ui is signet-server's web dashboard under /ui/: requests and
// approvals, repositories and their trust data, expiries and the audit
// log, rendered on the server with html/template (a little htmx, embedded,
// for the search box; every page and form works without it).
//
// Safety: every page but the login form needs a session (otherwise 303 to
// /ui/login); sessions live in a __Host- cookie that is Secure, HttpOnly
// and SameSite=Strict and expires; every state-changing form carries the
// session's CSRF token (the login form a cookie-bound one), checked in
// constant time; every answer has a strict Content-Security-Policy (no
// inline script or style), X-Frame-Options DENY and no-store caching;
// everything shown goes through html/template's contextual escaping.
// Logins are rate-limited per user name and per client address.
//
// Decisions made in the browser are the signing service's own methods
// (service.Approve, service.Deny) with the session's principal: the same
// checks and the same audit events as the API.
//
// Sessions are kept in this process's memory: a restart logs everyone
// out, and behind several replicas a load balancer must keep a browser on
// one replica.
package ui
