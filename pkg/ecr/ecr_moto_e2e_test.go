//go:build e2e

package ecr

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The ECR control-plane calls checked against a second implementation of
// the API: moto's server (https://github.com/getmoto/moto), whose error
// shapes testship did not write.

// startMoto runs moto_server on a free loopback port until the test ends
// and returns its URL. env is added to the server's environment.
func startMoto(t *testing.T, env ...string) string {
	t.Helper()
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		t.Fatalf("moto_server not found (%v): install it with `pip install 'moto[server]'`", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", fmt.Sprint(port))
	cmd.Env = append(os.Environ(), env...)
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start moto_server: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-exited:
			t.Fatalf("moto_server exited: %v\n%s", err, logs.String())
		default:
		}
		if resp, err := http.Get(url + "/moto-api/"); err == nil {
			resp.Body.Close()
			return url
		}
		if time.Now().After(deadline) {
			t.Fatalf("moto_server did not answer on %s within 60s\n%s", url, logs.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func useEndpoint(t *testing.T, url, accessKey string) {
	t.Setenv("AWS_ENDPOINT_URL_ECR", url)
	t.Setenv("AWS_REGION", "eu-west-1")
	t.Setenv("AWS_ACCESS_KEY_ID", accessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", "moto-secret-not-real")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
}

func TestECRAgainstMoto(t *testing.T) {
	url := startMoto(t)
	useEndpoint(t, url, "AKIDTESTSHIPMOTO")
	ctx := context.Background()
	c, err := New(ctx, "", "eu-west-1")
	if err != nil {
		t.Fatal(err)
	}

	user, pass, err := c.Login(ctx)
	if err != nil || user != "AWS" || pass == "" {
		t.Fatalf("token: user %q, password set %v, %v", user, pass != "", err)
	}

	repo := "testship-moto/test"
	if created, err := c.EnsureRepository(ctx, repo); err != nil || !created {
		t.Fatalf("create repository: created=%v %v", created, err)
	}
	// moto answers RepositoryAlreadyExistsException: success, not created.
	if created, err := c.EnsureRepository(ctx, repo); err != nil || created {
		t.Fatalf("already exists: created=%v %v", created, err)
	}
	// ImageNotFoundException: a missing tag is found=false, no error.
	if d, found, err := c.Lookup(ctx, repo, "0123456789abcdef0123"); err != nil || found || d != "" {
		t.Fatalf("missing tag: %q %v %v", d, found, err)
	}
	// RepositoryNotFoundException: the same.
	if d, found, err := c.Lookup(ctx, "testship-moto/nothing-here", "0123456789abcdef0123"); err != nil || found || d != "" {
		t.Fatalf("missing repository: %q %v %v", d, found, err)
	}
	// A bad repository name: moto's validation error, named.
	if _, err := c.EnsureRepository(ctx, "Bad Name"); err == nil || !strings.Contains(err.Error(), `create repository "Bad Name"`) {
		t.Fatalf("want the repository named in the error, got %v", err)
	}
}

func TestECRAgainstMotoBadCredentials(t *testing.T) {
	// With INITIAL_NO_AUTH_ACTION_COUNT=0 moto checks every request's
	// access key against its IAM: an unknown key is refused.
	url := startMoto(t, "INITIAL_NO_AUTH_ACTION_COUNT=0")
	useEndpoint(t, url, "AKIDUNKNOWNTOMOTO")
	ctx := context.Background()
	c, err := New(ctx, "", "eu-west-1")
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = c.Login(ctx)
	if err == nil {
		t.Fatal("want a refused token request")
	}
	msg := err.Error()
	// moto answers 403 with an XML body the JSON protocol cannot decode:
	// reported by its status, not as a deserialization failure.
	if !strings.Contains(msg, "ECR authentication failed (GetAuthorizationToken): HTTP 403 Forbidden (the credentials were refused") || !strings.Contains(msg, "check the AWS credentials") || strings.Contains(msg, "deserialization") {
		t.Fatalf("error should say what failed and what to check: %v", err)
	}
	if strings.Contains(msg, "moto-secret-not-real") {
		t.Fatal("the secret key was printed")
	}
	t.Logf("moto's refusal as testship reports it: %v", err)
}
