// Package imageref pins image references: a tag becomes repo@sha256:...,
// the digest the registry serves for it now, so that what runs is exactly
// what was resolved, and two runs of "the same tag" pushed apart are told
// apart.
package imageref

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/testship/testship/pkg/config"
	"github.com/testship/testship/pkg/ecr"
)

// Pinned reports whether ref names its image by digest.
func Pinned(ref string) bool { return strings.Contains(ref, "@sha256:") }

// Resolve returns ref pinned by digest (registry/repo@sha256:...). A
// reference already pinned is returned as it is, without a request. A tag
// is looked up with a HEAD request to its registry: credentials from the
// Docker config (authn.DefaultKeychain) for that host only, or, for an ECR
// host, a token from ECR for that host's account and region. A reference
// that cannot be resolved is an error saying why.
func Resolve(ctx context.Context, ref string) (string, error) {
	if Pinned(ref) {
		if _, err := name.NewDigest(ref); err != nil {
			return "", fmt.Errorf("imageref: %q is not a valid image reference: %w", ref, err)
		}
		return ref, nil
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		return "", fmt.Errorf("imageref: %q is not a valid image reference (want registry/repository:tag or registry/repository@sha256:...): %w", ref, err)
	}
	auth, err := authFor(ctx, r.Context().RegistryStr())
	if err != nil {
		return "", fmt.Errorf("imageref: resolve %s: %w", ref, err)
	}
	desc, err := remote.Head(r, remote.WithContext(ctx), auth)
	if err != nil {
		return "", fmt.Errorf("imageref: resolve %s to a digest (is it pushed, and may this machine pull it?): %w", ref, err)
	}
	return r.Context().Name() + "@" + desc.Digest.String(), nil
}

// authFor returns how to authenticate to host: an ECR token for an ECR
// host, otherwise what the Docker config holds for that host.
func authFor(ctx context.Context, host string) (remote.Option, error) {
	account, region, ok := config.ParseECRHost(host)
	if !ok {
		return remote.WithAuthFromKeychain(authn.DefaultKeychain), nil
	}
	c, err := ecr.New(ctx, account, region)
	if err != nil {
		return nil, err
	}
	user, pass, err := c.Login(ctx)
	if err != nil {
		return nil, err
	}
	return remote.WithAuth(&authn.Basic{Username: user, Password: pass}), nil
}
