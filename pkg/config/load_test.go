package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// canary is a secret set in every case: no message may show it.
const canary = "canary-secret-0451"

// clean removes every variable the pass reads, so that each case sees
// only what it sets (and the defaults). HOME is an empty directory, so no
// ~/.kube/config is read.
func clean(t *testing.T) {
	t.Helper()
	unset := func(n string) {
		t.Setenv(n, "")
		os.Unsetenv(n)
	}
	for _, v := range Vars() {
		unset(v.Name)
	}
	for _, kv := range os.Environ() {
		n, _, _ := strings.Cut(kv, "=")
		for _, p := range []string{ForwardPrefix, SecretPrefix, "TESTSHIP_", "AWS_ENDPOINT_URL", "GITHUB_"} {
			if strings.HasPrefix(n, p) {
				unset(n)
			}
		}
	}
	unset("KUBERNETES_SERVICE_HOST")
	t.Setenv("HOME", t.TempDir())
}

// kubeconfig writes a kubeconfig file and returns its path.
func kubeconfig(t *testing.T, current, context, cluster, server, user string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "kubeconfig")
	text := `apiVersion: v1
kind: Config
current-context: ` + current + `
contexts:
- name: ` + context + `
  context: {cluster: ` + cluster + `, user: ` + user + `}
clusters:
- name: c1
  cluster: {server: "` + server + `"}
users:
- name: u1
  user: {token: kube-token-` + canary + `}
`
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

type envCase struct {
	name, value string
	env         map[string]string // set too
	secret      string            // must not appear in the message
	file        func(t *testing.T) string
}

func (c envCase) label() string {
	s := c.name + "=" + c.value
	if len(s) > 60 {
		s = s[:60]
	}
	return s
}

func (c envCase) set(t *testing.T) {
	t.Helper()
	clean(t)
	t.Setenv("E2E_TEST_CANARY", canary)
	for k, v := range c.env {
		t.Setenv(k, v)
	}
	val := c.value
	if c.file != nil {
		val = c.file(t)
	}
	t.Setenv(c.name, val)
}

