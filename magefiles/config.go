//go:build mage

package main

import (
	"fmt"
	"os"

	"github.com/testship/testship/pkg/config"
)

// Config checks every variable and prints the effective configuration, secrets redacted; exits 89 when anything is wrong.
//
// Every setting is an environment variable; this lists each one with its
// value and whether it came from the environment or a default, then every
// problem found (the same check every target runs before any work), so
// it is the way to check a configuration in CI before a run.
func Config() error {
	_, err := config.Load(config.ForAll...)
	config.Print(os.Stdout)
	if err == nil {
		fmt.Println("configuration: no problem found")
	}
	return err
}

// Vars lists every variable testship reads, with its default and meaning.
func Vars() {
	config.Help(os.Stdout)
}
