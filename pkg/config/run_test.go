package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestLoadRun(t *testing.T) {
	t.Setenv(RunTimeout, "10m")
	t.Setenv(RunMemoryLimit, "512Mi")
	t.Setenv(RunNodeSelector, "kubernetes.io/arch=amd64,pool=tests")
	t.Setenv(RunTolerations, "dedicated=tests:NoSchedule,spot:NoExecute")
	t.Setenv(RunRules, "delete:pods")
	r, err := LoadRun()
	if err != nil {
		t.Fatal(err)
	}
	if r.Timeout != 10*time.Minute || r.Resources.Limits.Memory().String() != "512Mi" || r.NodeSelector["pool"] != "tests" ||
		len(r.Tolerations) != 2 || r.Tolerations[0].Value != "tests" || r.Tolerations[1].Operator != "Exists" || len(r.Rules) != 1 || !r.DoNotEvict {
		t.Errorf("LoadRun = %+v", r)
	}
	for name, bad := range map[string]string{
		RunTimeout: "soon", RunMemoryLimit: "lots", RunNodeSelector: "novalue", RunTolerations: "k=v:Sometimes",
		RunRules: "*:pods", RunOnInterrupt: "maybe", RunNew: "perhaps",
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv(name, bad)
			_, err := LoadRun()
			var ce *Error
			if !errors.As(err, &ce) || ce.Name != name || !strings.Contains(err.Error(), name) {
				t.Errorf("%s=%q: error %v, want a *config.Error naming it", name, bad, err)
			}
		})
	}
}

