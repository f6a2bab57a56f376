//go:build mage

package main

import (
	"context"
	"fmt"
	"os"

	"github.com/magefile/mage/mg"

	"github.com/testship/testship/pkg/config"
	"github.com/testship/testship/pkg/devstack"
)

// Dev manages the local stack: Docker Engine, a registry on 127.0.0.1:5000
// and a single-node Kubernetes built from source (Linux, root).
type Dev mg.Namespace

func devOptions() (devstack.Options, config.Dev, error) {
	cfg, err := config.Load(config.ForDev...)
	if err != nil {
		return devstack.Options{}, config.Dev{}, err
	}
	return devstack.OptionsFromConfig(cfg.Dev, os.Stdout), cfg.Dev, nil
}

// Up brings up the local stack (Docker Engine, registry, Kubernetes), starting only what is not healthy.
//
// Idempotent: a second run starts nothing and says so. The first run builds
// the Kubernetes and CoreDNS binaries into $TESTSHIP_CACHE_DIR (~15 min on 2
// cores); later runs take seconds. Needs Linux and root. TESTSHIP_DEV_DIR
// must be new, empty or made by dev:up (marker file .testship-dev); a stack
// made by an older testship is adopted.
func (Dev) Up(ctx context.Context) error {
	o, c, err := devOptions()
	if err != nil {
		return err
	}
	rep, err := devstack.Up(ctx, o)
	if err != nil {
		return err
	}
	fmt.Println(rep.Summary("dev:up: started/built"))
	fmt.Print(devstack.Usage(c.Dir))
	return nil
}

// Down stops every process dev:up started and removes the network state it added; DEV_WIPE=true also deletes the cluster's data.
//
// It refuses a TESTSHIP_DEV_DIR without the marker dev:up writes
// (.testship-dev) and touches only the sub-paths the stack owns there.
func (Dev) Down(ctx context.Context) error {
	o, c, err := devOptions()
	if err != nil {
		return err
	}
	rep, err := devstack.Down(ctx, o, c.Wipe)
	if err != nil {
		return err
	}
	fmt.Println(rep.Summary("dev:down: changed"))
	return nil
}

// Status shows the health of each component of the local stack in one table.
func (Dev) Status(ctx context.Context) error {
	o, _, err := devOptions()
	if err != nil {
		return err
	}
	rows, err := devstack.Status(ctx, o)
	if err != nil {
		return err
	}
	devstack.PrintStatus(os.Stdout, rows)
	return nil
}