var badCases = []envCase{
	// image
	{name: Registry, value: "https://127.0.0.1:5000"},
	{name: Registry, value: "reg.example.com/path"},
	{name: Registry, value: "127.0.0.1:70000"},
	{name: Registry, value: "127.0.0.1:0"},
	{name: Registry, value: "127.0.0.1:"},
	{name: Registry, value: "reg.example.com:abc"},
	{name: Registry, value: "reg_x.example.com"},
	{name: Registry, value: "-registry"},
	{name: Registry, value: "bob:pa55word@reg.example.com", secret: "pa55word"},
	{name: Registry, value: "https://bob:pa55word@reg.example.com", secret: "pa55word"},
	{name: RegistryType, value: "gcr"},
	{name: RegistryType, value: "ecr", env: map[string]string{Registry: "127.0.0.1:5000"}},
	{name: RegistryType, value: "ecr", env: map[string]string{Registry: "reg.example.com", "AWS_ENDPOINT_URL_ECR": "http://127.0.0.1:1"}},
	{name: RegistryType, value: "ecr", env: map[string]string{Registry: "123456789012.dkr.ecr.eu-west-1.amazonaws.com.evil.io"}},
	{name: Repository, value: "Team/Soak"},
	{name: Repository, value: "a//b"},
	{name: TestPackage, value: "link"},
	{name: TestPackage, value: "-toolexec=/bin/sh"},
	{name: TestPackage, value: "./does/not/exist"},
	{name: TestPackage, value: "../nowhere-testship"},
	{name: TestTags, value: "e2e soak"},
	{name: TestTags, value: "-x"},
	{name: Apps, value: "link"},
	{name: Apps, value: "test=./tests/link/cmd/link"},
	{name: Apps, value: "a=./tests/link/cmd/link,a=./tests/link/cmd/link"},
	{name: Apps, value: "link=-toolexec=x"},
	{name: Apps, value: "link=./nope"},
	{name: Apps, value: "Link=./tests/link/cmd/link"},
	{name: Platform, value: "windows/amd64"},
	{name: Platform, value: "linux/sparc"},
	{name: BaseFrom, value: "UPPER:CASE:bad"},
	{name: BaseFrom, value: "not an image"},
	{name: Progress, value: "fancy"},
	{name: StateDir, value: "-x"},
	// env
	{name: EnvNamespace, value: "Bad_NS"},
	{name: EnvNamespace, value: "kube-system"},
	{name: EnvNamespace, value: "kube-public"},
	{name: EnvNamespace, value: strings.Repeat("a", 64)},
	{name: EnvNamespace, value: "-ns"},
	{name: EnvCharts, value: ","},
	{name: EnvCharts, value: "Link"},
	{name: EnvCharts, value: "link,link"},
	{name: EnvCharts, value: "a_b"},
	{name: EnvCharts, value: "x=ftp://host/chart"},
	{name: EnvCharts, value: "x=oci://"},
	{name: EnvCharts, value: "x=oci://host"},
	{name: EnvCharts, value: "x=https://repo.example.com"},
	{name: EnvCharts, value: "x=https://#chart"},
	{name: EnvCharts, value: "x=./no/such/chart"},
	{name: EnvCharts, value: "x=-flag"},
	{name: EnvLocalCharts, value: "maybe"},
	{name: EnvChartsDir, value: "no-such-charts-dir", env: map[string]string{EnvLocalCharts: "true"}},
	{name: EnvKeep, value: "sometimes"},
	{name: EnvTimeout, value: "soon"},
	{name: EnvTimeout, value: "0s"},
	{name: EnvTimeout, value: "48h"},
	{name: EnvTimeout, value: "-5m"},
	{name: EnvSet, value: "other.x=1"},
	{name: EnvSet, value: "link=3"},
	{name: EnvSet, value: "link.a"},
	{name: EnvSet, value: "db.password=hunter22", env: map[string]string{SecretVars: "ENV_SET"}, secret: "hunter22"},
	{name: EnvSet, value: "link.password=hunter22,other.x=1", env: map[string]string{SecretVars: "ENV_SET"}, secret: "hunter22"},
	{name: EnvFailed, value: "perhaps"},
	{name: "TESTSHIP_IMAGE_OTHER", value: "reg.example.com/other:1"},
	{name: "TESTSHIP_IMAGE_LINK", value: "NOT AN IMAGE"},
	{name: "TESTSHIP_IMAGE_LINK", value: ":::"},
	{name: "TESTSHIP_IMAGE_LINK", value: "reg.example.com/link:1", env: map[string]string{EnvCharts: "none"}},
	// bench
	{name: BenchTime, value: "5"},
	{name: BenchTime, value: "0x"},
	{name: BenchTime, value: "-1s"},
	{name: BenchTestPackage, value: "-run=x"},
	// remote (the remote runner's pod)
	{name: RemoteFlag, value: "maybe"},
	{name: RemoteNamespace, value: "", env: map[string]string{RemoteFlag: "true"}},
	{name: RemoteNamespace, value: "Not_A_Namespace", env: map[string]string{RemoteFlag: "true"}},
	{name: PodCount, value: "0", env: map[string]string{RemoteFlag: "true", RemoteNamespace: "ts-x"}},
	{name: PodCount, value: "many", env: map[string]string{RemoteFlag: "true", RemoteNamespace: "ts-x"}},
	{name: PodIndex, value: "3", env: map[string]string{RemoteFlag: "true", RemoteNamespace: "ts-x", PodCount: "3"}},
	{name: PodIndex, value: "-1", env: map[string]string{RemoteFlag: "true", RemoteNamespace: "ts-x"}},
	// run
	{name: RunTimeout, value: "bogus"},
	{name: RunTimeout, value: "0s"},
	{name: RunTimeout, value: "500ms"},
	{name: RunTimeout, value: "9000h"},
	{name: RunTimeout, value: "-1m"},
	{name: RunWaitTimeout, value: "soon"},
	{name: RunWaitTimeout, value: "800h"},
	{name: RunTTL, value: "100000000h"},
	{name: RunTTL, value: "10s"},
	{name: RunTTL, value: "2400h"},
	{name: RunTTL, value: "forever"},
	{name: RunNew, value: "perhaps"},
	{name: RunDetach, value: "2"},
	{name: RunDoNotEvict, value: "nah"},
	{name: RunFromStart, value: "x"},
	{name: RunOnInterrupt, value: "maybe"},
	{name: RunJobImage, value: "NOT AN IMAGE"},
	{name: RunJobImage, value: "-image"},
	{name: RunPattern, value: "("},
	{name: RunPattern, value: "TestA/[b"},
	{name: RunPattern, value: "-test.v"},
	{name: RunCPURequest, value: "lots"},
	{name: RunCPURequest, value: "-1"},
	{name: RunMemoryLimit, value: "lots"},
	{name: RunMemoryRequest, value: "2Gi"},
	{name: RunCPURequest, value: "2", env: map[string]string{RunCPULimit: "1"}},
	{name: RunNodeSelector, value: "novalue"},
	{name: RunNodeSelector, value: "a=1,a=2"},
	{name: RunNodeSelector, value: "bad key!=v"},
	{name: RunTolerations, value: "k=v:Sometimes"},
	{name: RunTolerations, value: "k=v x:NoSchedule"},
	{name: RunTolerations, value: "k :NoSchedule"},
	{name: RunTolerations, value: "k=v"},
	{name: RunRules, value: "*:pods"},
	{name: RunRules, value: "create:pods"},
	{name: RunRules, value: "patch:pods"},
	{name: RunRules, value: "get:pods/exec"},
	{name: RunRules, value: "create:pods/attach"},
	{name: RunRules, value: "patch:pods/ephemeralcontainers"},
	{name: RunRules, value: "create:serviceaccounts/token"},
	{name: RunRules, value: "get:roles.rbac.authorization.k8s.io"},
	{name: RunRules, value: "escalate:roles.rbac.authorization.k8s.io"},
	{name: RunRules, value: "bind:roles"},
	{name: RunRules, value: "impersonate:users"},
	{name: RunRules, value: "get:secrets"},
	{name: RunRules, value: "create:secrets@x"},
	{name: RunRules, value: "create:deployments.apps"},
	{name: RunRules, value: "patch:statefulsets.apps"},
	{name: RunRules, value: "update:jobs.batch"},
	{name: RunRules, value: "create:cronjobs.batch"},
	{name: RunRules, value: "patch:daemonsets.apps"},
	{name: RunRules, value: "create:replicationcontrollers"},
	{name: RunRules, value: "update:replicasets.apps"},
	{name: RunRules, value: "get:nodes"},
	{name: RunRules, value: "list:namespaces"},
	{name: RunRules, value: "get:persistentvolumes"},
	{name: RunRules, value: "create:storageclasses.storage.k8s.io"},
	{name: RunRules, value: "get:customresourcedefinitions.apiextensions.k8s.io"},
	{name: RunRules, value: "get:priorityclasses.scheduling.k8s.io"},
	{name: RunRules, value: "patch:mutatingwebhookconfigurations.admissionregistration.k8s.io"},
	{name: RunRules, value: "get:csinodes.storage.k8s.io"},
	{name: RunRules, value: "get:clusterroles.rbac.authorization.k8s.io"},
	{name: RunRules, value: "get:*"},
	{name: RunRules, value: "get"},
	{name: RunRules, value: "frob:pods"},
	{name: RunRules, value: "get:secrets@Bad_Name"},
	{name: RunRules, value: "delete:pods;get:secrets"},
	{name: RunJUnit, value: "pkg"},
	{name: "TEST_PATH", value: "/x"},
	{name: "TEST_HOME", value: "/x"},
	{name: "TEST_HOSTNAME", value: "x"},
	{name: "TEST_KUBERNETES_SERVICE_HOST", value: "10.0.0.1"},
	{name: "TEST_TESTSHIP_NAMESPACE", value: "x"},
	{name: "TEST_GODEBUG", value: "x=1"},
	{name: "TEST_GOMAXPROCS", value: "2", env: map[string]string{AllowVars: "GODEBUG"}},
	{name: "TEST_A-B", value: "1"},
	{name: "TEST_1ABC", value: "1"},
	{name: "E2E_TEST_A-B", value: "e2e-secret-value", secret: "e2e-secret-value"},
	{name: SecretVars, value: "PATH"},
	{name: SecretVars, value: "TESTSHIP_NAMESPACE"},
	{name: SecretVars, value: "A-B"},
	{name: SecretVars, value: "GOMAXPROCS"},
	{name: AllowVars, value: "PATH"},
	// dev
	{name: DevDir, value: "relative/dir"},
	{name: DevDir, value: "/"},
	{name: DevDir, value: "/etc"},
	{name: DevDir, value: "/usr/local/x"},
	{name: DevDir, value: "/var/lib"},
	{name: DevDir, value: "/var/lib/"},
	{name: DevDir, value: "/root"},
	{name: DevDir, value: "/home"},
	{name: DevDir, value: "/home/alice"},
	{name: DevDir, value: "/tmp"},
	{name: DevDir, value: "/proc/x"},
	{name: DevDir, value: "/" + strings.Repeat("x", 70)},
	{name: DevDir, value: "/srv/h", env: map[string]string{"HOME": "/srv/h"}},
	{name: CacheDir, value: "cache"},
	{name: CacheDir, value: "/var"},
	{name: CacheDir, value: "/"},
	{name: CacheDir, value: "/boot/cache"},
	{name: DevNodeIP, value: "127.0.0.1"},
	{name: DevNodeIP, value: "not-an-ip"},
	{name: DevNodeIP, value: "fe80::1"},
	{name: DevWipe, value: "maybe"},
	// kube
	{name: Kubeconfig, value: "/nonexistent/kubeconfig"},
	{name: Kubeconfig, file: func(t *testing.T) string { return t.TempDir() }},
	{name: Kubeconfig, file: func(t *testing.T) string {
		p := filepath.Join(t.TempDir(), "garbage")
		os.WriteFile(p, []byte("{{{ not yaml token: "+canary), 0o600)
		return p
	}},
	{name: Kubeconfig, file: func(t *testing.T) string { return kubeconfig(t, "nope", "ctx", "c1", "https://127.0.0.1:6443", "u1") }},
	{name: Kubeconfig, file: func(t *testing.T) string { return kubeconfig(t, `""`, "ctx", "c1", "https://127.0.0.1:6443", "u1") }},
	{name: Kubeconfig, file: func(t *testing.T) string { return kubeconfig(t, "ctx", "ctx", "c2", "https://127.0.0.1:6443", "u1") }},
	{name: Kubeconfig, file: func(t *testing.T) string { return kubeconfig(t, "ctx", "ctx", "c1", "", "u1") }},
	{name: Kubeconfig, file: func(t *testing.T) string { return kubeconfig(t, "ctx", "ctx", "c1", "https://127.0.0.1:6443", "u2") }},
}

