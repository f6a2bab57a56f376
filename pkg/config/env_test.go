package config

import (
	"errors"
	"testing"
)

func TestParseKeep(t *testing.T) {
	for in, want := range map[string]Keep{
		"": KeepNever, "never": KeepNever, "NEVER": KeepNever,
		"onfail": KeepOnFail, "OnFail": KeepOnFail, "on_failure": KeepOnFail, "ON_FAILURE": KeepOnFail,
		"always": KeepAlways, " Always ": KeepAlways,
	} {
		got, err := ParseKeep(in)
		if err != nil || got != want {
			t.Errorf("ParseKeep(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"sometimes", "on", "keep"} {
		_, err := ParseKeep(bad)
		var ce *Error
		if !errors.As(err, &ce) || ce.Name != "KEEP_ENVIRONMENTS" || ce.Value != bad {
			t.Errorf("ParseKeep(%q) error = %v, want a *config.Error naming KEEP_ENVIRONMENTS", bad, err)
		}
	}
}

func TestKeeps(t *testing.T) {
	cases := []struct {
		k            Keep
		failed, want bool
	}{
		{KeepNever, false, false}, {KeepNever, true, false},
		{KeepOnFail, false, false}, {KeepOnFail, true, true},
		{KeepAlways, false, true}, {KeepAlways, true, true},
	}
	for _, c := range cases {
		if got := c.k.Keeps(c.failed); got != c.want {
			t.Errorf("%s.Keeps(%v) = %v", c.k, c.failed, got)
		}
	}
}

func TestParseCharts(t *testing.T) {
	got, err := ParseCharts(" link , db=./charts/link,cache=oci://127.0.0.1:5000/charts/cache:1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	want := []ChartRef{{"link", ""}, {"db", "./charts/link"}, {"cache", "oci://127.0.0.1:5000/charts/cache:1.0.0"}}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("chart %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	for _, bad := range []string{"", ",", "Link", "link,link", "a_b"} {
		if _, err := ParseCharts(bad); err == nil {
			t.Errorf("ParseCharts(%q) accepted", bad)
		}
	}
}

func TestLoadEnvErrors(t *testing.T) {
	t.Setenv("KEEP_ENVIRONMENTS", "maybe")
	if _, err := LoadEnv(); err == nil {
		t.Error("KEEP_ENVIRONMENTS=maybe accepted")
	}
	t.Setenv("KEEP_ENVIRONMENTS", "on_failure")
	t.Setenv("ENV_NAMESPACE", "Bad_NS")
	if _, err := LoadEnv(); err == nil {
		t.Error("ENV_NAMESPACE=Bad_NS accepted")
	}
	t.Setenv("ENV_NAMESPACE", "ok-ns")
	c, err := LoadEnv()
	if err != nil || c.Keep != KeepOnFail || c.Namespace != "ok-ns" || c.Charts[0].Name != "link" {
		t.Errorf("LoadEnv = %+v, %v", c, err)
	}
}

func TestImageVar(t *testing.T) {
	if got := ImageVar("my-app"); got != "TESTSHIP_IMAGE_MY_APP" {
		t.Errorf("ImageVar = %s", got)
	}
}
