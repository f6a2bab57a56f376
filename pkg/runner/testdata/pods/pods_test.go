// Package pods is the multi-pod runs' end-to-end subject: it prints what
// the pod learns of its place in the run (testship's pod variables) and
// fails or sleeps on request by index. It lives under testdata so `go test
// ./...` never runs it; the e2e tests build it with `go test -c` into an
// image.
package pods

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// TestIndex prints the pod variables; PODS_FAIL_INDEX names the index
// that fails at once, PODS_SLEEP how long the others sleep before passing.
func TestIndex(t *testing.T) {
	index := os.Getenv("TESTSHIP_INDEX")
	fmt.Printf("pods: index=%s count=%s mode=%s job=%s sync=%s\n", index, os.Getenv("TESTSHIP_COUNT"),
		os.Getenv("TESTSHIP_POD_MODE"), os.Getenv("TESTSHIP_JOB_NAME"), os.Getenv("TESTSHIP_SYNC_START"))
	fmt.Printf("pods: plan=%s\n", os.Getenv("TESTSHIP_SHARD_PLAN"))
	if index != "" && index == os.Getenv("PODS_FAIL_INDEX") {
		t.Fatalf("pods: index %s fails on purpose", index)
	}
	if d, err := time.ParseDuration(os.Getenv("PODS_SLEEP")); err == nil {
		for i := 0; time.Duration(i)*time.Second < d; i++ {
			fmt.Printf("pods: index %s sleep %d\n", index, i)
			time.Sleep(time.Second)
		}
	}
	fmt.Printf("pods: index %s done\n", index)
}

// TestA, TestB and TestC are tests for a shard plan.
func TestA(t *testing.T) { fmt.Println("pods: A in", os.Getenv("TESTSHIP_INDEX")) }
func TestB(t *testing.T) { fmt.Println("pods: B in", os.Getenv("TESTSHIP_INDEX")) }
func TestC(t *testing.T) {
	fmt.Println("pods: C in", os.Getenv("TESTSHIP_INDEX"))
	if strings.Contains(os.Getenv("PODS_FAIL"), "C") {
		t.Error("pods: C fails on purpose")
	}
}
