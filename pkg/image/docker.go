package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/docker/docker/api/types/build"
	dockerimage "github.com/docker/docker/api/types/image"
	dockerregistry "github.com/docker/docker/api/types/registry"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/jsonmessage"
	"github.com/moby/term"
)

// Engine is a Docker Engine reached through its API.
type Engine struct {
	cli *client.Client
	out io.Writer
	tty bool
	fd  uintptr
}

// Connect reaches the Docker Engine named by DOCKER_HOST (default: the
// local socket), negotiating the API version so old daemons work.
// progress is "tty", "plain" or "auto" (tty when out is a terminal and CI
// is not set).
func Connect(ctx context.Context, out io.Writer, progress string) (*Engine, error) {
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("Docker Engine client: %w (check DOCKER_HOST=%q)", err, os.Getenv("DOCKER_HOST"))
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := cli.Ping(pctx); err != nil {
		cli.Close()
		return nil, fmt.Errorf("Docker Engine not reachable at %s: %v; start it (`mage dev:up`, `sudo systemctl start docker`, or `sudo dockerd &`) or set DOCKER_HOST to a running engine", cli.DaemonHost(), err)
	}
	e := &Engine{cli: cli, out: out}
	e.fd, e.tty = useTTY(out, progress)
	return e, nil
}

// useTTY says whether progress is drawn as bars on out: "tty", or "auto"
// when out is a terminal and CI is not set.
func useTTY(out io.Writer, progress string) (uintptr, bool) {
	fd, isTerm := term.GetFdInfo(out)
	switch progress {
	case "tty":
		return fd, true
	case "auto":
		return fd, isTerm && os.Getenv("CI") == ""
	}
	return fd, false
}

// Close releases the client.
func (e *Engine) Close() error { return e.cli.Close() }

// Client exposes the underlying Docker client.
func (e *Engine) Client() *client.Client { return e.cli }

// Has reports whether the engine has an image with this reference.
func (e *Engine) Has(ctx context.Context, ref string) (bool, error) {
	_, err := e.cli.ImageInspect(ctx, ref)
	if err == nil {
		return true, nil
	}
	if client.IsErrNotFound(err) {
		return false, nil
	}
	return false, fmt.Errorf("inspect image %s: %w", ref, err)
}

// Build builds the context's Dockerfile into ref. The Engine API answers
// 200 even when the build fails; the failure is in the stream, so the
// stream is read to the end and its error returned. The legacy builder
// tags only a successful build, so a failure leaves no tag behind.
func (e *Engine) Build(ctx context.Context, what string, bc *buildContext, ref string, args map[string]string, auths map[string]dockerregistry.AuthConfig, platform string) error {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(bc.Tar(pw)) }()
	buildArgs := map[string]*string{}
	for k, v := range args {
		buildArgs[k] = &v
	}
	resp, err := e.cli.ImageBuild(ctx, pr, build.ImageBuildOptions{
		Tags:        []string{ref},
		Dockerfile:  "Dockerfile",
		BuildArgs:   buildArgs,
		Remove:      true,
		ForceRemove: true,
		AuthConfigs: auths,
		Platform:    platform,
		Version:     build.BuilderV1,
	})
	if err != nil {
		pr.CloseWithError(err)
		return fmt.Errorf("build %s image %s: %w", what, ref, err)
	}
	defer resp.Body.Close()
	if err := e.display(resp.Body, nil); err != nil {
		return fmt.Errorf("build %s image %s failed: %w", what, ref, err)
	}
	return nil
}

// Push pushes ref and returns the manifest digest the registry reported.
func (e *Engine) Push(ctx context.Context, ref string, auth dockerregistry.AuthConfig) (string, error) {
	enc, err := dockerregistry.EncodeAuthConfig(auth)
	if err != nil {
		return "", err
	}
	rc, err := e.cli.ImagePush(ctx, ref, dockerimage.PushOptions{RegistryAuth: enc})
	if err != nil {
		return "", fmt.Errorf("push %s: %w", ref, err)
	}
	defer rc.Close()
	var digest string
	err = e.display(rc, func(m jsonmessage.JSONMessage) {
		var aux struct{ Digest string }
		if json.Unmarshal(*m.Aux, &aux) == nil && aux.Digest != "" {
			digest = aux.Digest
		}
	})
	if err != nil {
		return "", fmt.Errorf("push %s failed: %w", ref, err)
	}
	if digest == "" {
		return "", fmt.Errorf("push %s: the engine reported no digest", ref)
	}
	return digest, nil
}

// Size returns the image's size in bytes as the engine reports it.
func (e *Engine) Size(ctx context.Context, ref string) (int64, error) {
	ins, err := e.cli.ImageInspect(ctx, ref)
	if err != nil {
		return 0, err
	}
	return ins.Size, nil
}

// display renders a JSON message stream: progress bars on a terminal, one
// plain line per event otherwise. It returns the stream's error, if any.
func (e *Engine) display(r io.Reader, aux func(jsonmessage.JSONMessage)) error {
	w := e.out
	if w == nil {
		w = io.Discard
	}
	err := jsonmessage.DisplayJSONMessagesStream(r, w, e.fd, e.tty, aux)
	var jerr *jsonmessage.JSONError
	if errors.As(err, &jerr) {
		return errors.New(strings.TrimSpace(jerr.Message))
	}
	return err
}
