//go:build ignore

// Zero-install entry point: `go run magefile.go <target>` runs testship's
// Mage targets on a machine that has only Go. `go run` reports every non-zero
// exit as 1; install mage (`go install github.com/magefile/mage@v1.17.2`) or
// compile the targets (`go run magefile.go -compile ./testship-mage`) to get
// the exact exit code, e.g. the remote test's.
package main

import (
	"os"

	"github.com/magefile/mage/mage"
)

func main() { os.Exit(mage.Main()) }
