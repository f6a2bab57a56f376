//go:build e2e && e2e_down

package devstack_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/testship/testship/internal/e2e"
	"github.com/testship/testship/pkg/devstack"
)

// TestDownStatusUp stops the stack, checks that every process it started is
// gone and the status says stopped, then brings it back up. It interrupts
// every other test using the cluster, so it has its own build tag, e2e_down:
// .ci/run runs it last, alone.
func TestDownStatusUp(t *testing.T) {
	e2e.Kubeconfig(t)
	ctx := context.Background()
	o := options(t)
	before, err := devstack.Status(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, r := range before {
		if r.PID > 0 {
			pids = append(pids, r.PID)
		}
	}
	if len(pids) < 8 {
		t.Fatalf("expected the stack's daemons running before Down, got PIDs %v", pids)
	}
	if _, err := devstack.Down(ctx, o, false); err != nil {
		t.Fatalf("Down: %v", err)
	}
	for _, pid := range pids {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil {
			if raw, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); !strings.Contains(string(raw), ") Z ") {
				t.Errorf("PID %d still running after Down", pid)
			}
		}
	}
	after, err := devstack.Status(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range after {
		switch {
		case r.Name == "dockerd" || strings.HasSuffix(r.Name, "binaries"):
		case r.PID != 0 || r.State == "running" || r.State == "ready" || r.State == "unmanaged":
			t.Errorf("after Down, %s is %s (PID %d, %s)", r.Name, r.State, r.PID, r.Detail)
		}
	}
	if _, err := os.Stat("/sys/class/net/cni0"); err == nil {
		t.Error("cni0 bridge still present after Down")
	}
	if out, _ := exec.Command("iptables-save").Output(); strings.Contains(string(out), ":KUBE-SERVICES") || strings.Contains(string(out), ":CNI-") {
		t.Error("KUBE-/CNI- iptables chains left after Down")
	}

	rep, err := devstack.Up(ctx, o)
	if err != nil {
		t.Fatalf("Up after Down: %v", err)
	}
	t.Logf("Up after Down: %s", rep.Summary("started"))
	cs := clientset(t)
	if _, err := cs.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{}); apierrors.IsNotFound(err) || err != nil {
		t.Errorf("cluster after re-Up: %v", err)
	}
}
