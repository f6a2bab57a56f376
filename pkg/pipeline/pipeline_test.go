package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/magefile/mage/mg"

	"github.com/testship/testship/pkg/config"
	"github.com/testship/testship/pkg/runner"
)

func TestAfter(t *testing.T) {
	passed := &runner.Result{ExitCode: 0}
	failed := &runner.Result{ExitCode: 1}
	waitTimeout := &runner.Result{ExitCode: runner.ExitWaitTimeout, Reason: runner.ReasonWaitTimeout}
	fault := &runner.Result{ExitCode: runner.ExitImagePull, Reason: runner.ReasonImagePull}
	for _, c := range []struct {
		name        string
		detach      bool
		res         *runner.Result
		interrupted bool
		want        Outcome
	}{
		{"passed", false, passed, false, Finish},
		{"failed", false, failed, false, Finish},
		{"fault", false, fault, false, Finish},
		{"launch or follow error", false, nil, false, Finish},
		{"detached", true, &runner.Result{Detached: true}, false, Leave},
		{"local wait timeout", false, waitTimeout, false, Leave},
		{"interrupted", false, nil, true, Leave},
		{"interrupted after a result", false, failed, true, Leave},
	} {
		if got := After(c.detach, c.res, c.interrupted); got != c.want {
			t.Errorf("%s: After = %s, want %s", c.name, got, c.want)
		}
	}
}

func TestEventsPath(t *testing.T) {
	for in, want := range map[string]string{
		"report.xml":         "report.json",
		"out/junit.xml":      "out/junit.json",
		"/tmp/a.b/report":    "/tmp/a.b/report.json",
		"results/run.1.xml":  "results/run.1.json",
		"report.json":        "report.json",
		"dir.d/report.junit": "dir.d/report.json",
	} {
		if got := EventsPath(in); got != want {
			t.Errorf("EventsPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestGoTestArgs(t *testing.T) {
	got := GoTestArgs("30m0s", "e2e", "^TestLink$", "./tests/link")
	want := []string{"test", "-v", "-count=1", "-timeout", "30m0s", "-tags", "e2e", "-run", "^TestLink$", "./tests/link"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("GoTestArgs = %q, want %q", got, want)
	}
	got = GoTestArgs("5m0s", "", "", "./x")
	want = []string{"test", "-v", "-count=1", "-timeout", "5m0s", "./x"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("GoTestArgs without tags and pattern = %q, want %q", got, want)
	}
}

func TestExit(t *testing.T) {
	if Exit(nil) != nil {
		t.Fatal("Exit(nil) != nil")
	}
	status := func(err error) int {
		t.Helper()
		var st interface{ ExitStatus() int }
		if !errors.As(err, &st) {
			t.Fatalf("%v has no exit status", err)
		}
		return st.ExitStatus()
	}
	// the run's own code, also when wrapped
	run := &runner.ExitError{Code: 3, Message: "test failed"}
	if got := Exit(fmt.Errorf("wrapped: %w", run)); got != run {
		t.Errorf("Exit(wrapped run error) = %v, want the run's *ExitError", got)
	}
	// any other error with an exit status passes through
	fatal := mg.Fatalf(7, "seven")
	if got := Exit(fatal); status(got) != 7 || got.Error() != "seven" {
		t.Errorf("Exit(mg.Fatalf(7)) = %v with status %d", got, status(got))
	}
	// everything else is testship's own failure: 89, never 1
	got := Exit(&config.Error{Name: "TESTSHIP_TIMEOUT", Value: "x", Want: "a duration"})
	if status(got) != runner.ExitInfra {
		t.Errorf("Exit(config error) has status %d, want %d", status(got), runner.ExitInfra)
	}
	if got := Exit(errors.New("no cluster")); got.Error() != "no cluster" {
		t.Errorf("Exit changed the message to %q", got.Error())
	}
}

// TestGoTest runs a fake `go` that records its arguments and environment
// and exits 3.
func TestGoTest(t *testing.T) {
	dir := t.TempDir()
	rec := filepath.Join(dir, "rec")
	script := "#!/bin/sh\necho \"$@\" > " + rec + "\necho \"ns=$ENV_NAMESPACE image=$ENV_JOB_IMAGE remote=$TESTSHIP_REMOTE\" >> " + rec + "\nexit 3\n"
	if err := os.WriteFile(filepath.Join(dir, "go"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("ENV_JOB_IMAGE", "reg/test:1")
	t.Setenv("TESTSHIP_REMOTE", "true")
	var out bytes.Buffer
	o := Options{
		Run:   config.Run{Timeout: 30 * time.Minute, Pattern: "^TestLink$"},
		Image: config.Image{TestPackage: "./tests/link", TestTags: "e2e"},
		Out:   &out, Log: io.Discard,
	}
	err := GoTest(context.Background(), o, "ns-1")
	var ee *runner.ExitError
	if !errors.As(err, &ee) || ee.Code != 3 || ee.Error() != "go test exited with code 3" {
		t.Fatalf("GoTest = %#v, want *runner.ExitError code 3", err)
	}
	b, err := os.ReadFile(rec)
	if err != nil {
		t.Fatal(err)
	}
	want := "test -v -count=1 -timeout 30m0s -tags e2e -run ^TestLink$ ./tests/link\nns=ns-1 image= remote=\n"
	if string(b) != want {
		t.Errorf("go saw:\n%s\nwant:\n%s", b, want)
	}
	if got := out.String(); got != "testship: go [test -v -count=1 -timeout 30m0s -tags e2e -run ^TestLink$ ./tests/link] (ENV_NAMESPACE=ns-1)\n" {
		t.Errorf("GoTest printed %q", got)
	}
}

// ENV_JOB_IMAGE is the test image: nothing is built, and a tag that cannot
// be resolved to a digest stops the run before anything is deployed (Kube
// is nil here: any deploy would panic), naming the variable.
func TestRemoteResolvesJobImageBeforeDeploying(t *testing.T) {
	var out bytes.Buffer
	o := Options{Out: &out, Log: io.Discard}
	o.Run.JobImage = "127.0.0.1:1/testship/test:nothing-here"
	err := Remote(context.Background(), o)
	if err == nil || !strings.Contains(err.Error(), config.RunJobImage) || !strings.Contains(err.Error(), o.Run.JobImage) {
		t.Fatalf("Remote = %v, want an error naming %s and its value", err, config.RunJobImage)
	}
	if !strings.Contains(out.String(), "not building images") {
		t.Errorf("output %q does not say that no image is built", out.String())
	}
}

func TestPushWithJobImageBuildsNothing(t *testing.T) {
	o := Options{Out: io.Discard}
	o.Run.JobImage = "reg.example.com/t@sha256:" + strings.Repeat("a", 64)
	// o.Image is zero: a build would fail on the empty test package.
	ref, err := push(context.Background(), o)
	if err != nil || ref != o.Run.JobImage {
		t.Errorf("push = %q, %v; want ENV_JOB_IMAGE as given", ref, err)
	}
}
