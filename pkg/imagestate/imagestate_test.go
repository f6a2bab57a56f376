package imagestate

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSaveLoadRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	want := &State{
		Registry: "127.0.0.1:5000", Platform: "linux/amd64", Pushed: true,
		Base: Ref{Name: "base", Ref: "127.0.0.1:5000/testship/base:aaa", Digest: "sha256:01"},
		Test: Ref{Name: "test", Ref: "127.0.0.1:5000/testship/test:bbb"},
		Apps: map[string]Ref{"echo": {Name: "echo", Ref: "127.0.0.1:5000/testship/echo:ccc", Digest: "sha256:02"}},
		Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	}
	if err := Save(dir, want); err != nil {
		t.Fatal(err)
	}
	got, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.Base != want.Base || got.Test != want.Test || got.Apps["echo"] != want.Apps["echo"] ||
		got.Registry != want.Registry || got.Platform != want.Platform || !got.Time.Equal(want.Time) || !got.Pushed {
		t.Fatalf("round trip: got %+v, want %+v", got, want)
	}
	if _, err := os.Stat(filepath.Join(dir, StateFile+".tmp")); !os.IsNotExist(err) {
		t.Fatalf("temporary file left behind: %v", err)
	}
}

func TestPinned(t *testing.T) {
	for _, c := range []struct {
		r    Ref
		want string
	}{
		{Ref{Ref: "reg:5000/a/b:t1", Digest: "sha256:d"}, "reg:5000/a/b@sha256:d"},
		{Ref{Ref: "reg:5000/a/b:t1"}, "reg:5000/a/b:t1"},
		{Ref{Ref: "reg:5000/a/b", Digest: "sha256:d"}, "reg:5000/a/b"},
	} {
		if got := c.r.Pinned(); got != c.want {
			t.Errorf("%+v.Pinned() = %q, want %q", c.r, got, c.want)
		}
	}
	if got := (Ref{Ref: "reg/a:t1"}).Tag(); got != "t1" {
		t.Errorf("Tag = %q", got)
	}
}

func TestMissingFile(t *testing.T) {
	dir := t.TempDir()
	_, err := Load(dir)
	if !errors.Is(err, ErrNoState) || !strings.Contains(err.Error(), "mage image:push") {
		t.Fatalf("Load of missing file: %v", err)
	}
	apps, err := Apps(dir)
	if err != nil || apps == nil || len(apps) != 0 {
		t.Fatalf("Apps of missing file = %v, %v; want empty map", apps, err)
	}
}

func TestCorruptFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, StateFile), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err == nil || errors.Is(err, ErrNoState) || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("Load of corrupt file: %v", err)
	}
	if _, err := Apps(dir); err == nil {
		t.Fatal("Apps of corrupt file: no error")
	}
}

func TestParentSearchAndApps(t *testing.T) {
	root := t.TempDir()
	st := &State{Apps: map[string]Ref{
		"echo": {Name: "echo", Ref: "reg/echo:t", Digest: "sha256:e"},
		"web":  {Name: "web", Ref: "reg/web:t"},
	}}
	if err := Save(filepath.Join(root, ".testship"), st); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(root, "pkg", "x")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(sub)
	apps, err := Apps(".testship")
	if err != nil {
		t.Fatal(err)
	}
	if apps["echo"] != "reg/echo@sha256:e" || apps["web"] != "reg/web:t" || len(apps) != 2 {
		t.Fatalf("Apps = %v", apps)
	}
}
