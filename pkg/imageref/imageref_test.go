package imageref

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func TestResolve(t *testing.T) {
	srv := httptest.NewServer(registry.New())
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	tag, _ := name.NewTag(host + "/team/app:v1")
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	ctx := context.Background()

	got, err := Resolve(ctx, host+"/team/app:v1")
	if err != nil || got != host+"/team/app@"+want.String() {
		t.Fatalf("Resolve(tag) = %q, %v; want %s/team/app@%s", got, err, host, want)
	}
	// pinned: as it is, no request needed
	pinned := host + "/team/app@" + want.String()
	if got, err := Resolve(ctx, pinned); err != nil || got != pinned {
		t.Errorf("Resolve(pinned) = %q, %v", got, err)
	}
	// a tag that is not there: an error naming the reference
	if _, err := Resolve(ctx, host+"/team/app:missing"); err == nil || !strings.Contains(err.Error(), "team/app:missing") {
		t.Errorf("Resolve(missing tag) = %v, want an error naming it", err)
	}
	for _, bad := range []string{"UPPER/Case:x", "", host + "/a@sha256:short"} {
		if _, err := Resolve(ctx, bad); err == nil {
			t.Errorf("Resolve(%q) succeeded, want an error", bad)
		}
	}
	if Pinned(host+"/team/app:v1") || !Pinned(pinned) {
		t.Error("Pinned")
	}
}
