package ecr

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

type fakeAPI struct {
	token   string
	tokErr  error
	created map[string]bool
	images  map[string]string
}

func (f *fakeAPI) GetAuthorizationToken(context.Context, *ecr.GetAuthorizationTokenInput, ...func(*ecr.Options)) (*ecr.GetAuthorizationTokenOutput, error) {
	if f.tokErr != nil {
		return nil, f.tokErr
	}
	return &ecr.GetAuthorizationTokenOutput{AuthorizationData: []types.AuthorizationData{{AuthorizationToken: aws.String(f.token)}}}, nil
}

func (f *fakeAPI) CreateRepository(_ context.Context, in *ecr.CreateRepositoryInput, _ ...func(*ecr.Options)) (*ecr.CreateRepositoryOutput, error) {
	if f.created[*in.RepositoryName] {
		return nil, &types.RepositoryAlreadyExistsException{Message: aws.String("exists")}
	}
	f.created[*in.RepositoryName] = true
	return &ecr.CreateRepositoryOutput{}, nil
}

func (f *fakeAPI) DescribeImages(_ context.Context, in *ecr.DescribeImagesInput, _ ...func(*ecr.Options)) (*ecr.DescribeImagesOutput, error) {
	if !f.created[*in.RepositoryName] {
		return nil, &types.RepositoryNotFoundException{Message: aws.String("no repo")}
	}
	d, ok := f.images[*in.RepositoryName+":"+*in.ImageIds[0].ImageTag]
	if !ok {
		return nil, &types.ImageNotFoundException{Message: aws.String("no image")}
	}
	return &ecr.DescribeImagesOutput{ImageDetails: []types.ImageDetail{{ImageDigest: aws.String(d)}}}, nil
}

func TestLoginDecodesToken(t *testing.T) {
	api := &fakeAPI{token: base64.StdEncoding.EncodeToString([]byte("AWS:pa:ss"))}
	u, p, err := (&Client{API: api}).Login(context.Background())
	if err != nil || u != "AWS" || p != "pa:ss" {
		t.Fatalf("got %q %q %v", u, p, err)
	}
	api.token = "!!notbase64"
	if _, _, err := (&Client{API: api}).Login(context.Background()); err == nil || strings.Contains(err.Error(), "!!") {
		t.Fatalf("want an error that does not echo the token, got %v", err)
	}
	api.tokErr = &types.ServerException{Message: aws.String("denied")}
	_, _, err = (&Client{API: api}).Login(context.Background())
	if err == nil || !strings.Contains(err.Error(), "GetAuthorizationToken") || !strings.Contains(err.Error(), "denied") {
		t.Fatalf("error should say what failed: %v", err)
	}
}

func TestEnsureRepositoryIsIdempotent(t *testing.T) {
	c := &Client{API: &fakeAPI{created: map[string]bool{}}}
	created, err := c.EnsureRepository(context.Background(), "testship/test")
	if err != nil || !created {
		t.Fatalf("first: %v %v", created, err)
	}
	created, err = c.EnsureRepository(context.Background(), "testship/test")
	if err != nil || created {
		t.Fatalf("second should find it exists without error: %v %v", created, err)
	}
}

func TestLookup(t *testing.T) {
	api := &fakeAPI{created: map[string]bool{"r": true}, images: map[string]string{"r:t1": "sha256:aa"}}
	c := &Client{API: api}
	if d, ok, err := c.Lookup(context.Background(), "r", "t1"); err != nil || !ok || d != "sha256:aa" {
		t.Fatalf("%q %v %v", d, ok, err)
	}
	if _, ok, err := c.Lookup(context.Background(), "r", "t2"); err != nil || ok {
		t.Fatalf("missing tag: %v %v", ok, err)
	}
	if _, ok, err := c.Lookup(context.Background(), "nope", "t1"); err != nil || ok {
		t.Fatalf("missing repository: %v %v", ok, err)
	}
}

func TestDescribeUndecodableRefusal(t *testing.T) {
	resp := &awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{
		Response: &smithyhttp.Response{Response: &http.Response{StatusCode: 403}},
		Err:      errors.New("deserialization failed, invalid character '<'")}, RequestID: "r1"}
	api := &fakeAPI{tokErr: &smithy.OperationError{ServiceID: "ECR", OperationName: "GetAuthorizationToken", Err: resp}}
	_, _, err := (&Client{API: api}).Login(context.Background())
	if err == nil || !strings.Contains(err.Error(), "HTTP 403 Forbidden (the credentials were refused; request ID r1)") || strings.Contains(err.Error(), "deserialization") {
		t.Fatalf("got %v", err)
	}
}
