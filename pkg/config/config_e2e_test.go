//go:build e2e

package config_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/testship/testship/internal/e2e"
	"github.com/testship/testship/internal/testimage"
)

// The validation pass through the user's entry point: the Mage targets,
// against the real cluster, which must see nothing of a refused run.

const secret = "e2e-config-secret-7731"

func compileMage(t *testing.T) (bin, root string) {
	t.Helper()
	root = testimage.RepoRoot(t)
	bin = filepath.Join(t.TempDir(), "mage")
	cmd := exec.Command("go", "run", "magefile.go", "-compile", bin)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("compile the mage targets: %v\n%s", err, out)
	}
	return bin, root
}

func runMage(t *testing.T, bin, root string, env []string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return ee.ExitCode(), out.String()
	case err != nil:
		t.Fatalf("%s %v: %v", bin, args, err)
	}
	return 0, out.String()
}

func TestTargetsRefuseBadConfigBeforeAnyWork(t *testing.T) {
	kubeconfig := e2e.Kubeconfig(t)
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	bin, root := compileMage(t)
	var b [3]byte
	_, _ = rand.Read(b[:])
	ns := "config-e2e-" + hex.EncodeToString(b[:])

	bad := []string{
		"KUBECONFIG=" + kubeconfig,
		"ENV_NAMESPACE=" + ns,
		"ENV_TIMEOUT=bogus",
		"TESTSHIP_TIMEOUT=bogus",
		"E2E_TEST_TOKEN=" + secret,
		"TESTSHIP_SECRET_VARS=ENV_SET",
		"ENV_SET=link.password=" + secret + "-set",
		"TESTSHIP_RUNNER_RULES=create:pods",
	}
	for _, target := range []string{"env:deploy", "run:remote", "run:detached", "run:local", "config"} {
		t.Run(target, func(t *testing.T) {
			code, out := runMage(t, bin, root, bad, target)
			if code != 89 || !strings.Contains(out, "ENV_TIMEOUT=\"bogus\"") || !strings.Contains(out, "nothing was done") {
				t.Fatalf("exit %d, want 89 naming ENV_TIMEOUT:\n%s", code, out)
			}
			if strings.HasPrefix(target, "run:") && (!strings.Contains(out, "TESTSHIP_TIMEOUT=") || !strings.Contains(out, `rule "create:pods"`)) {
				t.Fatalf("run target does not report every problem:\n%s", out)
			}
			if strings.Contains(out, secret) {
				t.Fatalf("output shows a secret:\n%s", out)
			}
			// Nothing reached the cluster: the namespace was never made.
			if _, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Fatalf("namespace %s exists after a refused %s (err %v)", ns, target, err)
			}
		})
	}

	t.Run("kube-system refused", func(t *testing.T) {
		sel := metav1.ListOptions{LabelSelector: "owner=helm"}
		before, err := cs.CoreV1().Secrets("kube-system").List(ctx, sel)
		if err != nil {
			t.Fatal(err)
		}
		code, out := runMage(t, bin, root, []string{"KUBECONFIG=" + kubeconfig, "ENV_NAMESPACE=kube-system"}, "env:deploy")
		if code != 89 || !strings.Contains(out, `ENV_NAMESPACE="kube-system"`) {
			t.Fatalf("exit %d, want 89 naming ENV_NAMESPACE:\n%s", code, out)
		}
		after, err := cs.CoreV1().Secrets("kube-system").List(ctx, sel)
		if err != nil {
			t.Fatal(err)
		}
		if len(after.Items) != len(before.Items) {
			t.Fatalf("Helm release records in kube-system: %d before, %d after", len(before.Items), len(after.Items))
		}
	})

	t.Run("kubeconfig checked without contacting the cluster", func(t *testing.T) {
		data, err := os.ReadFile(kubeconfig)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := clientcmd.Load(data)
		if err != nil {
			t.Fatal(err)
		}
		cfg.CurrentContext = "no-such-context"
		broken := filepath.Join(t.TempDir(), "kubeconfig")
		if err := clientcmd.WriteToFile(*cfg, broken); err != nil {
			t.Fatal(err)
		}
		for _, target := range []string{"config", "run:list", "env:status"} {
			code, out := runMage(t, bin, root, []string{"KUBECONFIG=" + broken}, target)
			if code != 89 || !strings.Contains(out, `current-context "no-such-context" names no context`) || strings.Contains(out, "KUBERNETES_MASTER") {
				t.Fatalf("%s: exit %d, want 89 naming the missing context:\n%s", target, code, out)
			}
		}
		code, out := runMage(t, bin, root, []string{"KUBECONFIG=" + filepath.Join(t.TempDir(), "missing")}, "run:list")
		if code != 89 || !strings.Contains(out, "does not exist") {
			t.Fatalf("missing KUBECONFIG: exit %d:\n%s", code, out)
		}
	})

	t.Run("good configuration", func(t *testing.T) {
		code, out := runMage(t, bin, root, []string{"KUBECONFIG=" + kubeconfig}, "config")
		if code != 0 || !strings.Contains(out, "no problem found") {
			t.Fatalf("exit %d:\n%s", code, out)
		}
	})
}