func TestLoadPods(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want Pods
		mode string
		bad  []string // variables named in the errors, in order
		text string   // part of the error message
	}{
		{name: "defaults", want: Pods{Shards: 1, Copies: 1, Max: 16, Spread: SpreadSoft}, mode: "single"},
		{name: "shards", env: map[string]string{RunShards: "4", RunFailFast: "true", RunSpread: "HARD"},
			want: Pods{Shards: 4, Copies: 1, Max: 16, FailFast: true, Spread: SpreadHard}, mode: "shard"},
		{name: "one shard is one pod", env: map[string]string{RunShards: "1"}, want: Pods{Shards: 1, Copies: 1, Max: 16, Spread: SpreadSoft}, mode: "single"},
		{name: "auto", env: map[string]string{RunShards: "Auto", RunShardsMax: "8", RunSpread: "none"},
			want: Pods{Auto: true, Copies: 1, Max: 8, Spread: SpreadNone}, mode: "shard"},
		{name: "copies with sync start", env: map[string]string{RunParallel: "8", RunSyncStart: "true"},
			want: Pods{Shards: 1, Copies: 8, Max: 16, SyncStart: true, Spread: SpreadSoft}, mode: "copy"},
		{name: "one shard and copies", env: map[string]string{RunShards: "1", RunParallel: "3"},
			want: Pods{Shards: 1, Copies: 3, Max: 16, Spread: SpreadSoft}, mode: "copy"},
		{name: "max raised", env: map[string]string{RunParallel: "40", RunShardsMax: "64"},
			want: Pods{Shards: 1, Copies: 40, Max: 64, Spread: SpreadSoft}, mode: "copy"},
		{name: "shards not a number", env: map[string]string{RunShards: "four"}, bad: []string{RunShards}, text: `TESTSHIP_SHARDS="four" is not valid: not a positive whole number; want a whole number from 1 to 16 (TESTSHIP_SHARDS_MAX), or auto`},
		{name: "zero shards", env: map[string]string{RunShards: "0"}, bad: []string{RunShards}, text: "not a positive whole number"},
		{name: "negative copies", env: map[string]string{RunParallel: "-2"}, bad: []string{RunParallel}, text: `TESTSHIP_PARALLEL="-2"`},
		{name: "copies not whole", env: map[string]string{RunParallel: "2.5"}, bad: []string{RunParallel}},
		{name: "shards above max", env: map[string]string{RunShards: "17"}, bad: []string{RunShards},
			text: `TESTSHIP_SHARDS="17" is not valid: above the maximum TESTSHIP_SHARDS_MAX=16; want a whole number from 1 to 16 (or a higher TESTSHIP_SHARDS_MAX)`},
		{name: "copies above a lowered max", env: map[string]string{RunParallel: "5", RunShardsMax: "4"}, bad: []string{RunParallel}, text: "TESTSHIP_SHARDS_MAX=4"},
		{name: "bad max", env: map[string]string{RunShardsMax: "0"}, bad: []string{RunShardsMax}, text: "from 1 to 1000"},
		{name: "max too high", env: map[string]string{RunShardsMax: "5000"}, bad: []string{RunShardsMax}},
		{name: "shards and copies", env: map[string]string{RunShards: "3", RunParallel: "2"}, bad: []string{RunParallel},
			text: `TESTSHIP_PARALLEL="2" is not valid: TESTSHIP_SHARDS=3 is set too; want either shards`},
		{name: "auto and copies", env: map[string]string{RunShards: "auto", RunParallel: "2"}, bad: []string{RunParallel}, text: "TESTSHIP_SHARDS=auto is set too"},
		{name: "sync start without copies", env: map[string]string{RunSyncStart: "true"}, bad: []string{RunSyncStart},
			text: `TESTSHIP_SYNC_START="true" is not valid: it needs copies, and TESTSHIP_PARALLEL is ""; want false, or TESTSHIP_PARALLEL set to 2 or more`},
		{name: "sync start with shards", env: map[string]string{RunSyncStart: "yes", RunShards: "2"}, bad: []string{RunSyncStart}},
		{name: "sync start not a bool", env: map[string]string{RunSyncStart: "together", RunParallel: "2"}, bad: []string{RunSyncStart}, text: "want true or false"},
		{name: "sync start in the pod", env: map[string]string{RunSyncStart: "true", RemoteFlag: "true"},
			want: Pods{Shards: 1, Copies: 1, Max: 16, SyncStart: true, Spread: SpreadSoft}, mode: "single"},
		{name: "fail fast not a bool", env: map[string]string{RunFailFast: "sometimes"}, bad: []string{RunFailFast}},
		{name: "bad spread", env: map[string]string{RunSpread: "wide"}, bad: []string{RunSpread}, text: "want soft (prefer other nodes), hard (require other nodes) or none"},
		{name: "every problem at once", env: map[string]string{RunShards: "x", RunParallel: "0", RunSpread: "wide", RunSyncStart: "true"},
			bad: []string{RunShards, RunParallel, RunSyncStart, RunSpread}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clean(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			r, err := LoadRun()
			if len(tc.bad) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if r.Pods != tc.want || r.Pods.Mode() != tc.mode {
					t.Errorf("Pods = %+v (mode %s), want %+v (mode %s)", r.Pods, r.Pods.Mode(), tc.want, tc.mode)
				}
				return
			}
			var errs *Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error %v, want *config.Errors", err)
			}
			var names []string
			for _, e := range errs.List {
				names = append(names, e.Name)
			}
			if strings.Join(names, " ") != strings.Join(tc.bad, " ") {
				t.Errorf("errors name %v, want %v:\n%v", names, tc.bad, err)
			}
			if !strings.Contains(err.Error(), tc.text) {
				t.Errorf("error %q\nwant it to contain %q", err, tc.text)
			}
		})
	}
}

// TESTSHIP_SYNC_START is both the user's variable and the pods' one:
// declared once, in the run area.
func TestSyncStartDeclaredOnce(t *testing.T) {
	if PodSyncStart != RunSyncStart {
		t.Fatalf("PodSyncStart %q, RunSyncStart %q", PodSyncStart, RunSyncStart)
	}
	n := 0
	for _, v := range Vars() {
		if v.Name == RunSyncStart {
			n++
			if v.Area != "run" || !strings.Contains(v.Help, "passed to the pods") {
				t.Errorf("%+v", v)
			}
		}
	}
	if n != 1 {
		t.Fatalf("%s listed %d times", RunSyncStart, n)
	}
}
