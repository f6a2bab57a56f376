//go:build e2e

package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	stack "github.com/testship/testship/internal/e2e"
	"github.com/testship/testship/internal/testimage"
	"github.com/testship/testship/pkg/runner"
)

// cluster is a test's namespace on the local stack: a fresh name, not yet
// created (the targets under test create it), deleted at the test's end.
type cluster struct {
	cs kubernetes.Interface
	ns string
}

func newCluster(t testing.TB) *cluster {
	t.Helper()
	var b [3]byte
	rand.Read(b[:])
	c := &cluster{cs: clientset(t), ns: "testship-e2e-" + hex.EncodeToString(b[:])}
	t.Cleanup(func() {
		_ = c.cs.CoreV1().Namespaces().Delete(context.Background(), c.ns, metav1.DeleteOptions{})
	})
	return c
}

// probeImage is the probe image by digest (internal/testimage.Probe).
func probeImage(t testing.TB) string {
	t.Helper()
	ref, _ := testimage.Probe(t, stack.Registry(t))
	return ref
}

// leftovers lists what testship created for a run.
func leftovers(t *testing.T, c *cluster, id string) []string {
	t.Helper()
	return stack.Objects(c.cs, c.ns, labels.SelectorFromSet(labels.Set{runner.LabelRunID: id}).String())
}

func assertGone(t *testing.T, c *cluster, id string) {
	t.Helper()
	if l := leftovers(t, c, id); len(l) > 0 {
		t.Errorf("left behind for run %s: %v", id, l)
	}
}
