// Package linkserver is the link example service: a small URL shortener
// whose replicas share their links through a Kubernetes ConfigMap, so any
// replica resolves a link created through any other.
package linkserver

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/util/retry"
)

// ErrExists is returned when a code is already taken.
var ErrExists = errors.New("code already exists")

// ErrNotFound is returned for an unknown code.
var ErrNotFound = errors.New("no such link")

// Link is a short code and the URL it resolves to.
type Link struct {
	Code string `json:"code"`
	URL  string `json:"url"`
}

// Store keeps links. Created counts every link ever created, across all
// replicas (the example's "the test ran exactly once" witness).
type Store interface {
	Create(ctx context.Context, l Link) error
	Get(ctx context.Context, code string) (Link, error)
	List(ctx context.Context) ([]Link, error)
	Created(ctx context.Context) (int, error)
	Ping(ctx context.Context) error
}

// Memory is a Store for one process (tests, local runs).
type Memory struct {
	mu      sync.Mutex
	links   map[string]string
	created int
}

func NewMemory() *Memory { return &Memory{links: map[string]string{}} }

func (m *Memory) Create(_ context.Context, l Link) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.links[l.Code]; ok {
		return ErrExists
	}
	m.links[l.Code] = l.URL
	m.created++
	return nil
}

func (m *Memory) Get(_ context.Context, code string) (Link, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.links[code]
	if !ok {
		return Link{}, ErrNotFound
	}
	return Link{Code: code, URL: u}, nil
}

func (m *Memory) List(context.Context) ([]Link, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return sorted(m.links), nil
}

func (m *Memory) Created(context.Context) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.created, nil
}

func (m *Memory) Ping(context.Context) error { return nil }

// ConfigMap is a Store in one ConfigMap: key "link.<code>" holds the URL and
// key "created" the counter. Writes use the ConfigMap's resourceVersion
// (optimistic concurrency) so replicas never lose each other's links; reads
// go to the API server, so every replica sees every link at once.
type ConfigMap struct {
	Client    corev1client.ConfigMapsGetter
	Namespace string
	Name      string
}

const (
	linkPrefix = "link."
	createdKey = "created"
)

func (s *ConfigMap) Create(ctx context.Context, l Link) error {
	cms := s.Client.ConfigMaps(s.Namespace)
	return retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		cm, err := cms.Get(ctx, s.Name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("store %s/%s: %w", s.Namespace, s.Name, err)
		}
		if _, ok := cm.Data[linkPrefix+l.Code]; ok {
			return ErrExists
		}
		if cm.Data == nil {
			cm.Data = map[string]string{}
		}
		cm.Data[linkPrefix+l.Code] = l.URL
		n, _ := strconv.Atoi(cm.Data[createdKey])
		cm.Data[createdKey] = strconv.Itoa(n + 1)
		_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
		return err
	})
}

func (s *ConfigMap) data(ctx context.Context) (map[string]string, error) {
	cm, err := s.Client.ConfigMaps(s.Namespace).Get(ctx, s.Name, metav1.GetOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("store ConfigMap %s/%s does not exist (the chart creates it)", s.Namespace, s.Name)
		}
		return nil, fmt.Errorf("store %s/%s: %w", s.Namespace, s.Name, err)
	}
	return cm.Data, nil
}

func (s *ConfigMap) Get(ctx context.Context, code string) (Link, error) {
	d, err := s.data(ctx)
	if err != nil {
		return Link{}, err
	}
	u, ok := d[linkPrefix+code]
	if !ok {
		return Link{}, ErrNotFound
	}
	return Link{Code: code, URL: u}, nil
}

func (s *ConfigMap) List(ctx context.Context) ([]Link, error) {
	d, err := s.data(ctx)
	if err != nil {
		return nil, err
	}
	links := map[string]string{}
	for k, v := range d {
		if code, ok := cutPrefix(k, linkPrefix); ok {
			links[code] = v
		}
	}
	return sorted(links), nil
}

func (s *ConfigMap) Created(ctx context.Context) (int, error) {
	d, err := s.data(ctx)
	if err != nil {
		return 0, err
	}
	n, _ := strconv.Atoi(d[createdKey])
	return n, nil
}

func (s *ConfigMap) Ping(ctx context.Context) error {
	_, err := s.data(ctx)
	return err
}

func cutPrefix(s, p string) (string, bool) {
	if len(s) >= len(p) && s[:len(p)] == p {
		return s[len(p):], true
	}
	return "", false
}

func sorted(m map[string]string) []Link {
	out := make([]Link, 0, len(m))
	for c, u := range m {
		out = append(out, Link{Code: c, URL: u})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Code < out[j].Code })
	return out
}
