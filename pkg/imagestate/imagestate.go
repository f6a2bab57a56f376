// Package imagestate reads and writes the image pipeline's state file
// (<state dir>/images.json): the images of the last build or push. It has no
// Docker or registry dependency, so test binaries can read it cheaply.
package imagestate

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// StateFile is the name of the state file inside the state directory.
const StateFile = "images.json"

// ErrNoState is wrapped by Load's error when no state file exists.
var ErrNoState = errors.New("no images recorded")

// Ref is one image as built or pushed.
type Ref struct {
	Name   string `json:"name"`             // base, test, or an app's name
	Ref    string `json:"ref"`              // registry/repository:tag
	Digest string `json:"digest,omitempty"` // manifest digest in the registry, once pushed
}

// Pinned returns registry/repository@digest (Ref when not pushed or when
// Ref has no tag).
func (r Ref) Pinned() string {
	i := strings.LastIndex(r.Ref, ":")
	if r.Digest == "" || i <= strings.LastIndex(r.Ref, "/") {
		return r.Ref
	}
	return r.Ref[:i] + "@" + r.Digest
}

// Tag returns the tag part of Ref.
func (r Ref) Tag() string { return r.Ref[strings.LastIndex(r.Ref, ":")+1:] }

// State records the images of the last build or push, for later steps.
type State struct {
	Registry string         `json:"registry"`
	Platform string         `json:"platform"`
	Base     Ref            `json:"base"`
	Test     Ref            `json:"test"`
	Apps     map[string]Ref `json:"apps,omitempty"`
	Pushed   bool           `json:"pushed"`
	Time     time.Time      `json:"time"`
}

// AppRefs gives each app's pinned reference by name.
func (s *State) AppRefs() map[string]string {
	out := map[string]string{}
	if s == nil {
		return out
	}
	for name, r := range s.Apps {
		out[name] = r.Pinned()
	}
	return out
}

// Path returns where the state file of dir is: a relative dir is looked up
// from the working directory upwards (go test runs in the package
// directory), falling back to dir itself.
func Path(dir string) string {
	p := filepath.Join(dir, StateFile)
	if filepath.IsAbs(p) {
		return p
	}
	wd, err := os.Getwd()
	if err != nil {
		return p
	}
	for d := wd; ; d = filepath.Dir(d) {
		c := filepath.Join(d, p)
		if _, err := os.Stat(c); err == nil {
			return c
		}
		if filepath.Dir(d) == d {
			return p
		}
	}
}

// Load reads the state written by the last Push or Build. A missing file is
// an error wrapping ErrNoState.
func Load(dir string) (*State, error) {
	p := Path(dir)
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w in %s: run `mage image:push` first", ErrNoState, p)
	}
	if err != nil {
		return nil, err
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s is corrupt: %w; run `mage image:push` again", p, err)
	}
	return &s, nil
}

// Apps reads the app images of dir's state file, pinned by digest when
// pushed. No file means no images.
func Apps(dir string) (map[string]string, error) {
	s, err := Load(dir)
	if errors.Is(err, ErrNoState) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	return s.AppRefs(), nil
}

// Save writes s to dir's state file atomically.
func Save(dir string, s *State) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, StateFile+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, StateFile))
}
