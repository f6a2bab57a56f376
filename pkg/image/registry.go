package image

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	dockerregistry "github.com/docker/docker/api/types/registry"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/testship/testship/pkg/config"
	"github.com/testship/testship/pkg/ecr"
)

// Registry is where images are pushed: ECR (control plane through the AWS
// SDK) or any OCI registry (the user's Docker credentials).
type Registry interface {
	// Auth returns the credentials the Docker Engine pushes and pulls with.
	Auth(ctx context.Context) (dockerregistry.AuthConfig, error)
	// Ensure makes the repository exist (ECR creates it; others need not).
	Ensure(ctx context.Context, repository string) error
	// Lookup returns the digest of repository:tag, found=false when absent.
	Lookup(ctx context.Context, repository, tag string) (digest string, found bool, err error)
}

// NewRegistry returns the Registry for the configuration.
func NewRegistry(ctx context.Context, c config.Image) (Registry, error) {
	if c.RegistryType == "ecr" {
		account, region, _ := config.ParseECRHost(c.Registry)
		client, err := ecr.New(ctx, account, region)
		if err != nil {
			return nil, err
		}
		return &ecrRegistry{host: c.Registry, client: client}, nil
	}
	return &ociRegistry{host: c.Registry, keychain: authn.DefaultKeychain}, nil
}

// ociRegistry is any registry speaking the OCI distribution API.
type ociRegistry struct {
	host     string
	keychain authn.Keychain
	auth     *dockerregistry.AuthConfig
}

func (r *ociRegistry) Auth(ctx context.Context) (dockerregistry.AuthConfig, error) {
	if r.auth != nil {
		return *r.auth, nil
	}
	reg, err := name.NewRegistry(r.host)
	if err != nil {
		return dockerregistry.AuthConfig{}, err
	}
	a, err := r.keychain.Resolve(reg)
	if err != nil {
		return dockerregistry.AuthConfig{}, fmt.Errorf("read Docker credentials for %s: %w", r.host, err)
	}
	cfg, err := authn.Authorization(ctx, a)
	if err != nil {
		return dockerregistry.AuthConfig{}, fmt.Errorf("read Docker credentials for %s: %w", r.host, err)
	}
	r.auth = &dockerregistry.AuthConfig{Username: cfg.Username, Password: cfg.Password, Auth: cfg.Auth,
		IdentityToken: cfg.IdentityToken, RegistryToken: cfg.RegistryToken, ServerAddress: r.host}
	return *r.auth, nil
}

func (r *ociRegistry) Ensure(context.Context, string) error { return nil }

func (r *ociRegistry) Lookup(ctx context.Context, repository, tag string) (string, bool, error) {
	auth, err := r.Auth(ctx)
	if err != nil {
		return "", false, err
	}
	return headTag(ctx, r.host, repository, tag, auth)
}

// headTag asks the registry for a manifest's digest. A missing tag is not
// an error; an unreachable registry or refused credentials are, named.
func headTag(ctx context.Context, host, repository, tag string, auth dockerregistry.AuthConfig) (string, bool, error) {
	ref, err := name.ParseReference(host + "/" + repository + ":" + tag)
	if err != nil {
		return "", false, fmt.Errorf("invalid image reference %s/%s:%s: %w", host, repository, tag, err)
	}
	desc, err := remote.Head(ref, remote.WithContext(ctx), remote.WithAuth(authn.FromConfig(authn.AuthConfig{
		Username: auth.Username, Password: auth.Password, Auth: auth.Auth,
		IdentityToken: auth.IdentityToken, RegistryToken: auth.RegistryToken})))
	if err == nil {
		return desc.Digest.String(), true, nil
	}
	var terr *transport.Error
	if errors.As(err, &terr) {
		switch terr.StatusCode {
		case http.StatusNotFound:
			return "", false, nil
		case http.StatusUnauthorized, http.StatusForbidden:
			return "", false, fmt.Errorf("registry %s refused the credentials for %s (HTTP %d): log in with `docker login %s` (or fix DOCKER_CONFIG) and retry", host, repository, terr.StatusCode, host)
		}
	}
	if ctx.Err() != nil {
		return "", false, ctx.Err()
	}
	return "", false, fmt.Errorf("registry %s is not reachable: %v; check %s and that the registry is running", host, shorten(err), config.Registry)
}

func shorten(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": dial tcp"); i >= 0 {
		return s[i+2:]
	}
	return s
}

// ecrRegistry is Amazon ECR: credentials from GetAuthorizationToken,
// repositories created on demand, lookups through DescribeImages.
type ecrRegistry struct {
	host   string
	client *ecr.Client
	auth   *dockerregistry.AuthConfig
}

func (r *ecrRegistry) Auth(ctx context.Context) (dockerregistry.AuthConfig, error) {
	if r.auth != nil {
		return *r.auth, nil
	}
	user, pass, err := r.client.Login(ctx)
	if err != nil {
		return dockerregistry.AuthConfig{}, err
	}
	r.auth = &dockerregistry.AuthConfig{Username: user, Password: pass, ServerAddress: r.host}
	return *r.auth, nil
}

func (r *ecrRegistry) Ensure(ctx context.Context, repository string) error {
	_, err := r.client.EnsureRepository(ctx, repository)
	return err
}

func (r *ecrRegistry) Lookup(ctx context.Context, repository, tag string) (string, bool, error) {
	return r.client.Lookup(ctx, repository, tag)
}
