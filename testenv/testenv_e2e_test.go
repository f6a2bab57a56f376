//go:build e2e

package testenv_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/testship/testship/internal/e2e"
	"github.com/testship/testship/internal/testimage"
	"github.com/testship/testship/pkg/environment"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// TestKeepPolicy runs the link example test as a user would (its own
// process): with an image that cannot be pulled and KEEP_ENVIRONMENTS=onfail
// the test fails naming the reason and the environment is kept; the next run
// with a good image and KEEP_ENVIRONMENTS=never fixes the same environment,
// passes, and removes it.
func TestKeepPolicy(t *testing.T) {
	kc := e2e.Kubeconfig(t)
	registry := e2e.Registry(t)
	rc, err := clientcmd.BuildConfigFromFlags("", kc)
	if err != nil {
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(rc)
	image := testimage.Main(t, registry, "link", "./tests/link/cmd/link")
	_, bin := testimage.Test(t, registry, "link-test", "./tests/link", "e2e")
	b := make([]byte, 3)
	rand.Read(b)
	ns := "ts-e2e-keep-" + hex.EncodeToString(b)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		environment.Destroy(ctx, rc, ns, []string{"link"}, 3*time.Minute, nil)
	})

	run := func(env ...string) (string, error) {
		cmd := exec.Command(bin, "-test.v", "-test.run", "^TestLink$")
		cmd.Dir = filepath.Join(testimage.RepoRoot(t), "tests", "link")
		cmd.Env = append(os.Environ(), append([]string{"KUBECONFIG=" + kc, "ENV_NAMESPACE=" + ns, "TESTSHIP_CHARTS=link", "ENV_SET="}, env...)...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	bad := registry + "/testship-e2e/does-not-exist:nope"
	out, err := run("KEEP_ENVIRONMENTS=onfail", "TESTSHIP_IMAGE_LINK="+bad, "ENV_TIMEOUT=2m")
	if err == nil || !strings.Contains(out, "--- FAIL: TestLink") {
		t.Fatalf("with an unpullable image the test did not fail: %v\n%s", err, out)
	}
	for _, want := range []string{"chart link", "Deployment link", "for image " + bad, "keeping the environment in namespace " + ns} {
		if !strings.Contains(out, want) {
			t.Errorf("failed run's output lacks %q:\n%s", want, out)
		}
	}
	if _, err := cs.CoreV1().Namespaces().Get(context.Background(), ns, metav1.GetOptions{}); err != nil {
		t.Fatalf("KEEP_ENVIRONMENTS=onfail and a failed test, but namespace %s is gone: %v", ns, err)
	}

	out, err = run("KEEP_ENVIRONMENTS=never", "TESTSHIP_IMAGE_LINK="+image)
	if err != nil || !strings.Contains(out, "--- PASS: TestLink") || !strings.Contains(out, "link: upgraded revision 2") {
		t.Fatalf("the next run did not fix the environment: %v\n%s", err, out)
	}
	if _, err := cs.CoreV1().Namespaces().Get(context.Background(), ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("KEEP_ENVIRONMENTS=never and a passed test, but namespace %s remains: %v", ns, err)
	}
}

// TestConnectDescription runs the link test as the remote runner's copy
// (TESTSHIP_REMOTE=true) with TESTSHIP_ENVIRONMENT missing, malformed, or
// naming a Service that does not exist: each fails with a message saying
// what is wrong, and none reads a Secret (the description replaces Helm's
// release records).
func TestConnectDescription(t *testing.T) {
	kc := e2e.Kubeconfig(t)
	registry := e2e.Registry(t)
	_, bin := testimage.Test(t, registry, "link-test", "./tests/link", "e2e")
	ns := "ts-envsafe-connect-none"
	gone, _ := json.Marshal(environment.Environment{Namespace: ns, Releases: []environment.Release{{Name: "link", Status: "deployed",
		Services: []environment.Service{{Name: "link", Ports: []environment.ServicePort{{Port: 80, Protocol: "TCP"}}}}}}})
	for desc, want := range map[string]string{
		"":                      "TESTSHIP_ENVIRONMENT is empty",
		"{":                     "TESTSHIP_ENVIRONMENT is not a valid environment description",
		`{"namespace":"other"}`: "TESTSHIP_ENVIRONMENT describes namespace other",
		string(gone):            "chart link: Service link does not exist",
	} {
		cmd := exec.Command(bin, "-test.v", "-test.run", "^TestLink$")
		cmd.Dir = filepath.Join(testimage.RepoRoot(t), "tests", "link")
		cmd.Env = append(os.Environ(), "KUBECONFIG="+kc, "TESTSHIP_REMOTE=true", "TESTSHIP_NAMESPACE="+ns, "TESTSHIP_CHARTS=link",
			"ENV_JOB_IMAGE=", environment.EnvDescription+"="+desc)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), want) {
			t.Errorf("TESTSHIP_ENVIRONMENT=%q: %v, output lacks %q:\n%s", desc, err, want, out)
		}
	}
}
