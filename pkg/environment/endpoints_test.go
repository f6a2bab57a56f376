package environment

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"
)

func TestServices(t *testing.T) {
	manifest := `---
apiVersion: v1
kind: Service
metadata:
  name: web
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
---
apiVersion: v1
kind: Service
metadata:
  name: db
---
apiVersion: example.com/v1
kind: Service
metadata:
  name: not-core
`
	if got, want := services(manifest), []string{"db", "web"}; !reflect.DeepEqual(got, want) {
		t.Errorf("services = %v, want %v", got, want)
	}
}

func svc(name string, selector map[string]string, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"},
		Spec: corev1.ServiceSpec{Selector: selector, Ports: ports}}
}

func slice(name, service string, ready *bool, ports ...discoveryv1.EndpointPort) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: name, Namespace: "ns", Labels: map[string]string{discoveryv1.LabelServiceName: service}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.1.0.5"}, Conditions: discoveryv1.EndpointConditions{Ready: ready}}},
		Ports:       ports,
	}
}

func epPort(name string, port int32) discoveryv1.EndpointPort {
	return discoveryv1.EndpointPort{Name: ptr.To(name), Port: ptr.To(port), Protocol: ptr.To(corev1.ProtocolTCP)}
}

func TestUnservedPorts(t *testing.T) {
	http := corev1.ServicePort{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}
	metrics := corev1.ServicePort{Name: "metrics", Port: 9090}
	udp := corev1.ServicePort{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP}
	s := svc("web", map[string]string{"app": "web"}, http, metrics, udp)
	names := func(ps []corev1.ServicePort) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.Name)
		}
		return out
	}
	cases := []struct {
		name   string
		slices []*discoveryv1.EndpointSlice
		want   []string
	}{
		{"no slices", nil, []string{"http", "metrics", "dns"}},
		{"not ready", []*discoveryv1.EndpointSlice{slice("a", "web", ptr.To(false), epPort("http", 8080), epPort("metrics", 9090))}, []string{"http", "metrics", "dns"}},
		{"ready nil means ready", []*discoveryv1.EndpointSlice{slice("a", "web", nil, epPort("http", 8080))}, []string{"metrics", "dns"}},
		{"protocol must match", []*discoveryv1.EndpointSlice{slice("a", "web", ptr.To(true), epPort("http", 8080), epPort("dns", 53))}, []string{"metrics", "dns"}},
		{"ports spread over slices", []*discoveryv1.EndpointSlice{
			slice("a", "web", ptr.To(true), epPort("http", 8080), epPort("metrics", 9090)),
			slice("b", "web", ptr.To(true), discoveryv1.EndpointPort{Name: ptr.To("dns"), Port: ptr.To(int32(53)), Protocol: ptr.To(corev1.ProtocolUDP)}),
		}, nil},
	}
	for _, c := range cases {
		if got := names(unservedPorts(s, c.slices)); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: unserved %v, want %v", c.name, got, c.want)
		}
	}
	// A single unnamed port matches the slice's unnamed port.
	unnamed := svc("one", map[string]string{"app": "one"}, corev1.ServicePort{Port: 80})
	if got := unservedPorts(unnamed, []*discoveryv1.EndpointSlice{slice("a", "one", ptr.To(true), epPort("", 8080))}); len(got) != 0 {
		t.Errorf("unnamed port: unserved %v", got)
	}
}

func TestWaitEndpointsWatches(t *testing.T) {
	web := svc("web", map[string]string{"app": "web"}, corev1.ServicePort{Name: "http", Port: 80})
	cs := fake.NewClientset(web, slice("web-abc", "web", ptr.To(false), epPort("http", 8080)))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- waitEndpoints(ctx, cs, "ns", "chart", []string{"web"}, 30*time.Second) }()

	// Not done while the only endpoint is not ready. Then the endpoint
	// becomes ready: the watch sees it and the wait ends.
	select {
	case err := <-done:
		t.Fatalf("wait ended with no ready endpoint: %v", err)
	default:
	}
	ready := slice("web-abc", "web", ptr.To(true), epPort("http", 8080))
	if _, err := cs.DiscoveryV1().EndpointSlices("ns").Update(ctx, ready, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("wait: %v", err)
	}
}

func TestWaitEndpointsTimeoutNamesService(t *testing.T) {
	web := svc("web", map[string]string{"app": "web"}, corev1.ServicePort{Name: "http", Port: 80})
	cs := fake.NewClientset(web, slice("web-abc", "web", ptr.To(false), epPort("http", 8080)))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := waitEndpoints(ctx, cs, "ns", "chart", []string{"web"}, 200*time.Millisecond)
	if err == nil || !errors.Is(err, ErrNotReady) || !strings.Contains(err.Error(), "Service web has no ready endpoint for port http (80/TCP)") {
		t.Fatalf("err = %v, want ErrNotReady naming Service web and its port", err)
	}
	t.Log(err)
}

func TestWaitEndpointsSkipsServicesWithoutSelector(t *testing.T) {
	ext := svc("ext", nil, corev1.ServicePort{Port: 80})
	name := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "name", Namespace: "ns"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "example.com", Selector: map[string]string{"a": "b"}}}
	cs := fake.NewClientset(ext, name)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // any wait at all would fail
	if err := waitEndpoints(ctx, cs, "ns", "chart", []string{"ext", "name", "gone"}, time.Second); err != nil {
		t.Fatalf("err = %v, want nothing to wait for", err)
	}
}
