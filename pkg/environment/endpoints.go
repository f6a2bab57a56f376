package environment

import (
	"context"
	"errors"
	"fmt"
	"github.com/testship/testship/pkg/kube"
	"sort"
	"strings"
	"time"

	"helm.sh/helm/v3/pkg/releaseutil"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
	"sigs.k8s.io/yaml"
)

// services lists the names of the Services in a rendered release manifest,
// sorted.
func services(manifest string) []string {
	var out []string
	for _, doc := range releaseutil.SplitManifests(manifest) {
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if yaml.Unmarshal([]byte(doc), &head) != nil {
			continue
		}
		if head.Kind == "Service" && head.APIVersion == "v1" && head.Metadata.Name != "" {
			out = append(out, head.Metadata.Name)
		}
	}
	sort.Strings(out)
	return out
}

// portName names a Service port in messages.
func portName(p corev1.ServicePort) string {
	if p.Name != "" {
		return fmt.Sprintf("%s (%d/%s)", p.Name, p.Port, protocol(p.Protocol))
	}
	return fmt.Sprintf("%d/%s", p.Port, protocol(p.Protocol))
}

func protocol(p corev1.Protocol) corev1.Protocol {
	if p == "" {
		return corev1.ProtocolTCP
	}
	return p
}

// unservedPorts returns the ports of svc that no ready endpoint of slices
// (the Service's EndpointSlices) serves yet, in the Service's order.
func unservedPorts(svc *corev1.Service, slices []*discoveryv1.EndpointSlice) []corev1.ServicePort {
	var out []corev1.ServicePort
	for _, sp := range svc.Spec.Ports {
		if !served(sp, slices) {
			out = append(out, sp)
		}
	}
	return out
}

// served reports whether one of slices lists the Service port sp (matched by
// name and protocol, as kube-proxy does) and a ready endpoint.
func served(sp corev1.ServicePort, slices []*discoveryv1.EndpointSlice) bool {
	for _, s := range slices {
		hasPort := false
		for _, p := range s.Ports {
			name := ""
			if p.Name != nil {
				name = *p.Name
			}
			proto := corev1.ProtocolTCP
			if p.Protocol != nil {
				proto = *p.Protocol
			}
			if name == sp.Name && proto == protocol(sp.Protocol) && p.Port != nil {
				hasPort = true
				break
			}
		}
		if !hasPort {
			continue
		}
		for _, ep := range s.Endpoints {
			// A nil Ready means ready (the API's documented default).
			if len(ep.Addresses) > 0 && (ep.Conditions.Ready == nil || *ep.Conditions.Ready) {
				return true
			}
		}
	}
	return false
}

// waitEndpoints waits until every named Service with a selector has, in its
// EndpointSlices, a ready endpoint for each of its ports: until then a
// connection to the Service's IP finds nothing behind it. It lists, then
// watches the namespace's EndpointSlices (no polling); ctx bounds the wait.
// The error at the deadline names the first Service still waiting and its
// ports.
func waitEndpoints(ctx context.Context, cs kubernetes.Interface, ns, chartName string, names []string, timeout time.Duration) error {
	var svcs []*corev1.Service
	for _, name := range names {
		svc, err := cs.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue // removed by a hook or another tool: nothing to reach
		}
		if err != nil {
			if ctx.Err() != nil {
				return endpointsError(ctx, chartName, ns, fmt.Sprintf("Service %s: %v", name, err), timeout)
			}
			return fmt.Errorf("chart %s: Service %s: %w", chartName, name, err)
		}
		// ExternalName Services and Services without a selector have no
		// endpoints managed by Kubernetes: nothing to wait for.
		if len(svc.Spec.Selector) == 0 || svc.Spec.Type == corev1.ServiceTypeExternalName || len(svc.Spec.Ports) == 0 {
			continue
		}
		svcs = append(svcs, svc)
	}
	if len(svcs) == 0 {
		return nil
	}

	lw := &kube.ListWatch{ListWatch: cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return cs.DiscoveryV1().EndpointSlices(ns).List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return cs.DiscoveryV1().EndpointSlices(ns).Watch(ctx, o)
		},
	}}
	var waiting string // the last Service found not served, for the error
	check := func(store cache.Store) bool {
		bySvc := map[string][]*discoveryv1.EndpointSlice{}
		for _, obj := range store.List() {
			if s, ok := obj.(*discoveryv1.EndpointSlice); ok && s.Labels[discoveryv1.LabelServiceName] != "" {
				bySvc[s.Labels[discoveryv1.LabelServiceName]] = append(bySvc[s.Labels[discoveryv1.LabelServiceName]], s)
			}
		}
		for _, svc := range svcs {
			if missing := unservedPorts(svc, bySvc[svc.Name]); len(missing) > 0 {
				var ports []string
				for _, p := range missing {
					ports = append(ports, portName(p))
				}
				waiting = fmt.Sprintf("Service %s has no ready endpoint for port %s", svc.Name, strings.Join(ports, ", "))
				return false
			}
		}
		return true
	}
	var store cache.Store
	_, err := watchtools.UntilWithSync(ctx, lw, &discoveryv1.EndpointSlice{}, func(s cache.Store) (bool, error) {
		store = s
		return check(s), nil
	}, func(watch.Event) (bool, error) {
		// The informer has applied the event to the store before the
		// condition sees it.
		return check(store), nil
	})
	if err != nil {
		if ctx.Err() != nil {
			return endpointsError(ctx, chartName, ns, waiting, timeout)
		}
		return fmt.Errorf("chart %s: waiting for the endpoints of its Services: %w", chartName, err)
	}
	return nil
}

func endpointsError(ctx context.Context, chartName, ns, waiting string, timeout time.Duration) error {
	if errors.Is(ctx.Err(), context.Canceled) {
		return fmt.Errorf("chart %s: waiting for Service endpoints: %w", chartName, ctx.Err())
	}
	if waiting == "" {
		waiting = "the Services' EndpointSlices could not be listed"
	}
	// Still ErrNotReady, without its "workloads not ready" text: they are.
	return &condensed{fmt.Sprintf("chart %s: workloads ready but Services not reachable in namespace %s after %s (ENV_TIMEOUT): %s",
		chartName, ns, timeout, waiting), ErrNotReady}
}
