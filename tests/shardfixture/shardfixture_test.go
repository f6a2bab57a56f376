//go:build shardfixture

// Package shardfixture is the fixture of the sharding proofs: top-level
// tests of known durations (sleeps of 1-4 s, 13 s in all), one failing on
// purpose, one skipped, one with subtests, plus an example and a fuzz
// target (both run as tests) and a benchmark (listed by -test.list but not
// run). Its own build tag keeps the failing test out of `go test -tags e2e
// ./...`: build it with -tags shardfixture (TESTSHIP_TEST_TAGS=shardfixture
// TESTSHIP_TEST_PACKAGE=./tests/shardfixture for a remote run).
package shardfixture

import (
	"fmt"
	"os"
	"testing"
	"time"
)

func sleep(t *testing.T, d time.Duration) {
	t.Helper()
	t.Logf("pod index %q of %q (mode %q); sleeping %s", os.Getenv("TESTSHIP_INDEX"), os.Getenv("TESTSHIP_COUNT"), os.Getenv("TESTSHIP_POD_MODE"), d)
	time.Sleep(d)
}

func TestSleep1(t *testing.T) { sleep(t, 1*time.Second) }
func TestSleep2(t *testing.T) { sleep(t, 2*time.Second) }
func TestSleep3(t *testing.T) { sleep(t, 3*time.Second) }
func TestSleep4(t *testing.T) { sleep(t, 4*time.Second) }

func TestQuick(t *testing.T) {}

func TestFails(t *testing.T) {
	sleep(t, 1*time.Second)
	t.Error("fails on purpose (the fixture's failing test)")
}

func TestSkipped(t *testing.T) {
	t.Skip("skipped on purpose (the fixture's skipped test)")
}

func TestSubtests(t *testing.T) {
	t.Run("fast", func(t *testing.T) { sleep(t, 500*time.Millisecond) })
	t.Run("slow", func(t *testing.T) { sleep(t, 1500*time.Millisecond) })
	t.Run("skipped", func(t *testing.T) { t.Skip("skipped on purpose") })
}

func Example_hello() {
	fmt.Println("hello")
	// Output: hello
}

func FuzzReverse(f *testing.F) {
	f.Add("abc")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		r := []rune(s)
		for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
			r[i], r[j] = r[j], r[i]
		}
		if len(string(r)) != len(s) {
			t.Errorf("reverse(%q) changed the length", s)
		}
	})
}

func BenchmarkNothing(b *testing.B) {
	for b.Loop() {
	}
}
