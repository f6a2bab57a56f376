package config

import (
	"os"
	"testing"
)

// TestMain runs the tests from the repository's root, where the default
// package paths (./tests/link) exist, whatever directory go test uses.
func TestMain(m *testing.M) {
	if err := os.Chdir("../.."); err != nil {
		panic(err)
	}
	os.Exit(m.Run())
}
