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
