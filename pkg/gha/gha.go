// Package gha writes step outputs and job summaries for GitHub Actions.
// Outside Actions ($GITHUB_OUTPUT / $GITHUB_STEP_SUMMARY unset) every call
// is a no-op, so library code can call it unconditionally.
package gha

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"

	"github.com/testship/testship/pkg/config"
)

// Enabled reports whether the process runs as a GitHub Actions step.
func Enabled() bool { return config.InActions() }

// SetOutput appends name=value to $GITHUB_OUTPUT, every secret value
// (config.RedactText) replaced by <redacted>. Multi-line values use the
// heredoc form with a random delimiter.
func SetOutput(name, value string) error {
	value = config.RedactText(value)
	if strings.ContainsAny(name, "=\n") || name == "" {
		return fmt.Errorf("gha: output name %q is not valid: want a name without '=' or newlines", name)
	}
	line := name + "=" + value + "\n"
	if strings.Contains(value, "\n") {
		var b [8]byte
		_, _ = rand.Read(b[:])
		delim := "ghadelim_" + hex.EncodeToString(b[:])
		line = name + "<<" + delim + "\n" + value + "\n" + delim + "\n"
	}
	return appendTo(config.GitHubOutput, line)
}

// AppendSummary appends Markdown to $GITHUB_STEP_SUMMARY, every secret
// value (config.RedactText) replaced by <redacted>.
func AppendSummary(markdown string) error {
	markdown = config.RedactText(markdown)
	if !strings.HasSuffix(markdown, "\n") {
		markdown += "\n"
	}
	return appendTo(config.GitHubStepSummary, markdown)
}

func appendTo(envVar, text string) error {
	path := config.Get(envVar)
	if path == "" {
		return nil
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("gha: open %s=%s: %w", envVar, path, err)
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return fmt.Errorf("gha: write %s: %w", path, err)
	}
	return f.Close()
}

// SetEnv appends name=value to $GITHUB_ENV, so later steps of the job see
// the variable.
func SetEnv(name, value string) error {
	if strings.ContainsAny(name, "=\n") || name == "" || strings.Contains(value, "\n") {
		return fmt.Errorf("gha: environment variable %q: want a name without '=' or newlines and a one-line value", name)
	}
	return appendTo(config.GitHubEnv, name+"="+value+"\n")
}
