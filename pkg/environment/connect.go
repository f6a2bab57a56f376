package environment

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/testship/testship/pkg/config"
	"helm.sh/helm/v3/pkg/release"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// EnvDescription is the variable through which the launcher hands the
// remote copy of a test its environment: json.Marshal of the
// *Environment that Deploy returned. FromDescription reads it.
var EnvDescription = config.RemoteEnvironment

// Describe returns the JSON form of the environment for EnvDescription.
func (e *Environment) Describe() ([]byte, error) { return json.Marshal(e) }

// FromDescription decodes the value of TESTSHIP_ENVIRONMENT (the JSON form
// of an Environment) and checks it is complete: a namespace, and each
// release named.
func FromDescription(b []byte) (*Environment, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, fmt.Errorf("%s is empty: the remote runner's Job sets it to the environment the launcher deployed; "+
			"run the test through mage run:remote or testenv with ENV_JOB_IMAGE", EnvDescription)
	}
	var env Environment
	if err := json.Unmarshal(b, &env); err != nil {
		return nil, fmt.Errorf("%s is not a valid environment description (JSON of environment.Environment): %v", EnvDescription, err)
	}
	if env.Namespace == "" {
		return nil, fmt.Errorf("%s is not a valid environment description: no namespace", EnvDescription)
	}
	for i, r := range env.Releases {
		if r.Name == "" {
			return nil, fmt.Errorf("%s is not a valid environment description: release %d has no name", EnvDescription, i+1)
		}
	}
	return &env, nil
}

// Connect finds the environment already deployed in ns and deploys
// nothing: what the remote runner's copy of a test does. The environment
// comes from desc, the value of TESTSHIP_ENVIRONMENT (FromDescription),
// not from Helm's release records, so no Secret is read. Each named chart
// must be a deployed release of desc in ns, and each of its Services must
// exist (checked with the API: get on services).
func Connect(ctx context.Context, cs kubernetes.Interface, ns string, charts []string, desc []byte) (*Environment, error) {
	all, err := FromDescription(desc)
	if err != nil {
		return nil, fmt.Errorf("connect to environment in namespace %s: %w", ns, err)
	}
	if all.Namespace != ns {
		return nil, fmt.Errorf("connect to environment in namespace %s: %s describes namespace %s", ns, EnvDescription, all.Namespace)
	}
	env := &Environment{Namespace: ns, Managed: all.Managed}
	var missing, problems []string
	for _, name := range charts {
		r := all.Release(name)
		if r == nil || r.Status != release.StatusDeployed.String() {
			state := "not in " + EnvDescription
			if r != nil {
				state = r.Status
			}
			missing = append(missing, name+" ("+state+")")
			continue
		}
		for _, s := range r.Services {
			_, err := cs.CoreV1().Services(ns).Get(ctx, s.Name, metav1.GetOptions{})
			switch {
			case apierrors.IsNotFound(err):
				problems = append(problems, fmt.Sprintf("chart %s: Service %s does not exist", name, s.Name))
			case err != nil:
				problems = append(problems, fmt.Sprintf("chart %s: Service %s: %v", name, s.Name, err))
			}
		}
		env.Releases = append(env.Releases, *r)
	}
	if len(missing) > 0 {
		return env, fmt.Errorf("connect to environment in namespace %s: no deployed release for %s; the launcher deployed %s (TESTSHIP_CHARTS must match the launcher's)",
			ns, strings.Join(missing, ", "), releaseNames(all))
	}
	if len(problems) > 0 {
		return env, fmt.Errorf("connect to environment in namespace %s: %w", ns, errors.New(strings.Join(problems, "; ")))
	}
	return env, nil
}

func releaseNames(e *Environment) string {
	if len(e.Releases) == 0 {
		return "no release"
	}
	var names []string
	for _, r := range e.Releases {
		names = append(names, r.Name)
	}
	return strings.Join(names, ", ")
}
