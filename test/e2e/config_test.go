//go:build e2e

package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	stack "github.com/testship/testship/internal/e2e"
)

// The validation pass through the user's entry point: the Mage targets,
// against the real cluster, which must see nothing of a refused run.

const configSecret = "e2e-config-secret-7731"

func TestTargetsRefuseBadConfigBeforeAnyWork(t *testing.T) {
	kubeconfig := stack.Kubeconfig(t)
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var b [3]byte
	_, _ = rand.Read(b[:])
	ns := "config-e2e-" + hex.EncodeToString(b[:])

	bad := []string{
		"KUBECONFIG=" + kubeconfig,
		"ENV_NAMESPACE=" + ns,
		"ENV_TIMEOUT=bogus",
		"TESTSHIP_TIMEOUT=bogus",
		"E2E_TEST_TOKEN=" + configSecret,
		"TESTSHIP_SECRET_VARS=ENV_SET",
		"ENV_SET=link.password=" + configSecret + "-set",
		"TESTSHIP_RUNNER_RULES=create:pods",
	}
	for _, target := range []string{"env:deploy", "run:remote", "run:detached", "run:local", "config"} {
		t.Run(target, func(t *testing.T) {
			code, out := runMage(t, bad, target)
			if code != 89 || !strings.Contains(out, "ENV_TIMEOUT=\"bogus\"") || !strings.Contains(out, "nothing was done") {
				t.Fatalf("exit %d, want 89 naming ENV_TIMEOUT:\n%s", code, out)
			}
			if strings.HasPrefix(target, "run:") && (!strings.Contains(out, "TESTSHIP_TIMEOUT=") || !strings.Contains(out, `rule "create:pods"`)) {
				t.Fatalf("run target does not report every problem:\n%s", out)
			}
			if strings.Contains(out, configSecret) {
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
		code, out := runMage(t, []string{"KUBECONFIG=" + kubeconfig, "ENV_NAMESPACE=kube-system"}, "env:deploy")
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
			code, out := runMage(t, []string{"KUBECONFIG=" + broken}, target)
			if code != 89 || !strings.Contains(out, `current-context "no-such-context" names no context`) || strings.Contains(out, "KUBERNETES_MASTER") {
				t.Fatalf("%s: exit %d, want 89 naming the missing context:\n%s", target, code, out)
			}
		}
		code, out := runMage(t, []string{"KUBECONFIG=" + filepath.Join(t.TempDir(), "missing")}, "run:list")
		if code != 89 || !strings.Contains(out, "does not exist") {
			t.Fatalf("missing KUBECONFIG: exit %d:\n%s", code, out)
		}
	})

	t.Run("good configuration", func(t *testing.T) {
		code, out := runMage(t, []string{"KUBECONFIG=" + kubeconfig}, "config")
		if code != 0 || !strings.Contains(out, "no problem found") {
			t.Fatalf("exit %d:\n%s", code, out)
		}
	})
}