func TestBadInputs(t *testing.T) {
	if len(badCases) < 100 {
		t.Fatalf("only %d bad cases", len(badCases))
	}
	for _, c := range badCases {
		t.Run(c.label(), func(t *testing.T) {
			c.set(t)
			_, err := Load()
			var all *Errors
			if !errors.As(err, &all) {
				t.Fatalf("accepted (err %v)", err)
			}
			if all.ExitStatus() != 89 {
				t.Errorf("exit status %d", all.ExitStatus())
			}
			var st interface{ ExitStatus() int }
			if !errors.As(err, &st) || st.ExitStatus() != 89 {
				t.Error("no exit status 89 through errors.As")
			}
			msg := err.Error()
			if !strings.Contains(msg, c.name+"=") {
				t.Errorf("message does not name %s:\n%s", c.name, msg)
			}
			for _, s := range []string{canary, c.secret} {
				if s != "" && strings.Contains(msg, s) {
					t.Errorf("message shows secret %q:\n%s", s, msg)
				}
			}
			if !strings.Contains(msg, "want ") {
				t.Errorf("message does not say what would be right:\n%s", msg)
			}
		})
	}
}

var goodCases = []envCase{
	{name: Registry, value: "127.0.0.1:5000"},
	{name: Registry, value: "localhost:5000"},
	{name: Registry, value: "reg.example.com"},
	{name: Registry, value: "reg.example.com:443"},
	{name: Registry, value: "[::1]:5000"},
	{name: Registry, value: "10.1.2.3"},
	{name: Registry, value: "123456789012.dkr.ecr.eu-west-1.amazonaws.com"},
	{name: RegistryType, value: "ecr", env: map[string]string{Registry: "123456789012.dkr.ecr.eu-west-1.amazonaws.com"}},
	{name: RegistryType, value: "ecr", env: map[string]string{Registry: "127.0.0.1:5001", "AWS_ENDPOINT_URL_ECR": "http://127.0.0.1:9"}},
	{name: RegistryType, value: "ecr", env: map[string]string{Registry: "localhost:5001", "AWS_ENDPOINT_URL_ECR": "http://127.0.0.1:9"}},
	{name: RegistryType, value: "oci"},
	{name: RegistryType, value: "AUTO"},
	{name: Repository, value: "team/soak"},
	{name: Repository, value: "a.b-c"},
	{name: TestPackage, value: "./tests/link"},
	{name: TestPackage, value: "./tests/link/"},
	{name: TestPackage, value: "./tests/..."},
	{name: TestPackage, value: "github.com/testship/testship/tests/link"},
	{name: TestTags, value: "e2e,soak"},
	{name: TestTags, value: ""},
	{name: Apps, value: ""},
	{name: Apps, value: "link=./tests/link/cmd/link"},
	{name: Apps, value: "link=./tests/link/cmd/link, other=github.com/x/y/cmd/other"},
	{name: Platform, value: "linux/amd64"},
	{name: Platform, value: "linux/arm64"},
	{name: Platform, value: "LINUX/ARM64"},
	{name: BaseFrom, value: "debian:bookworm-slim"},
	{name: BaseFrom, value: "127.0.0.1:5000/base@sha256:" + strings.Repeat("a", 64)},
	{name: Progress, value: "tty"},
	{name: Progress, value: "plain"},
	{name: StateDir, value: "/tmp/state"},
	{name: EnvNamespace, value: "ok-ns"},
	{name: EnvNamespace, value: "a"},
	{name: EnvNamespace, value: strings.Repeat("a", 63)},
	{name: EnvNamespace, value: "kube"},
	{name: EnvNamespace, value: "kubeflow-tests"},
	{name: EnvCharts, value: "link"},
	{name: EnvCharts, value: "none"},
	{name: EnvCharts, value: "NONE"},
	{name: EnvCharts, value: "link=./charts/link"},
	{name: EnvCharts, value: "link=charts/link"},
	{name: EnvCharts, value: "x=oci://127.0.0.1:5000/charts/x:1.0.0"},
	{name: EnvCharts, value: "x=oci://reg.example.com/charts/x@1.0.0"},
	{name: EnvCharts, value: "x=https://charts.example.com#x@1.2.3"},
	{name: EnvCharts, value: "x=https://charts.example.com/stable#x"},
	{name: EnvCharts, value: "x=http://127.0.0.1:8879#x@0.1.0"},
	{name: EnvCharts, value: " link , db=./charts/link "},
	{name: EnvCharts, value: "x=/nonexistent/chart", env: map[string]string{"TESTSHIP_REMOTE": "true", "TESTSHIP_NAMESPACE": "ts-x"}},
	{name: RemoteFlag, value: "true", env: map[string]string{RemoteNamespace: "ts-x", RemoteEnvironment: `{"namespace":"ts-x"}`}},
	{name: RemoteNamespace, value: "not-checked-outside-the-pod_"},
	{name: PodIndex, value: "2", env: map[string]string{RemoteFlag: "true", RemoteNamespace: "ts-x", PodCount: "3"}},
	{name: PodCount, value: "not-checked-outside-the-pod"},
	{name: BenchTime, value: "2x"},
	{name: BenchTime, value: "10s"},
	{name: BenchTestPackage, value: "./pkg/image/testdata/fixture"},
	{name: EnvLocalCharts, value: "true"},
	{name: EnvLocalCharts, value: "no"},
	{name: EnvChartsDir, value: "charts", env: map[string]string{EnvLocalCharts: "true"}},
	{name: EnvChartsDir, value: "no-such-charts-dir"},
	{name: EnvKeep, value: "onfail"},
	{name: EnvKeep, value: "ALWAYS"},
	{name: EnvTimeout, value: "90s"},
	{name: EnvTimeout, value: "1h"},
	{name: EnvTimeout, value: "24h"},
	{name: EnvSet, value: "link.message=hi"},
	{name: EnvSet, value: "link.replicas=3,link.a.b=c"},
	{name: EnvSet, value: `link.msg=a\,b`},
	{name: EnvSet, value: "db.password=hunter22", env: map[string]string{SecretVars: "ENV_SET", EnvCharts: "link,db=./charts/link"}},
	{name: EnvFailed, value: "true"},
	{name: "TESTSHIP_IMAGE_LINK", value: "127.0.0.1:5000/testship/link:v1"},
	{name: "TESTSHIP_IMAGE_LINK", value: "127.0.0.1:5000/testship/link@sha256:" + strings.Repeat("b", 64)},
	{name: "TESTSHIP_IMAGE_MY_DB", value: "postgres:16", env: map[string]string{EnvCharts: "link,my-db=./charts/link"}},
	{name: RunTimeout, value: "1s"},
	{name: RunTimeout, value: "30m"},
	{name: RunTimeout, value: "720h"},
	{name: RunWaitTimeout, value: "20m"},
	{name: RunTTL, value: "1m"},
	{name: RunTTL, value: "24h"},
	{name: RunTTL, value: "2160h"},
	{name: RunPattern, value: "TestLink"},
	{name: RunPattern, value: "^TestLink$"},
	{name: RunPattern, value: "TestA/sub"},
	{name: RunPattern, value: "TestA/[a/b]"},
	{name: RunPattern, value: "TestA|TestB"},
	{name: RunPattern, value: `Test\/x`},
	{name: RunNew, value: "yes"},
	{name: RunDetach, value: "1"},
	{name: RunOnInterrupt, value: "LEAVE"},
	{name: RunCPURequest, value: "500m", env: map[string]string{RunCPULimit: "1"}},
	{name: RunMemoryRequest, value: "1Gi", env: map[string]string{RunMemoryLimit: "1Gi"}},
	{name: RunMemoryRequest, value: "4Gi", env: map[string]string{RunMemoryLimit: "8Gi"}},
	{name: RunCPULimit, value: "2"},
	{name: RunNodeSelector, value: "kubernetes.io/arch=amd64,pool=tests"},
	{name: RunNodeSelector, value: "pool="},
	{name: RunTolerations, value: "dedicated=tests:NoSchedule,spot:NoExecute"},
	{name: RunTolerations, value: " a:NoSchedule , b:PreferNoSchedule "},
	{name: RunRules, value: "delete:pods"},
	{name: RunRules, value: "patch:deployments/scale.apps"},
	{name: RunRules, value: "update:statefulsets/scale.apps"},
	{name: RunRules, value: "get:secrets@db-password"},
	{name: RunRules, value: "get,update:secrets@a,b"},
	{name: RunRules, value: "get,list,watch:configmaps"},
	{name: RunRules, value: "get,list:deployments.apps"},
	{name: RunRules, value: "delete:jobs.batch"},
	{name: RunRules, value: "get:pods/log"},
	{name: RunRules, value: "create:configmaps;delete:pods;patch:deployments/scale.apps"},
	{name: RunRules, value: "create,delete:networkpolicies.networking.k8s.io"},
	{name: RunJobImage, value: "127.0.0.1:5000/testship/test@sha256:" + strings.Repeat("c", 64)},
	{name: RunJobImage, value: "127.0.0.1:5000/testship/test:abc"},
	{name: RunJUnit, value: "reports/junit.xml"},
	{name: RunFromStart, value: "on"},
	{name: "TEST_FOO", value: "1"},
	{name: "TEST_LINK_SOAK", value: "20s"},
	{name: "E2E_TEST_TOKEN", value: "x"},
	{name: "DB_PASS", value: "pw", env: map[string]string{SecretVars: "DB_PASS"}},
	{name: "TEST_GODEBUG", value: "x=1", env: map[string]string{AllowVars: "GODEBUG"}},
	{name: "GOMAXPROCS", value: "2", env: map[string]string{SecretVars: "GOMAXPROCS", AllowVars: "GOMAXPROCS,GODEBUG"}},
	{name: DevDir, value: "/var/lib/testship/dev"},
	{name: DevDir, value: "/srv/testship"},
	{name: DevDir, value: "/tmp/testship-dev"},
	{name: DevDir, value: "/opt/testship"},
	{name: DevDir, value: "/home/alice/testship"},
	{name: CacheDir, value: "/var/cache/testship"},
	{name: DevNodeIP, value: "10.0.0.5"},
	{name: DevWipe, value: "true"},
	{name: Kubeconfig, file: func(t *testing.T) string { return kubeconfig(t, "ctx", "ctx", "c1", "https://127.0.0.1:6443", "u1") }},
	{name: Kubeconfig, file: func(t *testing.T) string {
		a := kubeconfig(t, "ctx", "ctx", "c1", "https://127.0.0.1:6443", "u1")
		b := kubeconfig(t, "ctx", "ctx", "c1", "https://10.0.0.1:6443", "u1")
		return a + string(os.PathListSeparator) + b
	}},
}

