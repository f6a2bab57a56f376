package environment

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/release"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Status is an environment as it is now.
type Status struct {
	Namespace string
	Exists    bool
	Labels    map[string]string
	// Annotations of the namespace (testship.dev/created-by, created-at,
	// expires-at on the namespaces testship creates).
	Annotations map[string]string
	Releases    []Release
	Others      []string // other testship namespaces in the cluster
}

// listReleases returns the newest revision of every release in ns, any state.
func listReleases(cfg *action.Configuration) ([]*release.Release, error) {
	l := action.NewList(cfg)
	l.All = true
	l.StateMask = action.ListAll
	l.SetStateMask()
	rels, err := l.Run()
	if err != nil {
		return nil, err
	}
	sort.Slice(rels, func(i, j int) bool { return rels[i].Name < rels[j].Name })
	return rels, nil
}

// GetStatus reads the releases of the namespace and their workloads'
// readiness (without waiting).
func GetStatus(ctx context.Context, rc *rest.Config, ns string) (*Status, error) {
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	st := &Status{Namespace: ns}
	if all, err := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: LabelManagedBy + "=" + ManagedBy}); err == nil {
		for _, n := range all.Items {
			if n.Name != ns {
				st.Others = append(st.Others, fmt.Sprintf("%s (owner %s, commit %s, trigger %s, %s)", n.Name,
					label(n.Labels, LabelOwner, LegacyLabelOwner), short(label(n.Labels, LabelCommit, LegacyLabelCommit)),
					label(n.Labels, LabelTrigger, LegacyLabelTrigger), expiry(n.Annotations, time.Now())))
			}
		}
	}
	n, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return st, nil
	}
	if err != nil {
		return nil, fmt.Errorf("namespace %s: %w", ns, err)
	}
	st.Exists, st.Labels, st.Annotations = true, n.Labels, n.Annotations
	cfg, err := helmConfig(rc, ns, nil)
	if err != nil {
		return nil, err
	}
	rels, err := listReleases(cfg)
	if err != nil {
		return nil, fmt.Errorf("releases in %s: %w", ns, err)
	}
	for _, rel := range rels {
		r := Release{Name: rel.Name, Revision: rel.Version, Status: rel.Info.Status.String(), Digest: rel.Labels[LabelDigest]}
		if rel.Chart != nil && rel.Chart.Metadata != nil {
			r.Chart, r.ChartVersion = rel.Chart.Metadata.Name, rel.Chart.Metadata.Version
		}
		if rel.Info.Status == release.StatusFailed && rel.Info.Description != "" {
			r.Status += ": " + firstLine(rel.Info.Description)
		}
		for _, w := range workloads(rel.Manifest) {
			ws, err := inspect(ctx, cs, ns, w)
			if apierrors.IsNotFound(err) {
				ws.Problem = "missing"
			} else if err != nil {
				return nil, err
			}
			r.Workloads = append(r.Workloads, ws)
		}
		st.Releases = append(st.Releases, r)
	}
	return st, nil
}

// Print writes the status for a person.
func (s *Status) Print(w io.Writer) {
	if !s.Exists {
		fmt.Fprintf(w, "namespace %s: does not exist (nothing deployed)\n", s.Namespace)
	} else {
		fmt.Fprintf(w, "namespace %s (owner %s, commit %s, trigger %s)\n", s.Namespace,
			or(label(s.Labels, LabelOwner, LegacyLabelOwner), "-"), or(short(label(s.Labels, LabelCommit, LegacyLabelCommit)), "-"),
			or(label(s.Labels, LabelTrigger, LegacyLabelTrigger), "-"))
		if s.Labels[LabelManagedBy] != ManagedBy {
			fmt.Fprintln(w, "  not created by testship: env:destroy and env:prune never delete it")
		} else {
			fmt.Fprintf(w, "  created by %s at %s, %s\n", or(s.Annotations[AnnotationCreatedBy], "-"),
				or(s.Annotations[AnnotationCreatedAt], "-"), expiry(s.Annotations, time.Now()))
		}
		if len(s.Releases) == 0 {
			fmt.Fprintln(w, "  no releases")
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  RELEASE\tCHART\tREVISION\tSTATUS\tWORKLOAD\tREADY")
		for _, r := range s.Releases {
			first := true
			row := func(wl, ready string) {
				if first {
					fmt.Fprintf(tw, "  %s\t%s-%s\t%d\t%s\t%s\t%s\n", r.Name, r.Chart, r.ChartVersion, r.Revision, r.Status, wl, ready)
					first = false
				} else {
					fmt.Fprintf(tw, "  \t\t\t\t%s\t%s\n", wl, ready)
				}
			}
			if len(r.Workloads) == 0 {
				row("-", "-")
			}
			for _, ws := range r.Workloads {
				ready := fmt.Sprintf("%d/%d", ws.Ready, ws.Want)
				if ws.Problem != "" && !ws.OK {
					ready += " (" + ws.Problem + ")"
				}
				row(ws.Workload.String(), ready)
			}
		}
		tw.Flush()
	}
	if len(s.Others) > 0 {
		fmt.Fprintf(w, "other testship environments:\n  %s\n", strings.Join(s.Others, "\n  "))
	}
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Ready reports whether every release is deployed and every workload ready.
func (s *Status) Ready() bool {
	if !s.Exists || len(s.Releases) == 0 {
		return false
	}
	for _, r := range s.Releases {
		if r.Status != release.StatusDeployed.String() {
			return false
		}
		for _, w := range r.Workloads {
			if !w.OK {
				return false
			}
		}
	}
	return true
}

// label returns the label, or its pre-testship.dev name's value.
func label(l map[string]string, name, legacy string) string {
	if v := l[name]; v != "" {
		return v
	}
	return l[legacy]
}

// expiry describes a namespace's expires-at annotation.
func expiry(a map[string]string, now time.Time) string {
	v, ok := a[AnnotationExpiresAt]
	if !ok {
		return "no expiry (env:prune never removes it)"
	}
	t, err := ParseExpiry(v)
	if err != nil {
		return "expiry unreadable (" + v + ")"
	}
	if t.Before(now) {
		return fmt.Sprintf("expired at %s (%s ago; env:prune removes it)", v, now.Sub(t).Round(time.Second))
	}
	return fmt.Sprintf("expires at %s (in %s)", v, t.Sub(now).Round(time.Second))
}
