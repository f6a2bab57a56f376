package environment

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"regexp"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
)

// Labels on namespaces testship creates, so a person can see who made them
// and env:destroy knows it may delete them.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy      = "testship"
	LabelOwner     = "testship.io/owner"
	LabelCommit    = "testship.io/commit"
	LabelTrigger   = "testship.io/trigger"
)

// Origin says who deploys an environment, from what and why.
type Origin struct {
	Owner   string // person or CI actor
	Commit  string // git commit of the code under test
	Trigger string // local, go-test, github-push, github-pull_request, ...
	Scope   string // what distinguishes this owner's environments: branch or CI run
}

// DetectOrigin fills an Origin from GitHub Actions' variables or the local
// user and git checkout. trigger is used outside CI (e.g. "local").
func DetectOrigin(trigger string) Origin {
	o := Origin{Trigger: trigger}
	if os.Getenv("GITHUB_ACTIONS") == "true" {
		o.Owner = os.Getenv("GITHUB_ACTOR")
		o.Commit = os.Getenv("GITHUB_SHA")
		o.Trigger = "github-" + os.Getenv("GITHUB_EVENT_NAME")
		o.Scope = "run" + os.Getenv("GITHUB_RUN_ID") + "-" + os.Getenv("GITHUB_RUN_ATTEMPT")
	}
	if o.Owner == "" {
		o.Owner = os.Getenv("USER")
	}
	if o.Owner == "" {
		if u, err := user.Current(); err == nil {
			o.Owner = u.Username
		}
	}
	if o.Commit == "" {
		o.Commit = git("rev-parse", "HEAD")
	}
	if o.Scope == "" {
		o.Scope = git("rev-parse", "--abbrev-ref", "HEAD")
	}
	if o.Owner == "" {
		o.Owner = "unknown"
	}
	if o.Commit == "" {
		o.Commit = "unknown"
	}
	if o.Scope == "" || o.Scope == "HEAD" {
		o.Scope = "dev"
	}
	if o.Trigger == "" {
		o.Trigger = "local"
	}
	return o
}

func git(args ...string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "git", args...).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

var notDNS = regexp.MustCompile(`[^a-z0-9]+`)

func sanitize(s string) string {
	return strings.Trim(notDNS.ReplaceAllString(strings.ToLower(s), "-"), "-")
}

// GenerateNamespace names an owner's environment for a scope (branch or CI
// run): ts-<owner>-<scope>, a valid DNS label of at most 63 characters. The
// same inputs give the same name, so repeated deploys land in the same place.
func GenerateNamespace(o Origin) string {
	name := "ts-" + sanitize(o.Owner) + "-" + sanitize(o.Scope)
	name = strings.Trim(strings.ReplaceAll(name, "--", "-"), "-")
	if len(name) > 63 {
		sum := sha256.Sum256([]byte(name))
		name = strings.TrimRight(name[:54], "-") + "-" + hex.EncodeToString(sum[:])[:8]
	}
	return name
}

var labelValueRE = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// labelValue makes s a valid label value (63 characters, alphanumeric ends).
func labelValue(s string) string {
	s = labelValueRE.ReplaceAllString(s, "_")
	if len(s) > 63 {
		s = s[:63]
	}
	return strings.Trim(s, "._-")
}

func (o Origin) labels() map[string]string {
	return map[string]string{
		LabelManagedBy: ManagedBy,
		LabelOwner:     labelValue(o.Owner),
		LabelCommit:    labelValue(o.Commit),
		LabelTrigger:   labelValue(o.Trigger),
	}
}

// ensureNamespace creates the namespace with testship's labels, or, when it
// exists and is testship's, updates its commit and trigger labels. A
// namespace still being deleted (a destroy just before) is waited for.
func ensureNamespace(ctx context.Context, cs kubernetes.Interface, name string, o Origin) (created bool, err error) {
	nss := cs.CoreV1().Namespaces()
	ns, err := nss.Get(ctx, name, metav1.GetOptions{})
	if err == nil && ns.DeletionTimestamp != nil {
		if err := waitNamespaceGone(ctx, cs, name); err != nil {
			return false, fmt.Errorf("namespace %s is being deleted and still exists: %w", name, err)
		}
		err = apierrors.NewNotFound(corev1.Resource("namespaces"), name)
	}
	switch {
	case apierrors.IsNotFound(err):
		_, err := nss.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: o.labels()}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return false, fmt.Errorf("create namespace %s: %w", name, err)
		}
		return err == nil, nil
	case err != nil:
		return false, fmt.Errorf("namespace %s: %w", name, err)
	}
	if ns.Labels[LabelManagedBy] != ManagedBy {
		return false, nil // someone else's namespace: use it, leave it as it is
	}
	l := o.labels()
	if ns.Labels[LabelCommit] == l[LabelCommit] && ns.Labels[LabelTrigger] == l[LabelTrigger] {
		return false, nil
	}
	patch := fmt.Sprintf(`{"metadata":{"labels":{%q:%q,%q:%q}}}`, LabelCommit, l[LabelCommit], LabelTrigger, l[LabelTrigger])
	if _, err := nss.Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		return false, fmt.Errorf("label namespace %s: %w", name, err)
	}
	return false, nil
}

// waitNamespaceGone watches the namespace until it no longer exists.
func waitNamespaceGone(ctx context.Context, cs kubernetes.Interface, name string) error {
	sel := fields.OneTermEqualSelector("metadata.name", name).String()
	lw := &cache.ListWatch{
		ListFunc: func(o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = sel
			return cs.CoreV1().Namespaces().List(ctx, o)
		},
		WatchFunc: func(o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = sel
			return cs.CoreV1().Namespaces().Watch(ctx, o)
		},
	}
	_, err := watchtools.UntilWithSync(ctx, lw, &corev1.Namespace{}, func(store cache.Store) (bool, error) {
		return len(store.List()) == 0, nil
	}, func(ev watch.Event) (bool, error) {
		return ev.Type == watch.Deleted, nil
	})
	return err
}