func TestGoodInputs(t *testing.T) {
	if len(goodCases) < 100 {
		t.Fatalf("only %d good cases", len(goodCases))
	}
	for _, c := range goodCases {
		t.Run(c.label(), func(t *testing.T) {
			c.set(t)
			if _, err := Load(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestAllProblemsAtOnce(t *testing.T) {
	clean(t)
	t.Setenv(RunTimeout, "bogus")
	t.Setenv(Registry, "127.0.0.1:70000")
	t.Setenv(EnvNamespace, "kube-system")
	t.Setenv(RunRules, "create:pods;get:nodes")
	t.Setenv(DevDir, "/")
	_, err := Load()
	var all *Errors
	if !errors.As(err, &all) || len(all.List) != 6 {
		t.Fatalf("want 6 problems, got %v", err)
	}
	msg := err.Error()
	for _, s := range []string{"6 problems", RunTimeout + `="bogus"`, Registry + `="127.0.0.1:70000"`, EnvNamespace + `="kube-system"`,
		`rule "create:pods"`, `rule "get:nodes"`, DevDir + `="/"`} {
		if !strings.Contains(msg, s) {
			t.Errorf("message lacks %q:\n%s", s, msg)
		}
	}
	// Each area alone sees only its own problems.
	_, err = Load(ForImage...)
	if !errors.As(err, &all) || len(all.List) != 1 || all.List[0].Name != Registry {
		t.Errorf("image area: %v", err)
	}
	if _, err := Load(ForDev...); !errors.As(err, &all) || len(all.List) != 1 {
		t.Errorf("dev area: %v", err)
	}
}

func TestDefaultsPass(t *testing.T) {
	clean(t)
	cfg, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Image.Registry != "127.0.0.1:5000" || cfg.Env.Charts[0].Name != "link" || cfg.Run.TTL.Hours() != 24 || cfg.Dev.Dir != "/var/lib/testship/dev" {
		t.Errorf("defaults: %+v", cfg)
	}
}

func TestChartsNone(t *testing.T) {
	clean(t)
	t.Setenv(EnvCharts, "none")
	cfg, err := Load(ForTest...)
	if err != nil || len(cfg.Env.Charts) != 0 {
		t.Fatalf("TESTSHIP_CHARTS=none: %+v, %v", cfg.Env.Charts, err)
	}
}

func TestLongValueShortened(t *testing.T) {
	clean(t)
	t.Setenv(RunTimeout, strings.Repeat("x", 500))
	_, err := Load(ForTest...)
	if err == nil || strings.Contains(err.Error(), strings.Repeat("x", 100)) || !strings.Contains(err.Error(), "500 characters") {
		t.Fatalf("long value not shortened: %v", err)
	}
}

func TestRulesResourceNames(t *testing.T) {
	rules, err := ParseRules("get,update:secrets@db-password,api-key;patch:deployments/scale.apps")
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != 2 || len(rules[0].ResourceNames) != 2 || rules[0].ResourceNames[1] != "api-key" || rules[0].Resources[0] != "secrets" ||
		rules[1].APIGroups[0] != "apps" || rules[1].Resources[0] != "deployments/scale" || len(rules[1].ResourceNames) != 0 {
		t.Fatalf("rules %+v", rules)
	}
	_, err = ParseRules("create:pods;get:pods/exec")
	var all *Errors
	if !errors.As(err, &all) || len(all.List) != 2 || !strings.Contains(err.Error(), `rule "get:pods/exec"`) {
		t.Fatalf("both rules should be named: %v", err)
	}
}

func TestReserved(t *testing.T) {
	clean(t)
	for _, n := range []string{"PATH", "HOME", "HOSTNAME", "KUBERNETES_SERVICE_HOST", "TESTSHIP_NAMESPACE", "GODEBUG", "GOMAXPROCS", "GOGC"} {
		if !Reserved(n) {
			t.Errorf("%s not reserved", n)
		}
	}
	for _, n := range []string{"FOO", "DB_PASSWORD", "E2E_TEST_TOKEN", "GOPATH"} {
		if Reserved(n) {
			t.Errorf("%s reserved", n)
		}
	}
	t.Setenv(AllowVars, "GODEBUG, GOMAXPROCS")
	if Reserved("GODEBUG") || Reserved("GOMAXPROCS") || !Reserved("GOGC") || !Reserved("PATH") {
		t.Error("TESTSHIP_ALLOW_VARS not applied to the Go runtime's variables alone")
	}
}

func TestRedaction(t *testing.T) {
	clean(t)
	t.Setenv("E2E_TEST_TOKEN", "tok-123456")
	t.Setenv("MY_PASSWORD", "pw-abcdef")
	t.Setenv(EnvSet, "link.password=set-secret-1")
	t.Setenv(SecretVars, "MY_PASSWORD,ENV_SET")
	t.Setenv(Registry, "bob:reg-pass-9@reg.example.com")
	t.Setenv("E2E_TEST_SHORT", "ab")
	t.Setenv(RunRules, "get:secrets@db-password")
	if got := RedactURL("https://bob:pw@example.com/x and oci://a:b@h/c"); got != "https://bob:<redacted>@example.com/x and oci://a:<redacted>@h/c" {
		t.Errorf("RedactURL = %q", got)
	}
	if got := RedactURL("127.0.0.1:5000/testship/test:abc@sha256:00"); got != "127.0.0.1:5000/testship/test:abc@sha256:00" {
		t.Errorf("RedactURL changed an image reference: %q", got)
	}
	text := RedactText("a tok-123456 b pw-abcdef c set-secret-1 d reg-pass-9 e ab")
	if text != "a <redacted> b <redacted> c <redacted> d <redacted> e ab" {
		t.Errorf("RedactText = %q", text)
	}
	var b strings.Builder
	Print(&b)
	out := b.String()
	for _, s := range []string{"tok-123456", "pw-abcdef", "set-secret-1", "reg-pass-9"} {
		if strings.Contains(out, s) {
			t.Errorf("mage config shows %q:\n%s", s, out)
		}
	}
	if !strings.Contains(out, "get:secrets@db-password") || !strings.Contains(out, "bob:<redacted>@reg.example.com") || !strings.Contains(out, "ENV_SET, MY_PASSWORD") {
		t.Errorf("mage config:\n%s", out)
	}
}

func TestMaskInActions(t *testing.T) {
	clean(t)
	t.Setenv("E2E_TEST_MULTI", "line-one\nline%two")
	var b strings.Builder
	MaskInActions(&b)
	if b.Len() != 0 {
		t.Fatalf("masked outside Actions: %q", b.String())
	}
	t.Setenv("GITHUB_ACTIONS", "true")
	MaskInActions(&b)
	if got := b.String(); got != "::add-mask::line-one\n::add-mask::line%25two\n" {
		t.Fatalf("got %q", got)
	}
	b.Reset()
	MaskInActions(&b)
	if b.Len() != 0 {
		t.Fatalf("masked twice: %q", b.String())
	}
}

func TestScalars(t *testing.T) {
	clean(t)
	const v = "TESTSHIP_SCALAR_TEST"
	for in, want := range map[string]bool{"": false, "0": false, "No": false, "off": false, "1": true, "TRUE": true, "yes": true, "on": true} {
		t.Setenv(v, in)
		if got, err := Bool(v); err != nil || got != want {
			t.Errorf("Bool(%q) = %v, %v", in, got, err)
		}
	}
	t.Setenv(v, "maybe")
	if _, err := Bool(v); err == nil {
		t.Error("Bool(maybe) accepted")
	}
	for in, ok := range map[string]bool{"": true, "5": true, "-1": false, "11": false, "x": false, "2.5": false} {
		t.Setenv(v, in)
		if _, err := Int(v, 0, 10); (err == nil) != ok {
			t.Errorf("Int(%q) error %v", in, err)
		}
	}
}

func TestUnknownVariables(t *testing.T) {
	clean(t)
	t.Setenv("TESTSHIP_TIMOUT", "5m")
	t.Setenv("TESTSHIP_SOMETHING_ELSE", "x")
	t.Setenv("TESTSHIP_IMAGE_LINK", "reg.example.com/link:1")
	u := Unknown()
	if len(u) != 2 || u[0].Name != "TESTSHIP_SOMETHING_ELSE" || u[0].Hint != "" || u[1].Hint != " (did you mean TESTSHIP_TIMEOUT?)" {
		t.Fatalf("Unknown() = %+v", u)
	}
	var b strings.Builder
	Print(&b)
	if !strings.Contains(b.String(), "note: TESTSHIP_TIMOUT is set but testship's targets do not read it (did you mean TESTSHIP_TIMEOUT?)") {
		t.Fatalf("mage config:\n%s", b.String())
	}
}
