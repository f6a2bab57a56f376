// Command testship-entrypoint is testship's entrypoint in the base image
// (/testship/entrypoint): it runs the test binary (/testship/run) for the
// remote runner's pod. See package entrypoint.
package main

import (
	"os"

	"github.com/testship/testship/pkg/entrypoint"
)

func main() { os.Exit(entrypoint.Main(os.Args[1:])) }
