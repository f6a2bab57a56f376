package ci

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/testship/testship/pkg/gha"
)

// CopyLogs copies the local stack's log directory src (TESTSHIP_DEV_DIR/logs)
// into dst (TESTSHIP_STACK_LOGS), readable by everyone so that the
// workflow's upload step (not root) can read what the root-run stack wrote.
func CopyLogs(src, dst string, log io.Writer) error {
	n := 0
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		n++
		return os.WriteFile(target, data, 0o644)
	})
	if err != nil {
		return fmt.Errorf("copy the stack's logs from %s to %s: %w", src, dst, err)
	}
	fmt.Fprintf(log, "ci: copied %d log file(s) of the local stack to %s\n", n, dst)
	return nil
}

// Kubeconfig writes the kubeconfig of EKS cluster (with `aws eks
// update-kubeconfig`, region from AWS_REGION) to path and exports
// KUBECONFIG=path to the job's later steps ($GITHUB_ENV). The kubeconfig
// holds no credential: it calls `aws eks get-token` with the job's role.
func Kubeconfig(ctx context.Context, cluster, path string, out io.Writer) error {
	args := []string{"eks", "update-kubeconfig", "--name", cluster, "--kubeconfig", path}
	if r := os.Getenv("AWS_REGION"); r != "" {
		args = append(args, "--region", r)
	}
	cmd := exec.CommandContext(ctx, "aws", args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("aws %v: %w (is the AWS CLI installed and are the job's AWS credentials set?)", args, err)
	}
	return gha.SetEnv("KUBECONFIG", path)
}

// Vet builds the module and vets it with every build tag set the project
// uses (plain, e2e, and the Mage targets).
func Vet(ctx context.Context, out io.Writer) error {
	for _, args := range [][]string{
		{"build", "./..."},
		{"vet", "./..."},
		{"vet", "-tags", "e2e", "./..."},
		{"vet", "-tags", "mage", "./magefiles/"},
	} {
		fmt.Fprintf(out, "ci: go %v\n", args)
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("go %v: %w", args, err)
		}
	}
	return nil
}
