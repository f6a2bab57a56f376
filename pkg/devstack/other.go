//go:build !linux

package devstack

import (
	"context"
	"fmt"
	"runtime"
)

func unsupported() error {
	return fmt.Errorf("the local stack runs on Linux only (this is %s/%s): use a Linux machine or VM, or point KUBECONFIG at an existing cluster", runtime.GOOS, runtime.GOARCH)
}

// Up is Linux-only.
func Up(context.Context, Options) (*Report, error) { return nil, unsupported() }

// Down is Linux-only.
func Down(context.Context, Options, bool) (*Report, error) { return nil, unsupported() }

// Status is Linux-only.
func Status(context.Context, Options) ([]ComponentStatus, error) { return nil, unsupported() }
