package config

import (
	"strings"
	"testing"
)

func TestLoadCI(t *testing.T) {
	t.Setenv(CIMode, "")
	t.Setenv(CIRun, "")
	t.Setenv(CIKeepStack, "")
	c, err := LoadCI()
	if err != nil || c.Mode != ModeRemote || c.KeepStack || c.StackLogs != ".testship/stack-logs" {
		t.Errorf("defaults: %+v, %v", c, err)
	}
	t.Setenv(CIMode, "Detached")
	if c, err := LoadCI(); err != nil || c.Mode != ModeDetached {
		t.Errorf("Detached: %+v, %v", c, err)
	}
	for env, want := range map[[2]string]string{
		{CIMode, "wait"}:     `TESTSHIP_MODE="wait" is not valid; want remote, detached or attach`,
		{CIMode, "attach"}:   `TESTSHIP_CI_RUN="" is not valid; want the id of the run to follow`,
		{CIKeepStack, "yep"}: `TESTSHIP_KEEP_STACK="yep" is not valid; want true or false`,
	} {
		t.Run(env[0]+"="+env[1], func(t *testing.T) {
			t.Setenv(CIMode, "remote")
			t.Setenv(env[0], env[1])
			_, err := LoadCI()
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("error = %v, want %q", err, want)
			}
		})
	}
}
