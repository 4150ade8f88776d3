package servercmd

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestReplicasAndRetentionConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfg, err := parseConfig([]string{"--config", write("ok.yaml", "replicas:\n  cache_max_stale: 5s\nretention:\n  keep_versions: 3\n  interval: 10m\n")}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Replicas.CacheMaxStale != 5*time.Second || cfg.Retention.KeepVersions != 3 || cfg.Retention.Interval != 10*time.Minute {
		t.Fatalf("parsed %+v %+v", cfg.Replicas, cfg.Retention)
	}
	cfg, err = parseConfig(nil, io.Discard)
	if err != nil || cfg.Retention.KeepVersions != 0 {
		t.Fatalf("default retention: %+v, %v (want off)", cfg.Retention, err)
	}
	for body, want := range map[string]string{
		"retention:\n  keep_versions: -1\n":   "retention.keep_versions -1",
		"retention:\n  interval: -1s\n":       "retention.interval -1s",
		"replicas:\n  cache_max_stale: -2s\n": "replicas.cache_max_stale -2s",
		"retention:\n  keep_versions: many\n": "cannot unmarshal",
	} {
		_, err := parseConfig([]string{"--config", write("bad.yaml", body)}, io.Discard)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want an error containing %q", body, err, want)
		}
	}
}
