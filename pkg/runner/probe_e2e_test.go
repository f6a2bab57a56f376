//go:build e2e

package runner_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/testship/testship/internal/e2e"
	"github.com/testship/testship/internal/testimage"
)

// probeImage is the probe image by digest (internal/testimage.Probe).
func probeImage(t testing.TB) string {
	t.Helper()
	ref, _ := testimage.Probe(t, e2e.Registry(t))
	return ref
}

// counting counts API requests and can cut log streams short.
type counting struct {
	next     http.RoundTripper
	requests atomic.Int64
	// breakLogsAfter, when > 0, ends each followed log stream with an
	// error after that many bytes (a broken connection).
	breakLogsAfter int64
	broken         atomic.Int64
}

func (c *counting) RoundTrip(req *http.Request) (*http.Response, error) {
	c.requests.Add(1)
	resp, err := c.next.RoundTrip(req)
	if err == nil && c.breakLogsAfter > 0 && strings.HasSuffix(req.URL.Path, "/log") && req.URL.Query().Get("follow") == "true" {
		resp.Body = &cutBody{ReadCloser: resp.Body, left: c.breakLogsAfter, broken: &c.broken}
	}
	return resp, err
}

type cutBody struct {
	io.ReadCloser
	left   int64
	broken *atomic.Int64
}

func (b *cutBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		b.broken.Add(1)
		return 0, io.ErrUnexpectedEOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	return n, err
}

type cluster struct {
	cs      kubernetes.Interface
	counter *counting
	ns      string
}

// newCluster connects to the local stack and makes a namespace for the
// test, deleted at its end.
func newCluster(t testing.TB, breakLogsAfter int64) *cluster {
	t.Helper()
	rc, err := clientcmd.BuildConfigFromFlags("", e2e.Kubeconfig(t))
	if err != nil {
		t.Fatal(err)
	}
	rc.QPS, rc.Burst = 50, 100
	c := &cluster{counter: &counting{breakLogsAfter: breakLogsAfter}}
	rc.Wrap(func(rt http.RoundTripper) http.RoundTripper { c.counter.next = rt; return c.counter })
	c.cs, err = kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	var b [3]byte
	rand.Read(b[:])
	c.ns = "testship-runner-e2e-" + hex.EncodeToString(b[:])
	ctx := context.Background()
	if _, err := c.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: c.ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.cs.CoreV1().Namespaces().Delete(context.Background(), c.ns, metav1.DeleteOptions{})
	})
	// The namespace's default ServiceAccount appears shortly after it; the
	// runner uses its own, so nothing to wait for.
	return c
}
