//go:build mage

package main

import (
	"context"
	"os"

	"github.com/magefile/mage/mg"

	"github.com/testship/testship/pkg/config"
	"github.com/testship/testship/pkg/image"
)

// Image builds and pushes testship's images.
type Image mg.Namespace

// Base builds the base image (no pull needed) unless it is up to date.
//
// Reads TESTSHIP_BASE_FROM (scratch, or any image to start FROM),
// TESTSHIP_PLATFORM, TESTSHIP_REGISTRY, TESTSHIP_REPOSITORY, DOCKER_HOST.
// Run `mage vars` for every variable.
func (Image) Base(ctx context.Context) error {
	return runImage(ctx, image.StageBase)
}

// Test compiles the test package with `go test -c` and builds the base (and, with the engine builder or TESTSHIP_LOAD=true, the test and app images in the Engine).
//
// Reads TESTSHIP_TEST_PACKAGE, TESTSHIP_APPS, TESTSHIP_PLATFORM,
// TESTSHIP_IMAGE_BUILDER, TESTSHIP_LOAD and the variables of image:base.
// Nothing is rebuilt when the tag, a digest of every input, already exists
// in the engine.
func (Image) Test(ctx context.Context) error {
	return runImage(ctx, image.StageTest)
}

// Push builds what is missing and pushes base, test and app images (ECR or any OCI registry).
//
// ECR registries (<account>.dkr.ecr.<region>.amazonaws.com, or
// TESTSHIP_REGISTRY_TYPE=ecr) log in with the AWS SDK's default
// credentials and create missing repositories; others use your Docker
// credentials. The test and app images are the base plus one layer with
// the binary, written straight to the registry (TESTSHIP_IMAGE_BUILDER=engine
// builds them with the Engine). Pushed references go to
// .testship/images.json and, in GitHub Actions, to $GITHUB_OUTPUT
// (test_image pinned by digest, test_image_tag, test_image_digest, ...).
func (Image) Push(ctx context.Context) error {
	return runImage(ctx, image.StagePush)
}

func runImage(ctx context.Context, stage image.Stage) error {
	cfg, err := config.Load(config.ForImage...)
	if err != nil {
		return err
	}
	_, err = image.Build(ctx, cfg.Image, stage, os.Stdout)
	return err
}
