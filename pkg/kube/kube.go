// Package kube loads the Kubernetes client configuration and offers the few
// client-go helpers the rest of testship shares: a Helm RESTClientGetter over
// a rest.Config and port-forwarding to pods and Services.
package kube

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/testship/testship/pkg/config"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
)

// DevKubeconfig is the local stack's admin kubeconfig (see `mage dev:up`):
// <TESTSHIP_DEV_DIR>/kubeconfig.
func DevKubeconfig() string { return filepath.Join(config.Get(config.DevDir), "kubeconfig") }

// Source says where a Config came from.
type Source string

const (
	SourceKubeconfigEnv Source = "$KUBECONFIG"
	SourceInCluster     Source = "in-cluster service account"
	SourceHome          Source = "~/.kube/config"
	SourceDev           Source = "local stack (TESTSHIP_DEV_DIR)"
)

// Config is a loaded client configuration.
type Config struct {
	REST   *rest.Config
	Source Source
	Path   string // kubeconfig file, "" in-cluster
}

// InCluster reports whether the configuration is the pod's service account,
// i.e. this process runs inside the cluster and Service DNS names resolve.
func (c *Config) InCluster() bool { return c.Source == SourceInCluster }

// Clientset returns a typed client for the configuration.
func (c *Config) Clientset() (kubernetes.Interface, error) {
	return kubernetes.NewForConfig(c.REST)
}

// Load finds the cluster, in this order: $KUBECONFIG, the in-cluster service
// account, ~/.kube/config, the local stack's kubeconfig.
func Load() (*Config, error) {
	if env := config.Get(config.Kubeconfig); env != "" {
		rc, err := fromFiles(filepath.SplitList(env))
		if err != nil {
			return nil, fmt.Errorf("%s=%q: %w", config.Kubeconfig, env, err)
		}
		return &Config{REST: rc, Source: SourceKubeconfigEnv, Path: env}, nil
	}
	if os.Getenv("KUBERNETES_SERVICE_HOST") != "" {
		rc, err := rest.InClusterConfig()
		if err == nil {
			return &Config{REST: tune(rc), Source: SourceInCluster}, nil
		}
		if !errors.Is(err, rest.ErrNotInCluster) {
			return nil, fmt.Errorf("in-cluster configuration: %w", err)
		}
	}
	if home, err := os.UserHomeDir(); err == nil {
		p := filepath.Join(home, ".kube", "config")
		if _, err := os.Stat(p); err == nil {
			rc, err := fromFiles([]string{p})
			if err != nil {
				return nil, fmt.Errorf("%s: %w", p, err)
			}
			return &Config{REST: rc, Source: SourceHome, Path: p}, nil
		}
	}
	if dev := DevKubeconfig(); fileExists(dev) {
		rc, err := fromFiles([]string{dev})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", dev, err)
		}
		return &Config{REST: rc, Source: SourceDev, Path: dev}, nil
	}
	return nil, errors.New("no Kubernetes cluster configured: set KUBECONFIG, run inside a pod, " +
		"create ~/.kube/config, or start the local stack with `mage dev:up`")
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func fromFiles(paths []string) (*rest.Config, error) {
	rules := &clientcmd.ClientConfigLoadingRules{Precedence: paths}
	rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, err
	}
	return tune(rc), nil
}

// tune raises client-side rate limits: Helm and the readiness watches make
// bursts of requests and the defaults (5 QPS) slow a deploy down for nothing.
func tune(rc *rest.Config) *rest.Config {
	if rc.QPS == 0 {
		rc.QPS = 50
	}
	if rc.Burst == 0 {
		rc.Burst = 100
	}
	return rc
}

// ListWatch is a plain list-then-watch for client-go's watch tools
// (UntilWithSync): it opts out of the streaming WatchList protocol, which
// the fake clientset does not speak and which needs etcd progress
// notifications that older etcd servers lack.
type ListWatch struct{ cache.ListWatch }

// IsWatchListSemanticsUnSupported tells client-go's reflector to list,
// then watch.
func (*ListWatch) IsWatchListSemanticsUnSupported() bool { return true }

var labelUnsafe = regexp.MustCompile(`[^-_.a-zA-Z0-9]+`)

// LabelValue turns s into a valid label value: s itself when valid,
// otherwise a readable prefix plus a hash of s, at most 63 characters.
func LabelValue(s string) string {
	clean := strings.Trim(labelUnsafe.ReplaceAllString(s, "_"), "-_.")
	if clean == s && len(s) <= 63 {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	h := hex.EncodeToString(sum[:])[:10]
	if len(clean) > 52 {
		clean = strings.Trim(clean[:52], "-_.")
	}
	if clean == "" {
		return h
	}
	return clean + "-" + h
}
