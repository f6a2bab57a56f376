// Package e2e holds testship's user-level end-to-end tests: the Mage
// targets (run:*, ci:*, env:*, config) and the in-test form, driven as a
// user or a workflow drives them, against the local stack. They carry the
// build tag e2e (`go test -tags e2e ./test/e2e/`); the harness that finds
// the stack and builds the test images is internal/e2e and
// internal/testimage. Each library package keeps its own end-to-end tests
// of its API next to it.
package e2e
