package runner

import (
	"testing"
	"time"

	"github.com/testship/testship/pkg/config"
	"github.com/testship/testship/pkg/testlog"
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
		{"run:detached sets config.Run.Detach", false, config.Run{Detach: true}, config.KeepNever, true, false, false},
		{"config decides alone", true, config.Run{}, config.KeepNever, false, false, false},
		{"leave, onfail", false, config.Run{LeaveOnInterrupt: true}, config.KeepOnFail, false, true, true},
		{"always", false, config.Run{}, config.KeepAlways, false, false, true},
		{"fail fast", false, config.Run{Pods: config.Pods{FailFast: true}}, config.KeepNever, false, false, false},
	} {
		fo := FollowOptions{WaitOptions: WaitOptions{Detach: c.preset}}
		c.cfg.WaitTimeout = 3 * time.Minute
		fo.FromConfig(c.cfg, c.keep)
		if fo.Detach != c.wantDet || fo.LeaveOnInterrupt != c.wantLeave || fo.KeepOnFault != c.wantKeep || fo.Timeout != 3*time.Minute || fo.FailFast != c.cfg.Pods.FailFast {
			t.Errorf("%s: Detach %v LeaveOnInterrupt %v KeepOnFault %v Timeout %s, want %v %v %v 3m",
				c.name, fo.Detach, fo.LeaveOnInterrupt, fo.KeepOnFault, fo.Timeout, c.wantDet, c.wantLeave, c.wantKeep)
		}
	}
}

func TestOptionsPodsFromConfig(t *testing.T) {
	for _, c := range []struct {
		name     string
		pods     config.Pods
		plan     [][]string
		wantPods int
		wantMode string
	}{
		{"single", config.Pods{Shards: 1, Copies: 1}, nil, 1, testlog.ModeSingle},
		{"copies", config.Pods{Shards: 1, Copies: 3, SyncStart: true, Spread: config.SpreadHard}, nil, 3, testlog.ModeCopy},
		{"shards by the plan", config.Pods{Shards: 4, Copies: 1}, [][]string{{"TestA"}, {"TestB"}}, 2, testlog.ModeShard},
		{"auto", config.Pods{Auto: true, Copies: 1}, [][]string{{"TestA"}, {"TestB"}, {"TestC"}}, 3, testlog.ModeShard},
	} {
		o := NewOptions(config.Run{Pods: c.pods}, "ns", "img", "./pkg")
		if c.plan != nil {
			o.SetShardPlan(c.plan)
		}
		if o.PodCount() != c.wantPods || o.PodMode() != c.wantMode || o.SyncStart != c.pods.SyncStart || o.Spread != c.pods.Spread {
			t.Errorf("%s: pods %d mode %s sync %v spread %q, want %d %s %v %q", c.name, o.PodCount(), o.PodMode(), o.SyncStart, o.Spread, c.wantPods, c.wantMode, c.pods.SyncStart, c.pods.Spread)
		}
		if err := CheckPods(o); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}
