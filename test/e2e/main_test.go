//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	stack "github.com/testship/testship/internal/e2e"
	"github.com/testship/testship/internal/testimage"
)

// repoRoot is the checkout, where the Mage targets run.
const repoRoot = "../.."

var (
	mageOnce sync.Once
	mageDir  string
	mageBin  string
	mageErr  error
)

// mage compiles the project's Mage targets once per test process (go run
// magefile.go -compile, as a workflow job does), so that exit codes reach
// the tests unchanged.
func mage(t *testing.T) string {
	t.Helper()
	root := testimage.RepoRoot(t)
	mageOnce.Do(func() {
		if mageDir, mageErr = os.MkdirTemp("", "testship-e2e-mage-"); mageErr != nil {
			return
		}
		bin := filepath.Join(mageDir, "testship-mage")
		cmd := exec.Command("go", "run", "magefile.go", "-compile", bin)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			mageErr = fmt.Errorf("%v\n%s", err, out)
			return
		}
		mageBin = bin
	})
	if mageErr != nil {
		t.Fatalf("compile the mage targets: %v", mageErr)
	}
	return mageBin
}

// runMage runs a target (with its arguments) in the checkout with the
// process's environment plus env, and returns its exit code and combined
// output.
func runMage(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(mage(t), args...)
	cmd.Dir = testimage.RepoRoot(t)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return ee.ExitCode(), string(out)
	case err != nil:
		t.Fatalf("mage %v: %v", args, err)
	}
	return 0, string(out)
}

func TestMain(m *testing.M) {
	code := m.Run()
	if mageDir != "" {
		os.RemoveAll(mageDir)
	}
	os.Exit(code)
}

// clientset is a client for the local stack's cluster.
func clientset(t testing.TB) kubernetes.Interface {
	t.Helper()
	rc, err := clientcmd.BuildConfigFromFlags("", stack.Kubeconfig(t))
	if err != nil {
		t.Fatal(err)
	}
	rc.QPS, rc.Burst = 50, 100
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// waitNamespaceGone waits (watching) until namespace ns no longer exists.
func waitNamespaceGone(t *testing.T, cs kubernetes.Interface, ns string, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for ctx.Err() == nil {
		got, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return
		}
		if err != nil {
			t.Fatalf("namespace %s: %v", ns, err)
		}
		// watch from what we just read until it changes, then look again
		w, err := cs.CoreV1().Namespaces().Watch(ctx, metav1.ListOptions{ResourceVersion: got.ResourceVersion, FieldSelector: "metadata.name=" + ns})
		if err != nil {
			t.Fatalf("watch namespace %s: %v", ns, err)
		}
		for ev := range w.ResultChan() {
			if ev.Type == watch.Deleted || ev.Type == watch.Error {
				break
			}
		}
		w.Stop()
	}
	t.Fatalf("namespace %s still there %s later", ns, d)
}
