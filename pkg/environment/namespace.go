package environment

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"github.com/testship/testship/pkg/config"
	"github.com/testship/testship/pkg/kube"
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
// and env:destroy and env:prune know they may delete them. The marker
// (LabelManagedBy=ManagedBy) is also set on the Helm releases testship
// deploys. Before the testship.dev domain, these labels were testship.io/*
// (LegacyLabel*); the marker did not change.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy      = "testship"
	LabelOwner     = "testship.dev/owner"
	LabelCommit    = "testship.dev/commit"
	LabelTrigger   = "testship.dev/trigger"

	LegacyLabelOwner   = "testship.io/owner"
	LegacyLabelCommit  = "testship.io/commit"
	LegacyLabelTrigger = "testship.io/trigger"

	// LabelPodSecurity is the Pod Security admission label testship sets
	// on the namespaces it creates (ENV_POD_SECURITY).
	LabelPodSecurity = "pod-security.kubernetes.io/enforce"
)

// Annotations on namespaces testship creates: who made it, when, and when
// it expires (RFC 3339, UTC). env:prune deletes the expired ones.
const (
	AnnotationCreatedBy = "testship.dev/created-by"
	AnnotationCreatedAt = "testship.dev/created-at"
	AnnotationExpiresAt = "testship.dev/expires-at"
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
	if config.InActions() {
		o.Owner = config.Get(config.GitHubActor)
		o.Commit = config.Get(config.GitHubSHA)
		o.Trigger = "github-" + config.Get(config.GitHubEventName)
		o.Scope = "run" + config.Get(config.GitHubRunID) + "-" + config.Get(config.GitHubRunAttempt)
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

func (o Origin) labels() map[string]string {
	return map[string]string{
		LabelManagedBy: ManagedBy,
		LabelOwner:     kube.LabelValue(o.Owner),
		LabelCommit:    kube.LabelValue(o.Commit),
		LabelTrigger:   kube.LabelValue(o.Trigger),
	}
}

// nsPolicy is what ensureNamespace may do.
type nsPolicy struct {
	useExisting bool          // a namespace testship did not create may be used
	podSecurity string        // enforce level for a new namespace; "off" or "" sets none
	ttl         time.Duration // the namespace lives at least this long from now
	now         time.Time
}

// newNamespace is the namespace testship creates: its labels (marker,
// owner, commit, trigger, Pod Security level) and annotations (created by,
// at, expires at).
func newNamespace(name string, o Origin, p nsPolicy) *corev1.Namespace {
	l := o.labels()
	if p.podSecurity != "" && p.podSecurity != "off" {
		l[LabelPodSecurity] = p.podSecurity
	}
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l, Annotations: map[string]string{
		AnnotationCreatedBy: o.Owner,
		AnnotationCreatedAt: p.now.UTC().Format(time.RFC3339),
		AnnotationExpiresAt: p.now.Add(p.ttl).UTC().Format(time.RFC3339),
	}}}
}

// ensureNamespace creates the namespace with testship's labels and
// annotations, or, when it exists and is testship's, updates its commit and
// trigger labels and extends its expiry to at least now+ttl. A namespace
// testship did not create is refused unless p.useExisting, and is then used
// as it is (never changed). A namespace still being deleted (a destroy just
// before) is waited for.
func ensureNamespace(ctx context.Context, cs kubernetes.Interface, name string, o Origin, p nsPolicy) (created, managed bool, err error) {
	nss := cs.CoreV1().Namespaces()
	ns, err := nss.Get(ctx, name, metav1.GetOptions{})
	if err == nil && ns.DeletionTimestamp != nil {
		if err := waitNamespaceGone(ctx, cs, name); err != nil {
			return false, false, fmt.Errorf("namespace %s is being deleted and still exists: %w", name, err)
		}
		err = apierrors.NewNotFound(corev1.Resource("namespaces"), name)
	}
	switch {
	case apierrors.IsNotFound(err):
		_, err := nss.Create(ctx, newNamespace(name, o, p), metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			// Created meanwhile (a concurrent deploy): check it again.
			return ensureNamespace(ctx, cs, name, o, p)
		}
		if err != nil {
			return false, false, fmt.Errorf("create namespace %s: %w", name, err)
		}
		return true, true, nil
	case err != nil:
		return false, false, fmt.Errorf("namespace %s: %w", name, err)
	}
	if !IsTestshipNamespace(ns) {
		if !p.useExisting {
			return false, false, &ForeignNamespaceError{Namespace: name}
		}
		return false, false, nil // someone else's namespace: use it, leave it as it is
	}
	l := o.labels()
	labels := map[string]string{}
	if ns.Labels[LabelCommit] != l[LabelCommit] || ns.Labels[LabelTrigger] != l[LabelTrigger] {
		labels[LabelCommit], labels[LabelTrigger] = l[LabelCommit], l[LabelTrigger]
	}
	annotations := map[string]string{}
	if exp, changed := ExtendedExpiry(ns.Annotations[AnnotationExpiresAt], p.now.Add(p.ttl)); changed {
		annotations[AnnotationExpiresAt] = exp
	}
	if len(labels) == 0 && len(annotations) == 0 {
		return false, true, nil
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"labels": labels, "annotations": annotations}})
	if _, err := nss.Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return false, true, fmt.Errorf("label namespace %s: %w", name, err)
	}
	return false, true, nil
}

// ForeignNamespaceError is Deploy's refusal of an existing namespace that
// testship did not create.
type ForeignNamespaceError struct{ Namespace string }

func (e *ForeignNamespaceError) Error() string {
	return fmt.Sprintf("namespace %s exists and was not created by testship (no label %s=%s): refusing to deploy into it. "+
		"Choose another ENV_NAMESPACE (or leave it unset), or set ENV_USE_EXISTING_NAMESPACE=true to deploy into it anyway "+
		"(testship then never deletes it, and uninstalls only the releases it deployed)", e.Namespace, LabelManagedBy, ManagedBy)
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
