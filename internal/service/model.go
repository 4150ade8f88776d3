package service

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/signet-trust/signet/internal/service/record"
)

// The records of the service, as package record defines them.
type (
	Status            = record.Status
	User              = record.User
	Token             = record.Token
	Project           = record.Project
	KeyPurpose        = record.KeyPurpose
	ProjectKey        = record.ProjectKey
	Origin            = record.Origin
	Webhook           = record.Webhook
	Format            = record.Format
	Policy            = record.Policy
	Image             = record.Image
	Decision          = record.Decision
	SignedRole        = record.SignedRole
	CosignSignature   = record.CosignSignature
	Request           = record.Request
	Effects           = record.Effects
	Delivery          = record.Delivery
	RequestFilter     = record.RequestFilter
	Store             = record.Store
	UnknownUsersError = record.UnknownUsersError
	InUseError        = record.InUseError
)

// Statuses, purposes, formats and delivery states (package record).
const (
	StatusAwaitingApproval = record.StatusAwaitingApproval
	StatusSigning          = record.StatusSigning
	StatusSigned           = record.StatusSigned
	StatusDenied           = record.StatusDenied
	StatusFailed           = record.StatusFailed
	StatusCanceled         = record.StatusCanceled
	StatusExpired          = record.StatusExpired

	PurposeDelegation = record.PurposeDelegation
	PurposeCosign     = record.PurposeCosign

	FormatDCT    = record.FormatDCT
	FormatCosign = record.FormatCosign

	DeliveryPending   = record.DeliveryPending
	DeliveryDelivered = record.DeliveryDelivered
	DeliveryFailed    = record.DeliveryFailed
)

var (
	// Statuses lists every status; Formats every signature format.
	Statuses = record.Statuses
	Formats  = record.Formats
	// ErrUnchanged, returned by the function given to a Store's Update
	// method, commits nothing.
	ErrUnchanged = record.ErrUnchanged
	// ValidUserName and ValidName check names of users, and of projects
	// and policies.
	ValidUserName = record.ValidUserName
	ValidName     = record.ValidName
)

// IDs are UUIDv7 strings: opaque, unique, and sortable by creation time.
// The 12 bits after the version count within a millisecond, so one
// generator's IDs are strictly increasing even within a millisecond or
// when the clock steps back.
type idGen struct {
	mu      sync.Mutex
	lastMS  uint64
	counter uint16
}

// next returns a new ID for time now.
func (g *idGen) next(now time.Time) string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("service: no randomness: " + err.Error())
	}
	ms := uint64(max(now.UnixMilli(), 0))
	g.mu.Lock()
	if ms <= g.lastMS {
		ms = g.lastMS
		g.counter++
		if g.counter > 0x0fff {
			ms++
			g.counter = 0
		}
	} else {
		g.counter = binary.BigEndian.Uint16(b[6:8]) & 0x07ff // room to count
	}
	g.lastMS = ms
	c := g.counter
	g.mu.Unlock()
	binary.BigEndian.PutUint64(b[:8], ms<<16|uint64(0x7000|c))
	b[8] = 0x80 | b[8]&0x3f // variant 10
	h := hex.EncodeToString(b[:])
	return fmt.Sprintf("%s-%s-%s-%s-%s", h[:8], h[8:12], h[12:16], h[16:20], h[20:])
}
