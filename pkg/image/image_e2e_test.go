//go:build e2e

package image

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/docker/docker/api/types/container"
	dockerimage "github.com/docker/docker/api/types/image"
	dockerregistry "github.com/docker/docker/api/types/registry"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/testship/testship/internal/e2e"
	"github.com/testship/testship/internal/ecrfake"
	"github.com/testship/testship/pkg/config"
)

// authRegistry is a real OCI registry (go-containerregistry's) behind basic
// auth on 127.0.0.1, counting the requests that upload anything.
type authRegistry struct {
	*httptest.Server
	host, user, pass string
	mu               sync.Mutex
	uploads          int
}

func startRegistry(t testing.TB) *authRegistry {
	r := &authRegistry{user: "ship", pass: "pw-" + randHex(6)}
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		u, p, ok := req.BasicAuth()
		if !ok || u != r.user || p != r.pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="testship-e2e"`)
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
			return
		}
		if req.Method == http.MethodPut || req.Method == http.MethodPatch || req.Method == http.MethodPost {
			r.mu.Lock()
			r.uploads++
			r.mu.Unlock()
		}
		reg.ServeHTTP(w, req)
	}))
	t.Cleanup(r.Close)
	r.host = strings.TrimPrefix(r.URL, "http://")
	return r
}

func (r *authRegistry) Uploads() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.uploads
}

// dockerConfig points the Docker credential chain at a config holding
// user:pass for host.
func dockerConfig(t testing.TB, host, user, pass string) {
	dir := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, host, auth)), 0o600)
	setenv(t, "DOCKER_CONFIG", dir)
}

func setenv(t testing.TB, k, v string) {
	old, had := os.LookupEnv(k)
	os.Setenv(k, v)
	t.Cleanup(func() {
		if had {
			os.Setenv(k, old)
		} else {
			os.Unsetenv(k)
		}
	})
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// fixture copies testdata/fixture to a fresh package the test may edit.
func fixture(t testing.TB) string {
	dir := filepath.Join("testdata", "run-"+randHex(4))
	if err := os.CopyFS(dir, os.DirFS("testdata/fixture")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return "./" + dir
}

func testConfig(t testing.TB, host, pkg string) config.Image {
	return config.Image{
		Registry: host, RegistryType: "oci", Repository: "e2e" + randHex(3),
		TestPackage: pkg, TestTags: "e2e", Apps: []config.App{{Name: "app", Package: pkg + "/cmd/app"}},
		Platform: config.Get(config.Platform), BaseFrom: "scratch",
		StateDir: t.TempDir(), Progress: "plain",
	}
}

func push(t testing.TB, cfg config.Image) (*State, string) {
	t.Helper()
	var out bytes.Buffer
	st, err := Push(context.Background(), cfg, &out)
	if err != nil {
		t.Fatalf("push: %v\noutput:\n%s", err, out.String())
	}
	return st, out.String()
}

func TestPushOCIEndToEnd(t *testing.T) {
	e2e.Docker(t)
	reg := startRegistry(t)
	dockerConfig(t, reg.host, reg.user, reg.pass)
	pkg := fixture(t)
	cfg := testConfig(t, reg.host, pkg)

	st1, out := push(t, cfg)
	for _, r := range []Ref{st1.Base, st1.Test, st1.Apps["app"]} {
		if !strings.HasPrefix(r.Digest, "sha256:") || !strings.Contains(out, "pushed "+r.Ref+"@"+r.Digest) {
			t.Fatalf("%s not pushed with its digest:\n%s", r.Name, out)
		}
	}
	if got, err := LoadState(cfg.StateDir); err != nil || got.Test != st1.Test {
		t.Fatalf("state file: %+v %v", got, err)
	}

	// Again with nothing changed: every image up to date, nothing uploaded.
	before := reg.Uploads()
	st2, out := push(t, cfg)
	if reg.Uploads() != before {
		t.Fatalf("no-op push uploaded %d requests:\n%s", reg.Uploads()-before, out)
	}
	if strings.Count(out, "up to date (in the registry") != 3 || strings.Contains(out, "pushing") || strings.Contains(out, "building") {
		t.Fatalf("no-op push output:\n%s", out)
	}
	if st2.Test != st1.Test || st2.Base != st1.Base {
		t.Fatalf("refs changed without a change: %+v vs %+v", st2, st1)
	}

	// A one-line change in the test package: a new test image, base and app untouched.
	src := filepath.Join(pkg, "fixture_test.go")
	b, _ := os.ReadFile(src)
	os.WriteFile(src, bytes.Replace(b, []byte(`"v1"`), []byte(`"v2"`), 1), 0o644)
	st3, out := push(t, cfg)
	if st3.Test.Ref == st1.Test.Ref || st3.Test.Digest == st1.Test.Digest {
		t.Fatalf("test image did not change:\n%s", out)
	}
	if st3.Base != st1.Base || st3.Apps["app"] != st1.Apps["app"] {
		t.Fatalf("base or app changed by a test-only edit:\n%s", out)
	}
	if !strings.Contains(out, "base  "+st1.Base.Ref+" up to date") || !strings.Contains(out, "test  pushed") {
		t.Fatalf("output:\n%s", out)
	}

	// Pull the test image back and check what it holds.
	img := pull(t, reg, st3.Test.Ref)
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(cf.Config.Entrypoint) != "[/testship/run]" || cf.Config.User != "65532:65532" {
		t.Fatalf("entrypoint %v user %q", cf.Config.Entrypoint, cf.Config.User)
	}
	files := imageFiles(t, img)
	bin, _ := os.ReadFile(filepath.Join(cfg.StateDir, "build", strings.ReplaceAll(cfg.Platform, "/", "-"), "test"))
	if files["testship/run"].sum != sha(bin) || files["testship/run"].mode&0o111 == 0 {
		t.Fatalf("/testship/run is not the compiled test binary (or not executable)")
	}
	if files["tmp/"].mode != 0o1777 {
		t.Fatalf("/tmp mode %o, want 1777", files["tmp/"].mode)
	}
	for _, f := range []string{"etc/ssl/certs/ca-certificates.crt", "etc/passwd", "etc/group"} {
		if _, ok := files[f]; !ok {
			t.Fatalf("%s missing from the image", f)
		}
	}

	// Run it: the binary runs the tests, as uid 65532, with /tmp and CA bundle.
	code, logs := runImage(t, reg, st3.Test.Ref, []string{"FIXTURE_IN_IMAGE=1"}, "-test.v")
	if code != 0 || !strings.Contains(logs, "fixture v2") || !strings.Contains(logs, "PASS") {
		t.Fatalf("test image exited %d:\n%s", code, logs)
	}
}

func TestPushECREndToEnd(t *testing.T) {
	e2e.Docker(t)
	reg := startRegistry(t)
	fake := ecrfake.Start(reg.host, reg.user, reg.pass, "AKIDTESTSHIP")
	defer fake.Close()
	setenv(t, "DOCKER_CONFIG", t.TempDir()) // no Docker credentials: ECR must provide them
	setenv(t, "AWS_ENDPOINT_URL_ECR", fake.URL)
	setenv(t, "AWS_REGION", "eu-west-1")
	setenv(t, "AWS_ACCESS_KEY_ID", "AKIDTESTSHIP")
	setenv(t, "AWS_SECRET_ACCESS_KEY", "not-a-real-secret")
	setenv(t, "AWS_CONFIG_FILE", "/dev/null")
	setenv(t, "AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	cfg := testConfig(t, reg.host, fixture(t))
	cfg.RegistryType = "ecr"

	st, out := push(t, cfg)
	if len(fake.Repositories()) != 3 || fake.Calls("GetAuthorizationToken") != 1 {
		t.Fatalf("repositories %v, token calls %d", fake.Repositories(), fake.Calls("GetAuthorizationToken"))
	}
	if !strings.HasPrefix(st.Test.Digest, "sha256:") {
		t.Fatalf("no digest:\n%s", out)
	}
	// Second run: DescribeImages finds every tag, nothing is created or uploaded.
	creates, uploads := fake.Calls("CreateRepository"), reg.Uploads()
	st2, out := push(t, cfg)
	if fake.Calls("CreateRepository") != creates || reg.Uploads() != uploads || st2.Test != st.Test {
		t.Fatalf("second ECR push was not a no-op:\n%s", out)
	}
	if strings.Count(out, "up to date (in the registry") != 3 {
		t.Fatalf("output:\n%s", out)
	}

	// Wrong AWS credentials: a named ECR auth failure, nothing pushed.
	setenv(t, "AWS_ACCESS_KEY_ID", "AKIDWRONG")
	cfg.Repository += "x"
	var buf bytes.Buffer
	_, err := Push(context.Background(), cfg, &buf)
	if err == nil || !strings.Contains(err.Error(), "ECR authentication failed") || !strings.Contains(err.Error(), "UnrecognizedClientException") {
		t.Fatalf("want an ECR auth failure, got %v", err)
	}
	if reg.Uploads() != uploads {
		t.Fatal("something was pushed after an auth failure")
	}
}

func TestPushBadInputLeavesNothing(t *testing.T) {
	e2e.Docker(t)
	reg := startRegistry(t)
	pkg := fixture(t)

	check := func(name string, cfg config.Image, want ...string) {
		t.Helper()
		var out bytes.Buffer
		_, err := Push(context.Background(), cfg, &out)
		if err == nil {
			t.Fatalf("%s: want an error", name)
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Fatalf("%s: error %q should contain %q", name, err, w)
			}
		}
		if strings.Contains(err.Error(), reg.pass) || strings.Contains(out.String(), reg.pass) {
			t.Fatalf("%s: the password was printed", name)
		}
		if reg.Uploads() != 0 {
			t.Fatalf("%s: something was pushed", name)
		}
		if _, err := os.Stat(filepath.Join(cfg.StateDir, StateFile)); err == nil {
			t.Fatalf("%s: state recorded after a failure", name)
		}
	}

	dockerConfig(t, reg.host, reg.user, "wrong")
	check("wrong credentials", testConfig(t, reg.host, pkg), "refused the credentials", reg.host, "docker login")

	dockerConfig(t, reg.host, reg.user, reg.pass)
	check("unreachable registry", testConfig(t, "127.0.0.1:1", pkg), "127.0.0.1:1 is not reachable", "TESTSHIP_REGISTRY")

	broken := fixture(t)
	os.WriteFile(filepath.Join(broken, "broken_test.go"), []byte("package fixture\n\nfunc broken() { undefinedThing() }\n"), 0o644)
	check("compile error", testConfig(t, reg.host, broken), "go test -c", "undefined: undefinedThing")

	setenv(t, "DOCKER_HOST", "unix:///nonexistent/docker.sock")
	check("no engine", testConfig(t, reg.host, pkg), "Docker Engine not reachable", "DOCKER_HOST")
}

func TestBuildFailureReadsTheStream(t *testing.T) {
	e2e.Docker(t)
	engine, err := Connect(context.Background(), io.Discard, "plain")
	if err != nil {
		t.Fatal(err)
	}
	defer engine.Close()
	bc := ctxOf(file{Name: "Dockerfile", Mode: 0o644, Data: []byte("FROM scratch\nCOPY missing-file /x\n")})
	ref := "testship-e2e/broken:" + randHex(4)
	err = engine.Build(context.Background(), "broken", bc, ref, nil, nil, "")
	if err == nil || !strings.Contains(err.Error(), "missing-file") {
		t.Fatalf("want the builder's error naming missing-file, got %v", err)
	}
	if has, _ := engine.Has(context.Background(), ref); has {
		t.Fatal("a failed build left a tag")
	}
}

func TestBaseFromAnotherImage(t *testing.T) {
	e2e.Docker(t)
	reg := startRegistry(t)
	dockerConfig(t, reg.host, reg.user, reg.pass)
	cfg := testConfig(t, reg.host, fixture(t))
	st, _ := push(t, cfg)
	// Start a new base FROM the first (any image the engine can get).
	cfg2 := cfg
	cfg2.BaseFrom = st.Base.Ref
	cfg2.Repository += "-derived"
	st2, out := push(t, cfg2)
	if st2.Base.Ref == st.Base.Ref {
		t.Fatalf("derived base has the same tag:\n%s", out)
	}
	code, logs := runImage(t, reg, st2.Test.Ref, []string{"FIXTURE_IN_IMAGE=1"}, "-test.v")
	if code != 0 {
		t.Fatalf("derived test image exited %d:\n%s", code, logs)
	}
}

type entry struct {
	sum  string
	mode int64
}

func pull(t testing.TB, reg *authRegistry, ref string) v1.Image {
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r, remote.WithAuth(&authn.Basic{Username: reg.user, Password: reg.pass}))
	if err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	return img
}

func imageFiles(t testing.TB, img v1.Image) map[string]entry {
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]entry{}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(tr)
			out[strings.TrimPrefix(h.Name, "/")] = entry{sum: sha(b), mode: h.Mode & 0o7777}
		}
		rc.Close()
	}
	return out
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// pullToEngine pulls ref from reg into the Docker Engine.
func pullToEngine(t testing.TB, engine *Engine, reg *authRegistry, ref string) {
	t.Helper()
	enc, _ := dockerregistry.EncodeAuthConfig(dockerregistry.AuthConfig{Username: reg.user, Password: reg.pass, ServerAddress: reg.host})
	rc, err := engine.Client().ImagePull(context.Background(), ref, dockerimage.PullOptions{RegistryAuth: enc})
	if err != nil {
		t.Fatalf("pull %s into the Docker Engine: %v", ref, err)
	}
	defer rc.Close()
	if err := engine.display(rc, nil); err != nil {
		t.Fatalf("pull %s into the Docker Engine: %v", ref, err)
	}
}

// runImage pulls ref from reg (unless nil) into the Docker Engine (the
// direct builder puts it there only with TESTSHIP_LOAD), runs it and returns its exit code and output.
func runImage(t testing.TB, reg *authRegistry, ref string, env []string, args ...string) (int64, string) {
	t.Helper()
	ctx := context.Background()
	engine, err := Connect(ctx, io.Discard, "plain")
	if err != nil {
		t.Fatal(err)
	}
	defer engine.Close()
	cli := engine.Client()
	if reg != nil {
		pullToEngine(t, engine, reg, ref)
	}
	created, err := cli.ContainerCreate(ctx, &container.Config{Image: ref, Env: env, Cmd: args}, &container.HostConfig{NetworkMode: "none"}, nil, nil, "")
	if err != nil {
		t.Fatalf("create container from %s: %v", ref, err)
	}
	defer cli.ContainerRemove(ctx, created.ID, container.RemoveOptions{Force: true})
	if err := cli.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	waitC, errC := cli.ContainerWait(ctx, created.ID, container.WaitConditionNotRunning)
	var code int64
	select {
	case w := <-waitC:
		code = w.StatusCode
	case err := <-errC:
		t.Fatal(err)
	}
	rc, err := cli.ContainerLogs(ctx, created.ID, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var buf bytes.Buffer
	stdcopy.StdCopy(&buf, &buf, rc)
	return code, buf.String()
}

// TestImageTestLoadsOnlyWhenAsked: image:test with the direct builder
// compiles and builds the base; the test image reaches the Engine only with
// TESTSHIP_LOAD=true, and then runs there like the pushed one.
func TestImageTestLoadsOnlyWhenAsked(t *testing.T) {
	e2e.Docker(t)
	cfg := testConfig(t, "127.0.0.1:5000", fixture(t))
	cfg.Apps = nil
	var out bytes.Buffer
	st, err := BuildWith(context.Background(), cfg, config.ImageBuild{Builder: "direct", Compression: Gzip}, StageTest, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	engine, err := Connect(context.Background(), io.Discard, "plain")
	if err != nil {
		t.Fatal(err)
	}
	defer engine.Close()
	if has, _ := engine.Has(context.Background(), st.Test.Ref); has || !strings.Contains(out.String(), "TESTSHIP_LOAD=true") {
		t.Fatalf("image:test without TESTSHIP_LOAD: in the Engine %v\n%s", has, out.String())
	}
	if has, _ := engine.Has(context.Background(), st.Base.Ref); !has {
		t.Fatal("image:test did not build the base")
	}
	out.Reset()
	st, err = BuildWith(context.Background(), cfg, config.ImageBuild{Builder: "direct", Compression: Gzip, Load: true}, StageTest, &out)
	if err != nil || !strings.Contains(out.String(), "test  loaded "+st.Test.Ref) {
		t.Fatalf("load: %v\n%s", err, out.String())
	}
	code, logs := runImage(t, nil, st.Test.Ref, []string{"FIXTURE_IN_IMAGE=1"}, "-test.v")
	if code != 0 || !strings.Contains(logs, "fixture v1") || !strings.Contains(logs, "PASS") {
		t.Fatalf("loaded test image exited %d:\n%s", code, logs)
	}
	// Loaded once: the next image:test finds it in the Engine.
	out.Reset()
	if _, err := BuildWith(context.Background(), cfg, config.ImageBuild{Builder: "direct", Compression: Gzip, Load: true}, StageTest, &out); err != nil || !strings.Contains(out.String(), "test  "+st.Test.Ref+" up to date (built)") {
		t.Fatalf("second load: %v\n%s", err, out.String())
	}
}

// TestReproducibleImages: two pushes of the same package from two state
// directories into two repositories give the same image digests and the
// same layer digests (and the same base tag; the test and app tags name
// their base's repository, so they differ).
func TestReproducibleImages(t *testing.T) {
	e2e.Docker(t)
	reg := startRegistry(t)
	dockerConfig(t, reg.host, reg.user, reg.pass)
	cfg := testConfig(t, reg.host, fixture(t))
	st1, _ := push(t, cfg)
	cfg.Repository += "-again"
	cfg.StateDir = t.TempDir()
	st2, out := push(t, cfg)
	for _, p := range [][2]Ref{{st1.Base, st2.Base}, {st1.Test, st2.Test}, {st1.Apps["app"], st2.Apps["app"]}} {
		if p[0].Digest == "" || p[0].Digest != p[1].Digest || (p[0].Name == "base" && p[0].Tag() != p[1].Tag()) {
			t.Fatalf("%s: %s@%s vs %s@%s\n%s", p[0].Name, p[0].Ref, p[0].Digest, p[1].Ref, p[1].Digest, out)
		}
	}
	l1, _ := pull(t, reg, st1.Test.Ref).Layers()
	l2, _ := pull(t, reg, st2.Test.Ref).Layers()
	for i := range l1 {
		d1, _ := l1[i].Digest()
		d2, _ := l2[i].Digest()
		if d1 != d2 {
			t.Fatalf("layer %d: %s vs %s", i, d1, d2)
		}
	}
}
