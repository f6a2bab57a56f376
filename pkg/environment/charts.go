package environment

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/testship/testship/charts"
	"github.com/testship/testship/pkg/config"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/cli"
	"helm.sh/helm/v3/pkg/registry"
)

// loadChart finds a chart: an explicit Source (directory or archive on disk,
// oci:// reference, or https://repo#chart@version), else charts/<name> from
// disk when local is true, else the copy embedded in the binary.
func loadChart(ref config.ChartRef, local bool, dir string) (*chart.Chart, string, error) {
	src := ref.Source
	switch {
	case strings.HasPrefix(src, "oci://"):
		// oci://host/repo/chart:version, or @version like a repository chart.
		name, version := src, ""
		if i := strings.LastIndex(src, "@"); i > strings.LastIndex(src, "/") {
			name, version = src[:i], src[i+1:]
		}
		return loadRemote(ref.Name, name, "", version)
	case strings.HasPrefix(src, "https://") || strings.HasPrefix(src, "http://"):
		repo, rest, ok := strings.Cut(src, "#")
		if !ok || rest == "" {
			return nil, "", &config.Error{Name: config.EnvCharts, Value: ref.Name + "=" + src,
				Want: "a repository chart as NAME=https://repo.example.com#chart@version"}
		}
		name, version, _ := strings.Cut(rest, "@")
		return loadRemote(ref.Name, name, repo, version)
	case src != "":
		p, err := findUp(src)
		if err != nil {
			return nil, "", fmt.Errorf("chart %s: %w", ref.Name, err)
		}
		ch, err := loader.Load(p)
		if err != nil {
			return nil, "", fmt.Errorf("chart %s from %s: %w", ref.Name, p, err)
		}
		return ch, p, nil
	case local:
		p, err := findUp(filepath.Join(dir, ref.Name))
		if err != nil {
			return nil, "", fmt.Errorf("chart %s (LOCAL_CHARTS=true): %w", ref.Name, err)
		}
		ch, err := loader.Load(p)
		if err != nil {
			return nil, "", fmt.Errorf("chart %s from %s: %w", ref.Name, p, err)
		}
		return ch, p, nil
	}
	ch, err := loadEmbedded(charts.FS, ref.Name)
	if err != nil {
		return nil, "", err
	}
	return ch, "embedded charts/" + ref.Name, nil
}

// loadEmbedded loads the chart in directory name of fsys.
func loadEmbedded(fsys fs.FS, name string) (*chart.Chart, error) {
	var files []*loader.BufferedFile
	err := fs.WalkDir(fsys, name, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		files = append(files, &loader.BufferedFile{Name: strings.TrimPrefix(p, name+"/"), Data: data})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("chart %s is not embedded in this binary (embedded: %s); set LOCAL_CHARTS=true or give a path in TESTSHIP_CHARTS: %w",
			name, strings.Join(embeddedNames(fsys), ", "), err)
	}
	ch, err := loader.LoadFiles(files)
	if err != nil {
		return nil, fmt.Errorf("chart %s (embedded): %w", name, err)
	}
	return ch, nil
}

func embeddedNames(fsys fs.FS) []string {
	var out []string
	entries, _ := fs.ReadDir(fsys, ".")
	for _, e := range entries {
		if _, err := fs.Stat(fsys, path.Join(e.Name(), "Chart.yaml")); e.IsDir() && err == nil {
			out = append(out, e.Name())
		}
	}
	return out
}

// findUp resolves a relative path against the working directory and its
// parents, so `go test` (which runs in the package directory) finds the
// repository's charts/ like a run from the root does.
func findUp(p string) (string, error) {
	if filepath.IsAbs(p) {
		if _, err := os.Stat(p); err != nil {
			return "", err
		}
		return p, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		c := filepath.Join(d, p)
		if _, err := os.Stat(c); err == nil {
			return c, nil
		}
		if filepath.Dir(d) == d {
			break
		}
	}
	return "", fmt.Errorf("%s not found in %s or any parent directory", p, wd)
}

// loadRemote pulls a chart from an OCI registry or a chart repository into
// Helm's cache and loads it. Registry credentials come from Helm's usual
// registry config (helm registry login / HELM_REGISTRY_CONFIG).
func loadRemote(release, name, repoURL, version string) (*chart.Chart, string, error) {
	settings := cli.New()
	opts := []registry.ClientOption{registry.ClientOptCredentialsFile(settings.RegistryConfig)}
	if strings.HasPrefix(name, "oci://127.0.0.1") || strings.HasPrefix(name, "oci://localhost") {
		opts = append(opts, registry.ClientOptPlainHTTP())
	}
	rc, err := registry.NewClient(opts...)
	if err != nil {
		return nil, "", err
	}
	cpo := action.ChartPathOptions{RepoURL: repoURL, Version: version}
	install := action.NewInstall(&action.Configuration{RegistryClient: rc})
	install.ChartPathOptions = cpo
	install.SetRegistryClient(rc)
	if strings.HasPrefix(name, "oci://127.0.0.1") || strings.HasPrefix(name, "oci://localhost") {
		install.PlainHTTP = true
	}
	p, err := install.ChartPathOptions.LocateChart(name, settings)
	if err != nil {
		return nil, "", fmt.Errorf("chart %s: fetch %s %s: %w", release, repoURL, name, err)
	}
	ch, err := loader.Load(p)
	if err != nil {
		return nil, "", fmt.Errorf("chart %s from %s: %w", release, p, err)
	}
	where := name
	if repoURL != "" {
		where = repoURL + "#" + name
	}
	if version != "" {
		where += "@" + version
	}
	return ch, where, nil
}
