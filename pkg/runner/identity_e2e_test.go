//go:build e2e

package runner_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/testship/testship/internal/e2e"
	"github.com/testship/testship/pkg/config"
	"github.com/testship/testship/pkg/runner"
)

// restricted makes the test's namespace enforce the restricted Pod
// Security Standard: every run in it must pass it to start at all.
func restricted(t *testing.T, c *cluster) {
	t.Helper()
	patch := `{"metadata":{"labels":{"pod-security.kubernetes.io/enforce":"restricted","pod-security.kubernetes.io/enforce-version":"latest"}}}`
	if _, err := c.cs.CoreV1().Namespaces().Patch(context.Background(), c.ns, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

// The pod passes the restricted Pod Security Standard: admitted in a
// namespace that enforces it, it runs as 65532 with seccomp on, no
// privilege escalation and no capabilities; and it gets the environment
// description through its Secret.
func TestRemoteRestrictedPod(t *testing.T) {
	c := newCluster(t, 0)
	restricted(t, c)
	o := c.options(t, "^TestEnv$", nil)
	o.Environment = `{"Namespace":"` + c.ns + `","Releases":[{"Name":"probe"}]}`
	r := c.launchAndFollow(t, o, runner.FollowOptions{})
	if r.err != nil {
		t.Fatalf("run in a restricted namespace: %v\n%s\n%s", r.err, r.log, r.out)
	}
	for _, want := range []string{
		"probe: environment=" + o.Environment + "\n",
		"probe: uid=65532 gid=65532\n",
		"probe: Seccomp: 2\n", // filter mode: the runtime's default profile
		"probe: NoNewPrivs: 1\n",
		"probe: CapEff: 0000000000000000\n",
	} {
		if !strings.Contains(r.out, want) {
			t.Errorf("output lacks %q:\n%s", want, r.out)
		}
	}
}

// Two runs at once in one namespace with different rules: each has its own
// identity, neither can read the other's Secret (nor its own: no Secrets),
// and neither's Role changes.
func TestRemoteRunIdentity(t *testing.T) {
	c := newCluster(t, 0)
	restricted(t, c)
	ctx := context.Background()
	ids := [2]string{runner.NewRunID() + "a", runner.NewRunID() + "b"}
	ruleSets := [2]string{"delete:pods", "patch:deployments/scale.apps"}
	var runs [2]*runner.Run
	var roles [2]*rbacv1.Role
	var log e2e.SyncBuffer
	for i := range runs {
		o := c.options(t, "^TestReadSecrets$", map[string]string{
			"PROBE_SLEEP":        "3s",
			"PROBE_READ_SECRETS": runner.SecretName(ids[1-i]) + "," + runner.SecretName(ids[i]),
		})
		o.RunID = ids[i]
		o.Secrets = map[string]string{"E2E_TEST_PROBE_SECRET": fmt.Sprintf("secret-of-run-%d", i)}
		var err error
		if o.Rules, err = config.ParseRules(ruleSets[i]); err != nil {
			t.Fatal(err)
		}
		if runs[i], err = runner.Launch(ctx, c.cs, o, &log); err != nil {
			t.Fatal(err)
		}
		if roles[i], err = c.cs.RbacV1().Roles(c.ns).Get(ctx, runner.IdentityName(ids[i]), metav1.GetOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if roles[0].Name == roles[1].Name || equality.Semantic.DeepEqual(roles[0].Rules, roles[1].Rules) {
		t.Fatalf("two runs share an identity: %s %s", roles[0].Name, roles[1].Name)
	}
	for i, run := range runs {
		var out e2e.SyncBuffer
		res, err := runner.Follow(ctx, c.cs, run, runner.FollowOptions{WaitOptions: runner.WaitOptions{Out: &out, Log: &log}})
		if err != nil || res.ExitCode != 0 {
			t.Fatalf("run %s: %v\n%s\n%s", run.ID, err, out.String(), log.String())
		}
		for _, id := range []string{ids[1-i], ids[i]} {
			if want := "probe: secret " + runner.SecretName(id) + " HTTP 403\n"; !strings.Contains(out.String(), want) {
				t.Errorf("run %s: want %q:\n%s", run.ID, want, out.String())
			}
		}
		// the pod ran as the run's own ServiceAccount
		pods, err := c.cs.CoreV1().Pods(c.ns).List(ctx, metav1.ListOptions{LabelSelector: runner.LabelRunID + "=" + run.ID})
		if err != nil || len(pods.Items) != 1 || pods.Items[0].Spec.ServiceAccountName != runner.IdentityName(run.ID) {
			t.Errorf("run %s's pod: %v %+v", run.ID, err, pods.Items)
		}
		now, err := c.cs.RbacV1().Roles(c.ns).Get(ctx, roles[i].Name, metav1.GetOptions{})
		if err != nil || now.ResourceVersion != roles[i].ResourceVersion || !equality.Semantic.DeepEqual(now.Rules, roles[i].Rules) {
			t.Errorf("run %s's Role changed: %v\nwas %+v\nnow %+v", run.ID, err, roles[i].Rules, now.Rules)
		}
	}
	for _, run := range runs {
		if err := runner.Cancel(ctx, c.cs, c.ns, run.ID, true); err != nil {
			t.Fatal(err)
		}
		assertGone(t, c, run.ID)
	}
}

// A launch killed after any step leaves nothing that the deletion of its
// Job does not remove.
func TestRemoteKilledLaunchLeavesNothing(t *testing.T) {
	c := newCluster(t, 0)
	ctx := context.Background()
	for _, step := range []string{"checked", "job", "lease", "identity"} {
		t.Run(step, func(t *testing.T) {
			o := c.options(t, "^TestPass$", nil)
			o.NewRun = false
			o.Env = map[string]string{"STEP": step} // a run key of its own
			o.Secrets = map[string]string{"E2E_TEST_X": "y"}
			o.RunID = runner.NewRunID()
			restore := runner.SetLaunchHook(func(s string) error {
				if s == step {
					return errors.New("killed after " + s)
				}
				return nil
			})
			_, err := runner.Launch(ctx, c.cs, o, nil)
			restore()
			if err == nil || !strings.Contains(err.Error(), "killed after "+step) {
				t.Fatalf("launch killed after %s: %v", step, err)
			}
			left := leftovers(t, c, o.RunID)
			t.Logf("killed after %s, left: %v", step, left)
			if want := map[string]int{"checked": 0, "job": 1, "lease": 2, "identity": 6}[step]; len(left) != want {
				t.Errorf("killed after %s: %d objects (%v), want %d", step, len(left), left, want)
			}
			if step != "checked" {
				// Only the Job is deleted (no Cancel, which also releases the
				// Lease and deletes the Secret): its garbage collection alone
				// must remove the rest before it goes (foreground).
				deleteJobForeground(t, c, runner.JobName(o.RunID))
			}
			assertGone(t, c, o.RunID)
		})
	}
	if l := labelled(t, c); len(l) > 0 {
		t.Errorf("left in the namespace: %v", l)
	}
}

// deleteJobForeground deletes a Job in the foreground and waits until it is
// gone, which is after every dependent that blocks its deletion.
func deleteJobForeground(t *testing.T, c *cluster, name string) {
	t.Helper()
	ctx := context.Background()
	fg := metav1.DeletePropagationForeground
	if err := c.cs.BatchV1().Jobs(c.ns).Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &fg}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		_, err := c.cs.BatchV1().Jobs(c.ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Job %s still there a minute after its deletion: %v", name, err)
		}
	}
}

// Ctrl-C a run, then launch the identical run at once: a new run starts,
// without waiting for the cancelled one.
func TestRemoteRerunAfterCancel(t *testing.T) {
	c := newCluster(t, 0)
	ctx := context.Background()
	o := c.options(t, "^TestSleep$", map[string]string{"PROBE_SLEEP": "60s"})
	o.NewRun = false
	var log e2e.SyncBuffer
	first, err := runner.Launch(ctx, c.cs, o, &log)
	if err != nil {
		t.Fatal(err)
	}
	fctx, cancel := context.WithCancel(ctx)
	_, err = runner.Follow(fctx, c.cs, first, runner.FollowOptions{WaitOptions: runner.WaitOptions{Log: &log, OnLine: func(line []byte) {
		if bytes.HasPrefix(line, []byte("sleep 1\n")) {
			cancel()
		}
	}}})
	var ee *runner.ExitError
	if !errors.As(err, &ee) || ee.Code != runner.ExitCancelled {
		t.Fatalf("interrupted follow: %v\n%s", err, log.String())
	}
	start := time.Now()
	second, err := runner.Launch(ctx, c.cs, o, &log)
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("re-run after cancel: launched in %s", took.Round(time.Millisecond))
	if second.Attached || second.ID == first.ID {
		t.Fatalf("re-run after cancel attached to %s (first %s)\n%s", second.ID, first.ID, log.String())
	}
	if took > 30*time.Second {
		t.Errorf("re-run after cancel took %s: it waited for the cancelled run", took)
	}
	if _, err := runner.Follow(ctx, c.cs, second, runner.FollowOptions{WaitOptions: runner.WaitOptions{Detach: true, Log: &log}}); err != nil {
		t.Fatalf("the new run does not start: %v\n%s", err, log.String())
	}
	if err := runner.Cancel(ctx, c.cs, c.ns, second.ID, true); err != nil {
		t.Fatal(err)
	}
	assertGone(t, c, first.ID)
	assertGone(t, c, second.ID)
}

// The same test with a different TEST_X value while the first runs is a
// run of its own; the identical launch attaches.
func TestRemoteDifferentValueIsNewRun(t *testing.T) {
	c := newCluster(t, 0)
	ctx := context.Background()
	o := c.options(t, "^TestSleep$", map[string]string{"PROBE_SLEEP": "30s", "X": "1"})
	o.NewRun = false
	var log e2e.SyncBuffer
	first, err := runner.Launch(ctx, c.cs, o, &log)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := runner.Follow(ctx, c.cs, first, runner.FollowOptions{WaitOptions: runner.WaitOptions{Detach: true, Log: &log}}); err != nil {
		t.Fatal(err)
	}
	o2 := o
	o2.Env = map[string]string{"PROBE_SLEEP": "30s", "X": "2"}
	second, err := runner.Launch(ctx, c.cs, o2, &log)
	if err != nil || second.Attached || second.ID == first.ID {
		t.Fatalf("TEST_X=2 while TEST_X=1 runs: %+v %v", second, err)
	}
	o3 := o
	o3.Secrets = map[string]string{"E2E_TEST_TOKEN": "other"}
	third, err := runner.Launch(ctx, c.cs, o3, &log)
	if err != nil || third.Attached {
		t.Fatalf("other secrets while the first runs: %+v %v", third, err)
	}
	same, err := runner.Launch(ctx, c.cs, o, &log)
	if err != nil || !same.Attached || same.ID != first.ID {
		t.Fatalf("the identical launch: %+v %v, want to attach to %s", same, err, first.ID)
	}
	for _, r := range []*runner.Run{first, second, third} {
		if err := runner.Cancel(ctx, c.cs, c.ns, r.ID, true); err != nil {
			t.Fatal(err)
		}
		assertGone(t, c, r.ID)
	}
	if l := labelled(t, c); len(l) > 0 {
		t.Errorf("left in the namespace: %v", l)
	}
}
