// Package e2e finds the local stack (Docker Engine, registry, cluster) for
// end-to-end tests. End-to-end tests carry the build tag `e2e`; when the
// stack is missing they fail with a message saying how to start it, never
// skip.
package e2e

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"

	"github.com/testship/testship/internal/syncio"
	"github.com/testship/testship/pkg/config"
)

// DevDir returns the local stack's state directory (TESTSHIP_DEV_DIR).
func DevDir() string { return config.Get(config.DevDir) }

// Kubeconfig returns the path of a kubeconfig for the test cluster:
// $KUBECONFIG when set, else the local stack's admin kubeconfig. It fails
// the test when neither exists.
func Kubeconfig(t testing.TB) string {
	t.Helper()
	path := config.Get(config.Kubeconfig)
	if path == "" {
		path = filepath.Join(DevDir(), "kubeconfig")
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("e2e: no cluster: kubeconfig %s: %v; run `mage dev:up` (or set KUBECONFIG) before the end-to-end tests", path, err)
	}
	return path
}

// Registry returns the address of the local stack's registry
// ($TESTSHIP_E2E_REGISTRY, default 127.0.0.1:5000), failing the test when it
// does not answer the registry API.
func Registry(t testing.TB) string {
	t.Helper()
	addr := os.Getenv("TESTSHIP_E2E_REGISTRY")
	if addr == "" {
		addr = "127.0.0.1:5000"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v2/", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("e2e: no registry at %s: %v; run `mage dev:up` before the end-to-end tests", addr, err)
	}
	resp.Body.Close()
	return addr
}

// Docker fails the test unless a Docker Engine answers on its socket
// ($DOCKER_HOST or /var/run/docker.sock).
func Docker(t testing.TB) {
	t.Helper()
	sock := "/var/run/docker.sock"
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		return // the client reports a bad DOCKER_HOST itself, naming it
	}
	c, err := net.DialTimeout("unix", sock, 2*time.Second)
	if err != nil {
		t.Fatalf("e2e: no Docker Engine at %s: %v; run `mage dev:up` (or start dockerd) before the end-to-end tests", sock, err)
	}
	c.Close()
}

// SyncBuffer collects output written by one goroutine (a command, a
// follower) while the test reads it from another: syncio.Buffer, under the
// name the end-to-end tests use.
type SyncBuffer = syncio.Buffer

// Objects lists, as sorted kind/name, the objects of namespace ns that a
// testship run creates (Jobs, pods, Secrets, ServiceAccounts, Roles,
// RoleBindings, Leases) and that match the label selector: what a test
// expects gone after a run, or unchanged around a refused one.
func Objects(cs kubernetes.Interface, ns, selector string) []string {
	ctx := context.Background()
	lo := metav1.ListOptions{LabelSelector: selector}
	lists := []struct {
		kind string
		list func() (runtime.Object, error)
	}{
		{"job", func() (runtime.Object, error) { return cs.BatchV1().Jobs(ns).List(ctx, lo) }},
		{"pod", func() (runtime.Object, error) { return cs.CoreV1().Pods(ns).List(ctx, lo) }},
		{"secret", func() (runtime.Object, error) { return cs.CoreV1().Secrets(ns).List(ctx, lo) }},
		{"serviceaccount", func() (runtime.Object, error) { return cs.CoreV1().ServiceAccounts(ns).List(ctx, lo) }},
		{"role", func() (runtime.Object, error) { return cs.RbacV1().Roles(ns).List(ctx, lo) }},
		{"rolebinding", func() (runtime.Object, error) { return cs.RbacV1().RoleBindings(ns).List(ctx, lo) }},
		{"lease", func() (runtime.Object, error) { return cs.CoordinationV1().Leases(ns).List(ctx, lo) }},
	}
	var out []string
	for _, l := range lists {
		obj, err := l.list()
		if err != nil {
			continue
		}
		_ = meta.EachListItem(obj, func(o runtime.Object) error {
			if a, err := meta.Accessor(o); err == nil {
				out = append(out, l.kind+"/"+a.GetName())
			}
			return nil
		})
	}
	sort.Strings(out)
	return out
}
