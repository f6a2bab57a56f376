package shard

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/testship/testship/pkg/config"
)

// fakeBinary writes a script that answers -test.list like a test binary
// with a TestMain that prints.
func fakeBinary(t *testing.T, script string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fake.test")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

const listing = `[ "$1" = -test.list ] && [ "$2" = . ] || { echo "unexpected arguments: $*" >&2; exit 2; }
echo "TestMain: setting up"
echo Testing
echo TestLink
echo TestLinkSlow
echo TestOther
echo BenchmarkLink
echo FuzzParse
echo ExampleHello
`

func TestList(t *testing.T) {
	bin := fakeBinary(t, listing)
	ctx := context.Background()
	for _, tc := range []struct {
		pattern string
		want    []string
	}{
		{"", []string{"ExampleHello", "FuzzParse", "TestLink", "TestLinkSlow", "TestOther"}},
		{".", []string{"ExampleHello", "FuzzParse", "TestLink", "TestLinkSlow", "TestOther"}},
		{"Link", []string{"TestLink", "TestLinkSlow"}},
		{"^TestLink$", []string{"TestLink"}},
		{"TestLink$/fast|Other", []string{"TestLink", "TestOther"}},
		{"Benchmark", nil},
	} {
		got, err := List(ctx, bin, tc.pattern)
		if tc.want == nil {
			var ce *config.Error
			if !errors.As(err, &ce) || ce.Name != config.RunPattern ||
				!strings.Contains(err.Error(), `TESTSHIP_RUN="Benchmark" is not valid: it selects none of the package's 5 tests; want a go test -run pattern that selects some of ExampleHello, FuzzParse, TestLink, TestLinkSlow, TestOther`) {
				t.Errorf("List(%q) = %v, %v; want a TESTSHIP_RUN error listing the tests", tc.pattern, got, err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("List(%q) = %v, %v; want %v", tc.pattern, got, err, tc.want)
		}
	}
}

func TestRunnable(t *testing.T) {
	for name, want := range map[string]bool{
		"Test": true, "TestA": true, "Test_a": true, "Test1": true, "TestÄ": true, "Example": true, "Example_hello": true,
		"ExampleT_Method": true, "Fuzz": true, "FuzzX": true,
		"Testing": false, "Examples": false, "Fuzzy": false, "BenchmarkA": false, "TestMain: ok": false, "Test A": false, "": false, "ok": false,
	} {
		if runnable(name) != want {
			t.Errorf("runnable(%q) = %v", name, !want)
		}
	}
}

func TestListFails(t *testing.T) {
	ctx := context.Background()
	_, err := List(ctx, fakeBinary(t, "echo 'flag provided but not defined: -test.list' >&2\nexit 2\n"), "")
	if err == nil || !strings.Contains(err.Error(), "flag provided but not defined") {
		t.Errorf("a failing binary: %v", err)
	}
	_, err = List(ctx, fakeBinary(t, "echo BenchmarkOnly\n"), "")
	if err == nil || !strings.Contains(err.Error(), "has no tests to run") {
		t.Errorf("a binary without tests: %v", err)
	}
	_, err = List(ctx, filepath.Join(t.TempDir(), "missing"), "")
	if err == nil {
		t.Error("a missing binary: no error")
	}
	// Many tests: the error lists 40 and says how many more.
	script := ""
	for i := range 45 {
		script += "echo Test" + string(rune('A'+i/26)) + string(rune('a'+i%26)) + "\n"
	}
	_, err = List(ctx, fakeBinary(t, script), "Nothing")
	if err == nil || !strings.Contains(err.Error(), "TestBn and 5 more") {
		t.Errorf("45 tests: %v", err)
	}
}
