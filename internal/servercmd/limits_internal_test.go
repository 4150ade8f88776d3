package servercmd

import (
	"testing"

	"github.com/signet-trust/signet/internal/ratelimit"
	"github.com/signet-trust/signet/internal/server"
)

// TestLimitsConfig: zero values are the defaults, a negative rate turns a
// limit off, and set values pass through.
func TestLimitsConfig(t *testing.T) {
	for _, tt := range []struct {
		l            LimitsConfig
		keys, logins ratelimit.Limit
	}{
		{LimitsConfig{}, ratelimit.Limit{Rate: 1, Burst: 100}, ratelimit.Limit{Rate: 10.0 / 60, Burst: 10}},
		{LimitsConfig{NewRepositoryKeysPerSecond: -1, FailedLoginsPerMinute: -1}, ratelimit.Limit{Rate: -1}, ratelimit.Limit{Rate: -1}},
		{LimitsConfig{NewRepositoryKeysPerSecond: 5, NewRepositoryKeysBurst: 7, FailedLoginsPerMinute: 30, FailedLoginsBurst: 3},
			ratelimit.Limit{Rate: 5, Burst: 7}, ratelimit.Limit{Rate: 0.5, Burst: 3}},
		{LimitsConfig{NewRepositoryKeysBurst: 7}, ratelimit.Limit{Rate: 1, Burst: 7}, ratelimit.Limit{Rate: 10.0 / 60, Burst: 10}},
	} {
		var c server.Config
		tt.l.apply(&c)
		if c.NewRepositoryKeys != tt.keys || tt.l.logins() != tt.logins || c.BodyTimeout != readTimeout {
			t.Errorf("%+v: keys %+v, logins %+v, body timeout %v; want %+v, %+v", tt.l, c.NewRepositoryKeys, tt.l.logins(), c.BodyTimeout, tt.keys, tt.logins)
		}
		if c.NewRepositoryKeys.Unlimited() != (tt.keys.Rate < 0) {
			t.Errorf("%+v: unlimited %v", tt.l, c.NewRepositoryKeys.Unlimited())
		}
	}
}
