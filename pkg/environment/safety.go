package environment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/testship/testship/pkg/config"
	"helm.sh/helm/v3/pkg/release"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// CheckNamespace refuses namespaces testship must never deploy into or
// destroy: the cluster's own (kube-*).
func CheckNamespace(ns string) error {
	if err := config.ValidNamespace(ns); err != nil {
		return err
	}
	if strings.HasPrefix(ns, "kube-") {
		return &config.Error{Name: config.EnvNamespace, Value: ns,
			Want: "a namespace of your own: kube-* namespaces belong to the cluster and testship never deploys into or destroys them"}
	}
	return nil
}

// IsTestshipNamespace reports whether testship created the namespace: it
// carries the marker label app.kubernetes.io/managed-by=testship.
func IsTestshipNamespace(ns *corev1.Namespace) bool {
	return ns != nil && ns.Labels[LabelManagedBy] == ManagedBy
}

// DeployedByTestship reports whether a Helm release carries testship's
// marker: the release label app.kubernetes.io/managed-by=testship, or (for
// releases deployed before that label) the digest label.
func DeployedByTestship(rel *release.Release) bool {
	if rel == nil {
		return false
	}
	return rel.Labels[LabelManagedBy] == ManagedBy || rel.Labels[LabelDigest] != "" || rel.Labels[LegacyLabelDigest] != ""
}

// SelectUninstall is Destroy's pure choice: of the releases in a
// namespace, uninstall those that are one of the environment's charts and
// carry testship's marker; keep every other, with the reason.
func SelectUninstall(rels []*release.Release, charts []string) (uninstall []*release.Release, kept map[string]string) {
	ours := map[string]bool{}
	for _, c := range charts {
		ours[c] = true
	}
	kept = map[string]string{}
	for _, rel := range rels {
		switch {
		case !DeployedByTestship(rel):
			kept[rel.Name] = "not deployed by testship"
		case !ours[rel.Name]:
			kept[rel.Name] = "not one of the environment's charts (TESTSHIP_CHARTS)"
		default:
			uninstall = append(uninstall, rel)
		}
	}
	return uninstall, kept
}

// ParseExpiry parses an expires-at annotation (RFC 3339).
func ParseExpiry(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, strings.TrimSpace(s))
	if err != nil {
		return time.Time{}, fmt.Errorf("annotation %s=%q is not an RFC 3339 time", AnnotationExpiresAt, s)
	}
	return t, nil
}

// ExtendedExpiry returns the expires-at value that lasts at least until
// until: until itself (UTC, RFC 3339) when current is earlier, missing or
// unreadable, else current unchanged. changed says whether it differs from
// current. An expiry is never shortened.
func ExtendedExpiry(current string, until time.Time) (value string, changed bool) {
	if cur, err := ParseExpiry(current); err == nil && !cur.Before(until.Truncate(time.Second)) {
		return current, false
	}
	return until.UTC().Format(time.RFC3339), true
}

// ErrNotTestship is returned by ExtendExpiry for a namespace testship did
// not create (its expiry is not testship's to set).
var ErrNotTestship = errors.New("namespace not created by testship")

// KeepUntil is ExtendExpiry for a detached run: the environment in ns
// lives at least until the run may end (runner.Deadline). A namespace
// testship did not create keeps its own lifetime, which is no error here.
func KeepUntil(ctx context.Context, cs kubernetes.Interface, ns string, until time.Time) error {
	if err := ExtendExpiry(ctx, cs, ns, until); err != nil && !errors.Is(err, ErrNotTestship) {
		return err
	}
	return nil
}

// ExtendExpiry makes the testship namespace ns live at least until until
// (annotation testship.dev/expires-at), for a detached run that outlives
// the deploy's ENV_TTL. It never shortens the expiry, and refuses
// (ErrNotTestship) a namespace testship did not create.
func ExtendExpiry(ctx context.Context, cs kubernetes.Interface, ns string, until time.Time) error {
	n, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("extend the expiry of namespace %s: %w", ns, err)
	}
	if !IsTestshipNamespace(n) {
		return fmt.Errorf("extend the expiry of namespace %s: %w", ns, ErrNotTestship)
	}
	exp, changed := ExtendedExpiry(n.Annotations[AnnotationExpiresAt], until)
	if !changed {
		return nil
	}
	// The resourceVersion makes the patch fail rather than overwrite a
	// later expiry written meanwhile.
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{
		"resourceVersion": n.ResourceVersion,
		"annotations":     map[string]string{AnnotationExpiresAt: exp},
	}})
	if _, err := cs.CoreV1().Namespaces().Patch(ctx, ns, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		if apierrors.IsConflict(err) {
			return ExtendExpiry(ctx, cs, ns, until)
		}
		return fmt.Errorf("extend the expiry of namespace %s: %w", ns, err)
	}
	return nil
}

