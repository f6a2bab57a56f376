// Package ecr talks to the Amazon ECR control plane with aws-sdk-go-v2:
// registry credentials (GetAuthorizationToken), repository creation and
// image lookup. Credentials come from the SDK's default chain (environment,
// profiles, SSO, web identity in GitHub Actions); AWS_ENDPOINT_URL_ECR
// points the client at another endpoint.
package ecr

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/smithy-go"
)

// API is the part of the ECR client testship uses.
type API interface {
	GetAuthorizationToken(context.Context, *ecr.GetAuthorizationTokenInput, ...func(*ecr.Options)) (*ecr.GetAuthorizationTokenOutput, error)
	CreateRepository(context.Context, *ecr.CreateRepositoryInput, ...func(*ecr.Options)) (*ecr.CreateRepositoryOutput, error)
	DescribeImages(context.Context, *ecr.DescribeImagesInput, ...func(*ecr.Options)) (*ecr.DescribeImagesOutput, error)
}

// Client is an ECR registry's control plane.
type Client struct {
	API     API
	Account string // registry ID; empty means the caller's default registry
}

// New makes a client with the SDK's default configuration. region may be
// empty to use the SDK's own (AWS_REGION, profile).
func New(ctx context.Context, account, region string) (*Client, error) {
	var opts []func(*awsconfig.LoadOptions) error
	if region != "" {
		opts = append(opts, awsconfig.WithRegion(region))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("ECR: load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return nil, errors.New("ECR: no AWS region: set AWS_REGION (or use an <account>.dkr.ecr.<region>.amazonaws.com registry host)")
	}
	return &Client{API: ecr.NewFromConfig(cfg), Account: account}, nil
}

func (c *Client) registryID() *string {
	if c.Account == "" {
		return nil
	}
	return aws.String(c.Account)
}

// Login returns the Docker registry credentials of an ECR authorization
// token. The password is a secret: callers must not print it.
func (c *Client) Login(ctx context.Context) (user, password string, err error) {
	in := &ecr.GetAuthorizationTokenInput{}
	if c.Account != "" {
		in.RegistryIds = []string{c.Account} //nolint:staticcheck // still honoured by ECR
	}
	out, err := c.API.GetAuthorizationToken(ctx, in)
	if err != nil {
		return "", "", fmt.Errorf("ECR authentication failed (GetAuthorizationToken): %s; check the AWS credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID, or the role assumed in CI)", describe(err))
	}
	if len(out.AuthorizationData) == 0 || out.AuthorizationData[0].AuthorizationToken == nil {
		return "", "", errors.New("ECR authentication failed: GetAuthorizationToken returned no token")
	}
	raw, err := base64.StdEncoding.DecodeString(aws.ToString(out.AuthorizationData[0].AuthorizationToken))
	if err != nil {
		return "", "", errors.New("ECR authentication failed: the authorization token is not base64")
	}
	user, password, ok := strings.Cut(string(raw), ":")
	if !ok {
		return "", "", errors.New("ECR authentication failed: the authorization token is not user:password")
	}
	return user, password, nil
}

// EnsureRepository creates the repository unless it exists. It reports
// whether it created it.
func (c *Client) EnsureRepository(ctx context.Context, name string) (bool, error) {
	_, err := c.API.CreateRepository(ctx, &ecr.CreateRepositoryInput{
		RepositoryName: aws.String(name),
		RegistryId:     c.registryID(),
	})
	var exists *types.RepositoryAlreadyExistsException
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &exists):
		return false, nil
	}
	return false, fmt.Errorf("ECR: create repository %q: %s", name, describe(err))
}

// Lookup returns the digest of repository:tag, or found=false when the
// repository or the tag does not exist.
func (c *Client) Lookup(ctx context.Context, repository, tag string) (digest string, found bool, err error) {
	out, err := c.API.DescribeImages(ctx, &ecr.DescribeImagesInput{
		RepositoryName: aws.String(repository),
		RegistryId:     c.registryID(),
		ImageIds:       []types.ImageIdentifier{{ImageTag: aws.String(tag)}},
	})
	var noImage *types.ImageNotFoundException
	var noRepo *types.RepositoryNotFoundException
	switch {
	case errors.As(err, &noImage), errors.As(err, &noRepo):
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("ECR: describe image %s:%s: %s", repository, tag, describe(err))
	case len(out.ImageDetails) == 0:
		return "", false, nil
	}
	return aws.ToString(out.ImageDetails[0].ImageDigest), true, nil
}

// describe shortens an SDK error to its code and message. An endpoint
// whose refusal is not an ECR error document (a proxy's or emulator's
// HTML/XML page) is reported by its HTTP status.
func describe(err error) string {
	var api smithy.APIError
	if errors.As(err, &api) {
		return api.ErrorCode() + ": " + api.ErrorMessage()
	}
	var resp *awshttp.ResponseError
	if errors.As(err, &resp) && resp.HTTPStatusCode() >= 400 {
		code := resp.HTTPStatusCode()
		what := "the endpoint refused the request"
		if code == http.StatusUnauthorized || code == http.StatusForbidden {
			what = "the credentials were refused"
		}
		return fmt.Sprintf("HTTP %d %s (%s; request ID %s)", code, http.StatusText(code), what, resp.ServiceRequestID())
	}
	return err.Error()
}
