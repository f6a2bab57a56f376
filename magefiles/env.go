//go:build mage

package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/magefile/mage/mg"

	"github.com/testship/testship/pkg/config"
	"github.com/testship/testship/pkg/environment"
	"github.com/testship/testship/pkg/gha"
	"github.com/testship/testship/pkg/kube"
)

// Env deploys, inspects and destroys the test's environment (Helm charts).
type Env mg.Namespace

// Deploy installs or upgrades the environment's charts and waits until their workloads are ready.
//
// Reads TESTSHIP_CHARTS, ENV_NAMESPACE, ENV_TIMEOUT, ENV_SET, LOCAL_CHARTS,
// TESTSHIP_CHARTS_DIR, TESTSHIP_IMAGE_<CHART>, ENV_USE_EXISTING_NAMESPACE,
// ENV_POD_SECURITY, ENV_TTL and the image pipeline's .testship/images.json
// (chart "link" gets the app image "link"). A chart whose chart and values
// did not change is "up to date": no new revision.
// In GitHub Actions the namespace goes to $GITHUB_OUTPUT as "namespace".
func (Env) Deploy(ctx context.Context) error {
	cfg, kc, err := envSetup()
	if err != nil {
		return err
	}
	o, err := environment.OptionsFromConfig(cfg.Env, cfg.Image.StateDir, "local")
	if err != nil {
		return err
	}
	o.Out = os.Stdout
	env, err := environment.Deploy(ctx, kc.REST, o)
	if err != nil {
		return err
	}
	fmt.Printf("environment ready in namespace %s (ENV_NAMESPACE=%s)\n", env.Namespace, env.Namespace)
	if gha.Enabled() {
		return gha.SetOutput("namespace", env.Namespace)
	}
	return nil
}

// Status shows the environment's releases, their workloads and readiness, and who created the namespace and when it expires.
func (Env) Status(ctx context.Context) error {
	cfg, kc, err := envSetup()
	if err != nil {
		return err
	}
	st, err := environment.GetStatus(ctx, kc.REST, envNamespace(cfg.Env))
	if err != nil {
		return err
	}
	st.Print(os.Stdout)
	return nil
}

// Destroy uninstalls the environment's releases and deletes its namespace, unless KEEP_ENVIRONMENTS says keep.
//
// Only releases of TESTSHIP_CHARTS that testship deployed are uninstalled,
// and the namespace is deleted only when testship created it.
// KEEP_ENVIRONMENTS=always keeps it; onfail keeps it when ENV_FAILED=true;
// never (the default) destroys it.
func (Env) Destroy(ctx context.Context) error {
	cfg, kc, err := envSetup()
	if err != nil {
		return err
	}
	return environment.Finish(ctx, kc.REST, cfg.Env, envNamespace(cfg.Env), cfg.Env.Failed, os.Stdout)
}

// Prune lists the expired testship environments in the cluster and, with ENV_PRUNE_CONFIRM=true, deletes them.
//
// An environment is expired when its namespace carries testship's label
// app.kubernetes.io/managed-by=testship and its annotation
// testship.dev/expires-at (set from ENV_TTL at each deploy) is in the past.
// Nothing else is touched. Needs list and delete on namespaces; safe to run
// from a CronJob or a scheduled workflow.
func (Env) Prune(ctx context.Context) error {
	cfg, kc, err := envSetup()
	if err != nil {
		return err
	}
	cs, err := kc.Clientset()
	if err != nil {
		return err
	}
	_, err = environment.Prune(ctx, cs, time.Now(), cfg.Env.Safety.PruneConfirm, os.Stdout)
	return err
}

// envSetup runs the validation pass of env:* and loads the cluster's
// configuration.
func envSetup() (*config.Config, *kube.Config, error) {
	cfg, err := config.Load(config.ForEnv...)
	if err != nil {
		return nil, nil, err
	}
	kc, err := kube.Load()
	return cfg, kc, err
}

func envNamespace(cfg config.Env) string {
	if cfg.Namespace != "" {
		return cfg.Namespace
	}
	return environment.GenerateNamespace(environment.DetectOrigin("local"))
}
