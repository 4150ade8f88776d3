package servercmd

import (
	"errors"
	"fmt"
	"time"

	"github.com/signet-trust/signet/internal/ratelimit"
	"github.com/signet-trust/signet/internal/server"
)

// LimitsConfig is the `limits:` section of the YAML config: what one
// client may make the server hold, store or spend (docs/operations.md,
// "Resource limits"). Zero values mean the defaults shown; a negative
// rate turns that limit off.
//
//	limits:
//	  upload_memory: 1073741824            # bytes all uploads in flight may take
//	                                       #   (16 per byte of body); past it: 503
//	  new_repository_keys_per_second: 1    # keys made for repositories without
//	  new_repository_keys_burst: 100       #   metadata (GET …/timestamp.key); past it: 429
//	  min_body_rate: 4096                  # bytes a second a request body must keep up
//	  body_rate_grace: 10s                 #   after this long
//	  failed_logins_per_minute: 10         # built-in token service, per client address
//	  failed_logins_burst: 10              #   and per user; past it: 429
type LimitsConfig struct {
	UploadMemory               int64         `yaml:"upload_memory"`
	NewRepositoryKeysPerSecond float64       `yaml:"new_repository_keys_per_second"`
	NewRepositoryKeysBurst     int           `yaml:"new_repository_keys_burst"`
	MinBodyRate                int64         `yaml:"min_body_rate"`
	BodyRateGrace              time.Duration `yaml:"body_rate_grace"`
	FailedLoginsPerMinute      float64       `yaml:"failed_logins_per_minute"`
	FailedLoginsBurst          int           `yaml:"failed_logins_burst"`
}

// Defaults of the limits, where server and auth have none of their own.
const (
	defaultNewRepositoryKeysPerSecond = 1
	defaultNewRepositoryKeysBurst     = 100
	defaultFailedLoginsPerMinute      = 10
	defaultFailedLoginsBurst          = 10
)

// readTimeout bounds reading a whole request, body included: the HTTP
// server's ReadTimeout and the API's BodyTimeout, one value.
const readTimeout = 5 * time.Minute

func (l LimitsConfig) validate() error {
	var errs []error
	if l.UploadMemory < 0 {
		errs = append(errs, fmt.Errorf("limits.upload_memory %d: must not be negative (0 means the default of 1 GiB)", l.UploadMemory))
	}
	if l.NewRepositoryKeysBurst < 0 || l.FailedLoginsBurst < 0 {
		errs = append(errs, errors.New("limits: a burst must not be negative (0 means the default)"))
	}
	if l.BodyRateGrace < 0 || l.BodyRateGrace >= readTimeout {
		errs = append(errs, fmt.Errorf("limits.body_rate_grace %v: must be at least 0 and below the read timeout of %v", l.BodyRateGrace, readTimeout))
	}
	return errors.Join(errs...)
}

// limit is a rate and burst from the config: the defaults for zero
// values, no limit for a negative rate.
func limit(rate float64, burst int, defRate float64, defBurst int) ratelimit.Limit {
	switch {
	case rate < 0:
		return ratelimit.Limit{Rate: -1}
	case rate == 0:
		rate = defRate
	}
	if burst == 0 {
		burst = defBurst
	}
	return ratelimit.Limit{Rate: rate, Burst: burst}
}

// apply sets the API's limits in cfg.
func (l LimitsConfig) apply(cfg *server.Config) {
	cfg.UploadMemory = l.UploadMemory
	cfg.NewRepositoryKeys = limit(l.NewRepositoryKeysPerSecond, l.NewRepositoryKeysBurst, defaultNewRepositoryKeysPerSecond, defaultNewRepositoryKeysBurst)
	cfg.MinBodyRate = l.MinBodyRate
	cfg.BodyRateGrace = l.BodyRateGrace
	cfg.BodyTimeout = readTimeout
}

// logins is the limit of failed logins of the built-in token service.
func (l LimitsConfig) logins() ratelimit.Limit {
	if l.FailedLoginsPerMinute < 0 {
		return ratelimit.Limit{Rate: -1}
	}
	perMinute := l.FailedLoginsPerMinute
	if perMinute == 0 {
		perMinute = defaultFailedLoginsPerMinute
	}
	return limit(perMinute/60, l.FailedLoginsBurst, defaultFailedLoginsPerMinute/60.0, defaultFailedLoginsBurst)
}