// Expired is one environment env:prune removes.
type Expired struct {
	Namespace string
	ExpiresAt time.Time
	CreatedBy string
}

// SelectExpired is env:prune's pure choice: the namespaces that carry
// testship's marker label and an expires-at annotation in the past (and
// are not already being deleted, nor kube-*), oldest expiry first.
// Namespaces whose annotation cannot be read are skipped and reported.
func SelectExpired(nss []corev1.Namespace, now time.Time) (expired []Expired, unreadable []string) {
	for i := range nss {
		n := &nss[i]
		if !IsTestshipNamespace(n) || n.DeletionTimestamp != nil || CheckNamespace(n.Name) != nil {
			continue
		}
		v, ok := n.Annotations[AnnotationExpiresAt]
		if !ok {
			continue
		}
		exp, err := ParseExpiry(v)
		if err != nil {
			unreadable = append(unreadable, n.Name+": "+err.Error())
			continue
		}
		if exp.Before(now) {
			expired = append(expired, Expired{Namespace: n.Name, ExpiresAt: exp, CreatedBy: n.Annotations[AnnotationCreatedBy]})
		}
	}
	sort.Slice(expired, func(i, j int) bool {
		if !expired[i].ExpiresAt.Equal(expired[j].ExpiresAt) {
			return expired[i].ExpiresAt.Before(expired[j].ExpiresAt)
		}
		return expired[i].Namespace < expired[j].Namespace
	})
	return expired, unreadable
}

// Prune finds every expired testship environment among the namespaces the
// caller can list (label app.kubernetes.io/managed-by=testship and an
// expires-at annotation before now) and, when confirm is true, deletes
// those namespaces (only those), printing each one on out. Without confirm
// it only prints what it would remove. It returns the namespaces selected
// (deleted, with confirm). It needs list and delete on namespaces.
func Prune(ctx context.Context, cs kubernetes.Interface, now time.Time, confirm bool, out io.Writer) ([]string, error) {
	if out == nil {
		out = io.Discard
	}
	list, err := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: LabelManagedBy + "=" + ManagedBy})
	if err != nil {
		return nil, fmt.Errorf("list testship namespaces: %w", err)
	}
	expired, unreadable := SelectExpired(list.Items, now)
	for _, u := range unreadable {
		fmt.Fprintf(out, "skipped %s\n", u)
	}
	if len(expired) == 0 {
		fmt.Fprintf(out, "no expired testship environment (%d testship namespace(s) seen)\n", len(list.Items))
		return nil, nil
	}
	uids := map[string]types.UID{}
	for _, n := range list.Items {
		uids[n.Name] = n.UID
	}
	var names []string
	var errs []error
	for _, e := range expired {
		what := fmt.Sprintf("namespace %s (created by %s, expired %s, %s ago)", e.Namespace, or(e.CreatedBy, "-"),
			e.ExpiresAt.UTC().Format(time.RFC3339), now.Sub(e.ExpiresAt).Round(time.Second))
		if !confirm {
			fmt.Fprintf(out, "would remove %s\n", what)
			names = append(names, e.Namespace)
			continue
		}
		// The UID precondition deletes exactly the namespace that was
		// judged expired, not one re-created since under the same name.
		uid := uids[e.Namespace]
		err := cs.CoreV1().Namespaces().Delete(ctx, e.Namespace, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete namespace %s: %w", e.Namespace, err))
			continue
		}
		fmt.Fprintf(out, "removed %s\n", what)
		names = append(names, e.Namespace)
	}
	if !confirm {
		fmt.Fprintf(out, "%d expired environment(s); set %s=true to remove them\n", len(names), config.EnvPruneConfirm)
	}
	return names, errors.Join(errs...)
}
