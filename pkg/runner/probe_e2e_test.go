//go:build e2e

package runner_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/testship/testship/internal/e2e"
)

// The probe image: pkg/runner/testdata/probe compiled with `go test -c`,
// FROM scratch, ENTRYPOINT /testship/run, uid 65532, pushed to the local
// registry once per test process.
var (
	probeOnce sync.Once
	probeRef  string
	probeErr  error
)

func probeImage(t testing.TB) string {
	t.Helper()
	reg := e2e.Registry(t)
	probeOnce.Do(func() { probeRef, probeErr = buildProbe(reg) })
	if probeErr != nil {
		t.Fatalf("build the probe image: %v", probeErr)
	}
	return probeRef
}

func buildProbe(registry string) (string, error) {
	dir, err := os.MkdirTemp("", "testship-probe-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "run")
	cmd := exec.Command("go", "test", "-c", "-o", bin, "./testdata/probe")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go test -c ./testdata/probe: %v\n%s", err, out)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range []*tar.Header{
		{Name: "testship/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o1777},
		{Name: "testship/run", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(data))},
	} {
		if err := tw.WriteHeader(h); err != nil {
			return "", err
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write(data)
		}
	}
	tw.Close()
	layerBytes := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layerBytes)), nil })
	if err != nil {
		return "", err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return "", err
	}
	img, err = mutate.ConfigFile(img, &v1.ConfigFile{
		OS: "linux", Architecture: goruntime.GOARCH,
		Config: v1.Config{Entrypoint: []string{"/testship/run"}, User: "65532:65532", WorkingDir: "/tmp", Env: []string{"HOME=/tmp"}},
	})
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	ref, err := name.ParseReference(registry+"/testship/runner-probe:"+hex.EncodeToString(sum[:])[:16], name.Insecure)
	if err != nil {
		return "", err
	}
	if err := remote.Write(ref, img); err != nil {
		return "", fmt.Errorf("push %s: %w", ref, err)
	}
	dig, err := img.Digest()
	if err != nil {
		return "", err
	}
	return ref.Context().Name() + "@" + dig.String(), nil
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
