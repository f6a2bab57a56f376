package runner

import (
	"testing"
	"time"

	"github.com/testship/testship/pkg/config"
)

func TestNewOptions(t *testing.T) {
	t.Setenv("TEST_FOO", "bar")
	t.Setenv("E2E_TEST_TOKEN", "s3cret")
	c := config.Run{Pattern: "^TestA$", Timeout: 7 * time.Minute, NewRun: true, TTL: time.Hour}
	o := NewOptions(c, "ns1", "reg/test:1", "./tests/link")
	if o.Namespace != "ns1" || o.Image != "reg/test:1" || o.Test != "./tests/link" {
		t.Errorf("NewOptions target = %s %s %s", o.Namespace, o.Image, o.Test)
	}
	if o.Pattern != "^TestA$" || o.Timeout != 7*time.Minute || !o.NewRun || o.TTL != time.Hour {
		t.Errorf("NewOptions did not take the run variables: %+v", o)
	}
	if o.Env["FOO"] != "bar" || o.Secrets["E2E_TEST_TOKEN"] != "s3cret" {
		t.Errorf("NewOptions env %v secrets %d, want FOO=bar and the E2E_TEST_ secret", o.Env, len(o.Secrets))
	}
	if _, leaked := o.Env["E2E_TEST_TOKEN"]; leaked {
		t.Error("a secret went into the plain environment")
	}
}

func TestFollowOptionsFromConfig(t *testing.T) {
	for _, c := range []struct {
		name      string
		preset    bool
		cfg       config.Run
		keep      config.Keep
		wantDet   bool
		wantLeave bool
		wantKeep  bool
	}{
		{"defaults", false, config.Run{}, config.KeepNever, false, false, false},
		{"DETACH_RUNNER", false, config.Run{Detach: true}, config.KeepNever, true, false, false},
		{"run:detached", true, config.Run{}, config.KeepNever, true, false, false},
		{"leave, onfail", false, config.Run{LeaveOnInterrupt: true}, config.KeepOnFail, false, true, true},
		{"always", false, config.Run{}, config.KeepAlways, false, false, true},
	} {
		fo := FollowOptions{WaitOptions: WaitOptions{Detach: c.preset}}
		c.cfg.WaitTimeout = 3 * time.Minute
		fo.FromConfig(c.cfg, c.keep)
		if fo.Detach != c.wantDet || fo.LeaveOnInterrupt != c.wantLeave || fo.KeepOnFault != c.wantKeep || fo.Timeout != 3*time.Minute {
			t.Errorf("%s: Detach %v LeaveOnInterrupt %v KeepOnFault %v Timeout %s, want %v %v %v 3m",
				c.name, fo.Detach, fo.LeaveOnInterrupt, fo.KeepOnFault, fo.Timeout, c.wantDet, c.wantLeave, c.wantKeep)
		}
	}
}
