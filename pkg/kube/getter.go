package kube

import (
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Getter is a RESTClientGetter (the interface Helm and cli-runtime want)
// built over a rest.Config, so Helm works in a pod where no kubeconfig file
// exists. Namespace is the namespace Helm operates in.
type Getter struct {
	Config    *rest.Config
	Namespace string

	discovery discovery.CachedDiscoveryInterface
	mapper    meta.RESTMapper
}

// NewGetter returns a Getter for the namespace.
func NewGetter(rc *rest.Config, namespace string) *Getter {
	return &Getter{Config: rc, Namespace: namespace}
}

// ToRESTConfig returns a copy of the configuration.
func (g *Getter) ToRESTConfig() (*rest.Config, error) { return rest.CopyConfig(g.Config), nil }

// ToDiscoveryClient returns a memory-cached discovery client, made once.
func (g *Getter) ToDiscoveryClient() (discovery.CachedDiscoveryInterface, error) {
	if g.discovery != nil {
		return g.discovery, nil
	}
	dc, err := discovery.NewDiscoveryClientForConfig(rest.CopyConfig(g.Config))
	if err != nil {
		return nil, err
	}
	g.discovery = memory.NewMemCacheClient(dc)
	return g.discovery, nil
}

// ToRESTMapper returns a deferred mapper that re-discovers on a miss, so a
// CRD installed by one chart is found by the next.
func (g *Getter) ToRESTMapper() (meta.RESTMapper, error) {
	if g.mapper != nil {
		return g.mapper, nil
	}
	dc, err := g.ToDiscoveryClient()
	if err != nil {
		return nil, err
	}
	m := restmapper.NewDeferredDiscoveryRESTMapper(dc)
	g.mapper = restmapper.NewShortcutExpander(m, dc, nil)
	return g.mapper, nil
}

// ToRawKubeConfigLoader returns a loader that only knows the namespace;
// Helm asks it for nothing else once given a rest.Config.
func (g *Getter) ToRawKubeConfigLoader() clientcmd.ClientConfig {
	return nsOnly{g}
}

type nsOnly struct{ g *Getter }

func (n nsOnly) RawConfig() (clientcmdapi.Config, error) { return *clientcmdapi.NewConfig(), nil }
func (n nsOnly) ClientConfig() (*rest.Config, error)     { return rest.CopyConfig(n.g.Config), nil }
func (n nsOnly) Namespace() (string, bool, error) {
	if n.g.Namespace == "" {
		return "default", false, nil
	}
	return n.g.Namespace, true, nil
}
func (n nsOnly) ConfigAccess() clientcmd.ConfigAccess { return clientcmd.NewDefaultPathOptions() }
