//go:build mage

package main

import (
	"context"

	"github.com/magefile/mage/mg"
	"github.com/magefile/mage/sh"

	"github.com/testship/testship/pkg/ci"
	"github.com/testship/testship/pkg/config"
)

// Test runs testship's own tests.
type Test mg.Namespace

// Unit runs the unit tests; they need no Docker, registry or cluster.
func (Test) Unit(ctx context.Context) error {
	return sh.RunV("go", "test", "-count=1", "./...")
}

// E2e runs the end-to-end tests (with the unit tests) against the running local stack.
//
// Start the stack first with dev:up (or set KUBECONFIG, TESTSHIP_E2E_REGISTRY
// and DOCKER_HOST to another one). A missing stack fails the tests, it never
// skips them. Packages run one at a time (-p 1) since they share the cluster.
func (Test) E2e(ctx context.Context) error {
	return sh.RunV("go", "test", "-tags", "e2e", "-p", "1", "-count=1", "-timeout", "60m", "./...")
}

// All runs the unit tests, then ci:e2e (dev:up, image:push, end-to-end tests, dev:down) with the stack's own down/status/up test before dev:down.
//
// This is the project's test command, the one .ci/run runs. After the
// end-to-end tests, a last test takes the stack down, checks that no process
// or network state is left, and brings it back. Set
// TESTSHIP_KEEP_STACK=true to leave the stack running afterwards.
func (Test) All(ctx context.Context) error {
	if err := (Test{}).Unit(ctx); err != nil {
		return err
	}
	seq, err := e2eSequence()
	if err != nil {
		return err
	}
	// Last and alone: it stops the stack, checks nothing is left, and
	// brings it back up.
	seq.After = []ci.Step{{Name: "TestDownStatusUp", Run: func(ctx context.Context) error {
		return sh.RunV("go", "test", "-tags", "e2e e2e_down", "-count=1", "-timeout", "15m", "-run", "^TestDownStatusUp$", "./pkg/devstack/")
	}}}
	return seq.Execute(ctx)
}

// Bench runs the benchmarks (image pipeline, remote runner) against the running local stack.
//
// BENCH_TIME sets -benchtime (default 5x). The image benchmarks put
// BENCH_TEST_PACKAGE into the test image (default ./tests/link, an 85 MB
// test binary). Results are what README reports.
func Bench(ctx context.Context) error {
	cfg, err := config.Load(config.ForBench...)
	if err != nil {
		return err
	}
	b := cfg.Bench
	return sh.RunWithV(map[string]string{config.BenchTestPackage: b.TestPackage}, "go", "test", "-tags", "e2e", "-p", "1", "-count=1", "-run", "^$", "-bench", ".", "-benchtime", b.Time, "-timeout", "60m", "./...")
}
