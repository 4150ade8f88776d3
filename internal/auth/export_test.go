package auth

import "time"

// SetCheckWait changes how long a password check waits for a slot (for
// tests, so that a few cheap checks can fill the slots).
func SetCheckWait(h *Htpasswd, d time.Duration) { h.wait = d }
