//go:build mage

package main

import (
	"os"

	"github.com/testship/testship/pkg/config"
)

// Config prints the effective configuration, secrets redacted.
//
// Every setting is an environment variable; this lists each one with its
// value and whether it came from the environment or a default.
func Config() {
	config.Print(os.Stdout)
}

// Vars lists every variable testship reads, with its default and meaning.
func Vars() {
	config.Help(os.Stdout)
}
