package environment

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/testship/testship/pkg/config"
	"helm.sh/helm/v3/pkg/action"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// ChartNames returns the release names of the charts.
func ChartNames(charts []config.ChartRef) []string {
	var out []string
	for _, c := range charts {
		out = append(out, c.Name)
	}
	return out
}

// Destroy removes what testship deployed in the namespace and nothing else:
// it uninstalls a release only when it is one of charts and carries
// testship's marker (DeployedByTestship); every other release is kept and
// listed. When testship created the namespace (its marker label) and no
// release is left in it, it deletes the namespace and waits until it is
// gone. A namespace testship did not create is never deleted; kube-*
// namespaces are refused.
func Destroy(ctx context.Context, rc *rest.Config, ns string, charts []string, timeout time.Duration, out io.Writer) error {
	if out == nil {
		out = io.Discard
	}
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	if err := CheckNamespace(ns); err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	n, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		fmt.Fprintf(out, "namespace %s: does not exist, nothing to destroy\n", ns)
		return nil
	}
	if err != nil {
		return fmt.Errorf("namespace %s: %w", ns, err)
	}
	cfg, err := helmConfig(rc, ns, nil)
	if err != nil {
		return err
	}
	rels, err := listReleases(cfg)
	if err != nil {
		return fmt.Errorf("releases in %s: %w", ns, err)
	}
	uninstall, kept := SelectUninstall(rels, charts)
	for _, rel := range uninstall {
		u := action.NewUninstall(cfg)
		u.Timeout = timeout
		u.IgnoreNotFound = true
		if _, err := u.Run(rel.Name); err != nil {
			return fmt.Errorf("uninstall release %s in %s: %w", rel.Name, ns, err)
		}
		fmt.Fprintf(out, "%s: uninstalled (was revision %d)\n", rel.Name, rel.Version)
	}
	var names []string
	for name := range kept {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(out, "%s: kept: %s\n", name, kept[name])
	}
	if !IsTestshipNamespace(n) {
		fmt.Fprintf(out, "namespace %s: kept (not created by testship)\n", ns)
		return nil
	}
	if len(kept) > 0 {
		fmt.Fprintf(out, "namespace %s: kept: it still holds releases testship did not uninstall (%s); remove them, then env:destroy again (or env:prune once it has expired)\n",
			ns, strings.Join(names, ", "))
		return nil
	}
	if n.DeletionTimestamp == nil {
		uid := n.UID
		err := cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete namespace %s: %w", ns, err)
		}
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := waitNamespaceGone(wctx, cs, ns); err != nil {
		return fmt.Errorf("namespace %s: still terminating after %s: %w", ns, timeout, err)
	}
	fmt.Fprintf(out, "namespace %s: deleted\n", ns)
	return nil
}

// Finish is the end of an environment after a test: kept when
// KEEP_ENVIRONMENTS says so given whether the test failed (saying how to
// remove it), else destroyed (Destroy). run:remote, the in-test form,
// env:destroy and ci:cleanup all end an environment through it. The
// destroy is bounded by c.Timeout and by ctx (a caller that must destroy
// after an interrupt passes context.WithoutCancel).
func Finish(ctx context.Context, rc *rest.Config, c config.Env, ns string, failed bool, out io.Writer) error {
	if out == nil {
		out = io.Discard
	}
	if c.Keep.Keeps(failed) {
		fmt.Fprintf(out, "testship: keeping the environment in namespace %s (KEEP_ENVIRONMENTS=%s, test failed: %v); remove it with `ENV_NAMESPACE=%s mage env:destroy` and KEEP_ENVIRONMENTS=never\n",
			ns, c.Keep, failed, ns)
		return nil
	}
	dctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	return Destroy(dctx, rc, ns, ChartNames(c.Charts), c.Timeout, out)
}
