//go:build mage

package main

import (
	"context"
	"os"

	"github.com/magefile/mage/mg"

	"github.com/testship/testship/pkg/workflows"
)

// Lint checks the project's own files.
type Lint mg.Namespace

// Workflows lints .github/workflows with actionlint and testship's policy.
//
// actionlint runs as a library (with shellcheck on the run: scripts when
// shellcheck is on PATH); testship's rules add: every action pinned to a
// full commit SHA with a "# vX.Y.Z" comment, permissions declared per job
// with id-token: write only where AWS OIDC is used, and a concurrency group.
func (Lint) Workflows(ctx context.Context) error {
	_, err := workflows.Lint(".", os.Stdout, workflows.LintOptions{})
	return err
}
