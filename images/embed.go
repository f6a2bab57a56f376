// Package images holds the Dockerfiles of testship's images, embedded so
// the pipeline builds the same files wherever it runs.
package images

import _ "embed"

// Base is images/base/Dockerfile.
//
//go:embed base/Dockerfile
var Base []byte

// Test is images/test/Dockerfile, used for the test image and app images.
//
//go:embed test/Dockerfile
var Test []byte
