package environment

import (
	"context"
	"fmt"
	"io"
	"time"

	"helm.sh/helm/v3/pkg/action"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Destroy uninstalls every release in the namespace and, when testship
// created the namespace, deletes it and waits until it is gone. A namespace
// testship did not create is left in place (only its releases go).
func Destroy(ctx context.Context, rc *rest.Config, ns string, timeout time.Duration, out io.Writer) error {
	if out == nil {
		out = io.Discard
	}
	if timeout <= 0 {
		timeout = 5 * time.Minute
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
	for _, rel := range rels {
		u := action.NewUninstall(cfg)
		u.Timeout = timeout
		u.IgnoreNotFound = true
		if _, err := u.Run(rel.Name); err != nil {
			return fmt.Errorf("uninstall release %s in %s: %w", rel.Name, ns, err)
		}
		fmt.Fprintf(out, "%s: uninstalled (was revision %d)\n", rel.Name, rel.Version)
	}
	if n.Labels[LabelManagedBy] != ManagedBy {
		fmt.Fprintf(out, "namespace %s: kept (not created by testship)\n", ns)
		return nil
	}
	if n.DeletionTimestamp == nil {
		if err := cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
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
