package config

import (
	"errors"
	"testing"
	"time"
)

func TestParsePodSecurity(t *testing.T) {
	for in, want := range map[string]string{"": "restricted", "Restricted": "restricted", "baseline": "baseline",
		"privileged": "privileged", "off": "off", "NONE": "off"} {
		if got, err := ParsePodSecurity(in); err != nil || got != want {
			t.Errorf("ParsePodSecurity(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	_, err := ParsePodSecurity("strict")
	var ce *Error
	if !errors.As(err, &ce) || ce.Name != "ENV_POD_SECURITY" || ce.Value != "strict" {
		t.Errorf("ParsePodSecurity(strict) = %v, want a *config.Error naming ENV_POD_SECURITY", err)
	}
}

func TestParseTTL(t *testing.T) {
	for in, want := range map[string]time.Duration{"": 6 * time.Hour, "5m": 5 * time.Minute, "24h": 24 * time.Hour, "168h": 168 * time.Hour} {
		if got, err := ParseTTL(in); err != nil || got != want {
			t.Errorf("ParseTTL(%q) = %s, %v; want %s", in, got, err, want)
		}
	}
	for _, bad := range []string{"1m", "169h", "-1h", "soon", "0"} {
		_, err := ParseTTL(bad)
		var ce *Error
		if !errors.As(err, &ce) || ce.Name != "ENV_TTL" {
			t.Errorf("ParseTTL(%q) = %v, want a *config.Error naming ENV_TTL", bad, err)
		}
	}
}

func TestLoadEnvSafety(t *testing.T) {
	t.Setenv("ENV_USE_EXISTING_NAMESPACE", "true")
	t.Setenv("ENV_POD_SECURITY", "baseline")
	t.Setenv("ENV_TTL", "2h")
	t.Setenv("ENV_PRUNE_CONFIRM", "")
	s, err := loadEnvSafetyOnly()
	if err != nil || !s.UseExistingNamespace || s.PodSecurity != "baseline" || s.TTL != 2*time.Hour || s.PruneConfirm {
		t.Errorf("loadEnvSafetyOnly() = %+v, %v", s, err)
	}
	t.Setenv("ENV_PRUNE_CONFIRM", "maybe")
	if _, err := loadEnvSafetyOnly(); err == nil {
		t.Error("ENV_PRUNE_CONFIRM=maybe accepted")
	}
}

func loadEnvSafetyOnly() (EnvSafety, error) {
	c := &checker{}
	s := loadEnvSafety(c)
	return s, c.err()
}
