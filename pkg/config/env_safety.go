package config

import (
	"strings"
	"time"
)

// Variables that keep the environment step safe on a shared cluster: which
// namespaces it may use, the Pod Security level of the namespaces it
// creates, when its environments expire and whether env:prune deletes.
var (
	EnvUseExistingNamespace = Declare(Var{Name: "ENV_USE_EXISTING_NAMESPACE", Default: "false", Area: "env",
		Help: "true: deploy into an existing namespace testship did not create (testship then never deletes that namespace); otherwise such a namespace is refused"})
	EnvPodSecurity = Declare(Var{Name: "ENV_POD_SECURITY", Default: "restricted", Area: "env",
		Help: "Pod Security Standard enforced on namespaces testship creates (label pod-security.kubernetes.io/enforce): restricted, baseline, privileged or off (no label)"})
	EnvTTL = Declare(Var{Name: "ENV_TTL", Default: "6h", Area: "env",
		Help: "how long an environment lives after its last deploy (annotation testship.dev/expires-at; each deploy extends it, never shortens it); env:prune removes expired ones. Between 5m and 168h"})
	EnvPruneConfirm = Declare(Var{Name: "ENV_PRUNE_CONFIRM", Default: "false", Area: "env",
		Help: "true: env:prune deletes the expired testship environments it lists; otherwise it only prints what it would remove"})
)

// Bounds of ENV_TTL.
const (
	MinEnvTTL = 5 * time.Minute
	MaxEnvTTL = 7 * 24 * time.Hour
)

// Pod Security levels of ENV_POD_SECURITY.
const (
	PodSecurityRestricted = "restricted"
	PodSecurityBaseline   = "baseline"
	PodSecurityPrivileged = "privileged"
	PodSecurityOff        = "off"
)

// EnvSafety is the validated configuration of the environment step's
// shared-cluster safety.
type EnvSafety struct {
	UseExistingNamespace bool
	PodSecurity          string // restricted, baseline, privileged or off
	TTL                  time.Duration
	PruneConfirm         bool
}

// ParsePodSecurity parses an ENV_POD_SECURITY value (any case; empty means
// restricted; none, false and disabled mean off).
func ParsePodSecurity(s string) (string, error) {
	switch v := strings.ToLower(strings.TrimSpace(s)); v {
	case "":
		return PodSecurityRestricted, nil
	case PodSecurityRestricted, PodSecurityBaseline, PodSecurityPrivileged, PodSecurityOff:
		return v, nil
	case "none", "false", "disabled":
		return PodSecurityOff, nil
	}
	return "", &Error{Name: EnvPodSecurity, Value: s, Want: "restricted, baseline, privileged or off"}
}

// ParseTTL parses an ENV_TTL value: a Go duration between MinEnvTTL and
// MaxEnvTTL; empty means the default, 6h.
func ParseTTL(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 6 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < MinEnvTTL || d > MaxEnvTTL {
		return 0, &Error{Name: EnvTTL, Value: s, Want: "a Go duration between 5m and 168h, such as 2h or 24h"}
	}
	return d, nil
}

// loadEnvSafety reads ENV_USE_EXISTING_NAMESPACE, ENV_POD_SECURITY,
// ENV_TTL and ENV_PRUNE_CONFIRM (part of the env area of Load).
func loadEnvSafety(c *checker) EnvSafety {
	var s EnvSafety
	var err error
	s.UseExistingNamespace = c.bool(EnvUseExistingNamespace)
	s.PodSecurity, err = ParsePodSecurity(Get(EnvPodSecurity))
	c.add(EnvPodSecurity, err)
	s.TTL, err = ParseTTL(Get(EnvTTL))
	c.add(EnvTTL, err)
	s.PruneConfirm = c.bool(EnvPruneConfirm)
	return s
}
