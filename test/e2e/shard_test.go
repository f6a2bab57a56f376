//go:build e2e

package e2e

import (
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	stack "github.com/testship/testship/internal/e2e"
	"github.com/testship/testship/internal/testimage"
	"github.com/testship/testship/pkg/shard"
	"github.com/testship/testship/pkg/testlog"
)

// Sharded and parallel runs through `mage run:remote`: the fixture package
// tests/shardfixture (tests of known durations, one failing, one skipped,
// subtests, an example, a fuzz target) on an Indexed Job of the real
// cluster, compared with an unsharded `go test` of the same package here.

func shardEnv(t *testing.T, extra ...string) (env []string, state string) {
	c := newCluster(t)
	img, _ := testimage.Test(t, stack.Registry(t), "shardfixture", "./tests/shardfixture", "shardfixture")
	state = t.TempDir()
	return append([]string{
		"KUBECONFIG=" + stack.Kubeconfig(t),
		"ENV_NAMESPACE=" + c.ns,
		"ENV_JOB_IMAGE=" + img,
		"TESTSHIP_CHARTS=none",
		"TESTSHIP_TEST_PACKAGE=./tests/shardfixture",
		"TESTSHIP_TEST_TAGS=shardfixture",
		"TESTSHIP_STATE_DIR=" + state,
		"KEEP_ENVIRONMENTS=never",
	}, extra...), state
}

// local runs the fixture unsharded here: its exit code and summary.
func local(t *testing.T) (int, testlog.Summary) {
	cmd := exec.Command("go", "test", "-count=1", "-v", "-tags", "shardfixture", "./tests/shardfixture")
	cmd.Dir = testimage.RepoRoot(t)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	var s testlog.Summary
	for _, l := range strings.SplitAfter(string(out), "\n") {
		s.Observe([]byte(l))
	}
	return code, s
}

// junitTests reads a JUnit report: each test case's name → how many times
// it appears, and the suites' names.
func junitTests(t *testing.T, path string) (map[string]int, []string) {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Suites []struct {
			Name  string `xml:"name,attr"`
			Cases []struct {
				Name string `xml:"name,attr"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b, &r); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	count := map[string]int{}
	var suites []string
	for _, s := range r.Suites {
		suites = append(suites, s.Name)
		for _, c := range s.Cases {
			count[c.Name]++
		}
	}
	return count, suites
}

func sorted(s []string) []string { s = append([]string(nil), s...); sort.Strings(s); return s }

func TestRunRemoteSharded(t *testing.T) {
	wantCode, want := local(t)
	if wantCode != 1 || len(want.Failed) == 0 || len(want.Skipped) == 0 {
		t.Fatalf("the fixture should fail one test and skip one: exit %d, %+v", wantCode, want)
	}
	env, state := shardEnv(t, "TESTSHIP_SHARDS=3")
	for round := 1; round <= 2; round++ {
		junit := filepath.Join(t.TempDir(), "junit.xml")
		code, out := runMage(t, append(env, "TESTSHIP_JUNIT="+junit), "run:remote")
		if code != wantCode {
			t.Fatalf("round %d: exit %d, want %d (as unsharded go test)\n%s", round, code, wantCode, out)
		}
		if round == 1 && !strings.Contains(out, "split by name (no recorded durations yet)") {
			t.Errorf("round 1: no note of the split by name\n%s", out)
		}
		if round == 2 && !regexp.MustCompile(`balanced by the durations of \d+ of them`).MatchString(out) {
			t.Errorf("round 2: the recorded durations were not used\n%s", out)
		}
		for i := 0; i < 3; i++ {
			if !strings.Contains(out, "["+string(rune('0'+i))+"] ") {
				t.Errorf("round %d: no output prefixed [%d]\n%s", round, i, out)
			}
		}
		if n := strings.Count(out, "output verified"); n != 3 {
			t.Errorf("round %d: %d pods verified, want 3\n%s", round, n, out)
		}
		// Every test the unsharded run ran ran exactly once, in one shard,
		// with the same outcome.
		var got testlog.Summary
		for _, l := range strings.SplitAfter(out, "\n") {
			if m := regexp.MustCompile(`^\[\d\] (.*\n?)$`).FindStringSubmatch(l); m != nil {
				got.Observe([]byte(m[1]))
			}
		}
		for _, c := range []struct {
			what      string
			got, want []string
		}{{"passed", got.Passed, want.Passed}, {"failed", got.Failed, want.Failed}, {"skipped", got.Skipped, want.Skipped}} {
			if strings.Join(sorted(c.got), " ") != strings.Join(sorted(c.want), " ") {
				t.Errorf("round %d: %s %v, unsharded %v", round, c.what, sorted(c.got), sorted(c.want))
			}
		}
		cases, suites := junitTests(t, junit)
		if len(suites) != 3 {
			t.Errorf("round %d: JUnit suites %v, want one per shard", round, suites)
		}
		for _, name := range append(append(append([]string{}, want.Passed...), want.Failed...), want.Skipped...) {
			if cases[name] != 1 {
				t.Errorf("round %d: JUnit has %s %d times, want once", round, name, cases[name])
			}
		}
		if round == 1 {
			if d, err := shard.LoadDurations(state, shard.Key("./tests/shardfixture", "shardfixture")); err != nil || len(d) < 5 {
				t.Fatalf("durations not recorded after the run: %v %v", d, err)
			}
		}
	}
}

// A TESTSHIP_RUN that selects none of the package's tests stops before any
// work on the cluster, listing the tests there are.
func TestRunRemoteShardedNoMatch(t *testing.T) {
	env, _ := shardEnv(t, "TESTSHIP_SHARDS=2", "TESTSHIP_RUN=^TestNoSuchThing$")
	code, out := runMage(t, env, "run:remote")
	if code != 89 || !strings.Contains(out, "TESTSHIP_RUN") || !strings.Contains(out, "TestSleep1") {
		t.Fatalf("exit %d, want 89 naming TESTSHIP_RUN and listing the tests\n%s", code, out)
	}
	ns := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "ENV_NAMESPACE="); ok {
			ns = v
		}
	}
	if _, err := clientset(t).CoreV1().Namespaces().Get(t.Context(), ns, metav1.GetOptions{}); err == nil {
		t.Errorf("namespace %s was created", ns)
	}
}

// Copies with a synchronised start: every copy runs the same tests, told
// its index and the count, released together.
func TestRunRemoteCopiesSyncStart(t *testing.T) {
	env, _ := shardEnv(t, "TESTSHIP_PARALLEL=3", "TESTSHIP_SYNC_START=true", "TESTSHIP_RUN=^TestSleep1$")
	code, out := runMage(t, env, "run:remote")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	if n := strings.Count(out, "all 3 copies running; starting"); n != 3 {
		t.Errorf("%d copies said they were released together, want 3\n%s", n, out)
	}
	for i := 0; i < 3; i++ {
		if !regexp.MustCompile(`\[` + string(rune('0'+i)) + `\] .*pod index "` + string(rune('0'+i)) + `" of "3" \(mode "copy"\)`).MatchString(out) {
			t.Errorf("copy %d did not see its index and the count\n%s", i, out)
		}
	}
	if n := strings.Count(out, "--- PASS: TestSleep1"); n != 3 {
		t.Errorf("TestSleep1 passed %d times, want 3 (once per copy)\n%s", n, out)
	}
}
