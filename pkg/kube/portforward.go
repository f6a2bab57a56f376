package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
	streamhttp "k8s.io/streaming/pkg/httpstream"
)

// Forward is a running port-forward from 127.0.0.1:LocalPort to a pod's port.
type Forward struct {
	Namespace, Pod string
	PodPort        int
	LocalPort      int

	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// Addr is the local address, 127.0.0.1:<port>.
func (f *Forward) Addr() string { return "127.0.0.1:" + strconv.Itoa(f.LocalPort) }

// Close stops the forward and waits for it to end.
func (f *Forward) Close() {
	f.once.Do(func() {
		f.cancel()
		<-f.done
	})
}

// PortForwardPod forwards a free local port to the pod's port until ctx ends
// or Close is called. It tries the WebSocket tunnel first and falls back to
// SPDY, like kubectl.
func PortForwardPod(ctx context.Context, rc *rest.Config, namespace, pod string, port int) (*Forward, error) {
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	u := cs.CoreV1().RESTClient().Post().Resource("pods").Namespace(namespace).Name(pod).SubResource("portforward").URL()

	transport, upgrader, err := spdy.RoundTripperFor(rc)
	if err != nil {
		return nil, err
	}
	dialer := spdy.NewDialerForStreaming(upgrader, &http.Client{Transport: transport}, http.MethodPost, u)
	if ws, err := portforward.NewSPDYOverWebsocketDialerForStreaming(u, rc); err == nil {
		dialer = portforward.NewFallbackDialerForStreaming(ws, dialer, func(err error) bool {
			return streamhttp.IsUpgradeFailure(err) || streamhttp.IsHTTPSProxyError(err)
		})
	}

	fctx, cancel := context.WithCancel(ctx)
	stop := make(chan struct{})
	ready := make(chan struct{})
	pf, err := portforward.NewOnAddressesForStreaming(dialer, []string{"127.0.0.1"}, []string{"0:" + strconv.Itoa(port)}, stop, ready, io.Discard, io.Discard)
	if err != nil {
		cancel()
		return nil, err
	}
	f := &Forward{Namespace: namespace, Pod: pod, PodPort: port, cancel: cancel, done: make(chan struct{})}
	errc := make(chan error, 1)
	go func() {
		errc <- pf.ForwardPorts()
		close(f.done)
	}()
	go func() {
		<-fctx.Done()
		close(stop)
	}()
	select {
	case <-ready:
	case err := <-errc:
		cancel()
		if err == nil {
			err = errors.New("port-forward ended before it was ready")
		}
		return nil, fmt.Errorf("port-forward to pod %s/%s port %d: %w", namespace, pod, port, err)
	case <-ctx.Done():
		cancel()
		<-f.done
		return nil, ctx.Err()
	}
	ports, err := pf.GetPorts()
	if err != nil || len(ports) == 0 {
		f.Close()
		return nil, fmt.Errorf("port-forward to pod %s/%s: no local port: %v", namespace, pod, err)
	}
	f.LocalPort = int(ports[0].Local)
	return f, nil
}

// ReadyPods returns the ready, running pods matching the selector, sorted by
// name.
func ReadyPods(ctx context.Context, cs kubernetes.Interface, namespace, selector string) ([]corev1.Pod, error) {
	list, err := cs.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, err
	}
	var out []corev1.Pod
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning && PodReady(&p) {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// PodReady reports the pod's Ready condition.
func PodReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// ServiceTarget finds a ready pod behind the Service and the pod port that
// the Service's port maps to.
func ServiceTarget(ctx context.Context, cs kubernetes.Interface, namespace, service string, port int) (*corev1.Pod, int, error) {
	svc, err := cs.CoreV1().Services(namespace).Get(ctx, service, metav1.GetOptions{})
	if err != nil {
		return nil, 0, fmt.Errorf("service %s/%s: %w", namespace, service, err)
	}
	var sp *corev1.ServicePort
	for i := range svc.Spec.Ports {
		if int(svc.Spec.Ports[i].Port) == port {
			sp = &svc.Spec.Ports[i]
		}
	}
	if sp == nil {
		return nil, 0, fmt.Errorf("service %s/%s has no port %d", namespace, service, port)
	}
	if len(svc.Spec.Selector) == 0 {
		return nil, 0, fmt.Errorf("service %s/%s has no selector; cannot port-forward to it", namespace, service)
	}
	pods, err := ReadyPods(ctx, cs, namespace, labels.SelectorFromSet(svc.Spec.Selector).String())
	if err != nil {
		return nil, 0, err
	}
	if len(pods) == 0 {
		return nil, 0, fmt.Errorf("service %s/%s: no ready pod behind it", namespace, service)
	}
	pod := &pods[0]
	target, err := TargetPort(pod, sp.TargetPort, port)
	return pod, target, err
}

// TargetPort resolves a Service targetPort (number or name; zero means the
// Service port) against the pod's container ports.
func TargetPort(pod *corev1.Pod, tp intstr.IntOrString, servicePort int) (int, error) {
	if tp.Type == intstr.Int {
		if tp.IntVal == 0 {
			return servicePort, nil
		}
		return int(tp.IntVal), nil
	}
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.Name == tp.StrVal {
				return int(p.ContainerPort), nil
			}
		}
	}
	return 0, fmt.Errorf("pod %s has no container port named %q", pod.Name, tp.StrVal)
}

// PortForwardService forwards a local port to a ready pod behind the Service,
// at the pod port the Service's port maps to (what `kubectl port-forward
// svc/...` does).
func PortForwardService(ctx context.Context, rc *rest.Config, namespace, service string, port int) (*Forward, error) {
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	pod, target, err := ServiceTarget(ctx, cs, namespace, service, port)
	if err != nil {
		return nil, err
	}
	return PortForwardPod(ctx, rc, namespace, pod.Name, target)
}
