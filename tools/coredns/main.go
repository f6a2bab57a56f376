// Command coredns is CoreDNS with its standard plugins, built from the Go
// module proxy for the local stack's cluster DNS (see pkg/devstack).
package main

import (
	_ "github.com/coredns/coredns/core/plugin" // registers every standard plugin

	"github.com/coredns/coredns/coremain"
)

func main() { coremain.Run() }
