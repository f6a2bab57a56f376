package config

import (
	"errors"
	"runtime"
	"strings"
	"testing"
)

func TestLoadImageDefaults(t *testing.T) {
	for _, v := range Vars("image") {
		t.Setenv(v.Name, "")
	}
	c, err := LoadImage()
	if err != nil {
		t.Fatal(err)
	}
	if c.Registry != "127.0.0.1:5000" || c.RegistryType != "oci" || c.Repository != "testship" {
		t.Fatalf("defaults: %+v", c)
	}
	if c.Platform != "linux/"+runtime.GOARCH || c.OS() != "linux" || c.Arch() != runtime.GOARCH {
		t.Fatalf("platform %q", c.Platform)
	}
	if len(c.Apps) != 1 || c.Apps[0] != (App{"link", "./tests/link/cmd/link"}) {
		t.Fatalf("apps %+v", c.Apps)
	}
	if c.ImageRef("test") != "127.0.0.1:5000/testship/test" {
		t.Fatal(c.ImageRef("test"))
	}
}

func TestLoadImageRejectsBadInput(t *testing.T) {
	cases := []struct{ name, value, want string }{
		{Registry, "https://127.0.0.1:5000", "without a scheme"},
		{Registry, "reg.example.com/path", "without a scheme or path"},
		{RegistryType, "gcr", "auto, ecr or oci"},
		{Repository, "Team/Soak", "lowercase"},
		{Platform, "windows/amd64", "linux/amd64"},
		{Platform, "linux/sparc", "one of"},
		{BaseFrom, "UPPER:CASE:bad", "scratch or an image reference"},
		{Apps, "link", "name=package"},
		{Apps, "test=./x", "not base or test"},
		{Apps, "a=./x,a=./y", "name=package"},
		{Progress, "fancy", "auto, tty or plain"},
		{TestPackage, "link", "Go package path"},
		{TestTags, "e2e soak", "comma-separated build tags"},
	}
	for _, tc := range cases {
		t.Run(tc.name+"="+tc.value, func(t *testing.T) {
			for _, v := range Vars("image") {
				t.Setenv(v.Name, "")
			}
			t.Setenv(tc.name, tc.value)
			_, err := LoadImage()
			var cerr *Error
			if !errors.As(err, &cerr) {
				t.Fatalf("want *config.Error, got %v", err)
			}
			msg := err.Error()
			if cerr.Name != tc.name || !strings.Contains(msg, tc.name+"=") || !strings.Contains(msg, tc.value) || !strings.Contains(msg, tc.want) {
				t.Fatalf("message %q should name %s, the value %q and %q", msg, tc.name, tc.value, tc.want)
			}
		})
	}
}

func TestRegistryTypeAutoDetectsECR(t *testing.T) {
	for _, v := range Vars("image") {
		t.Setenv(v.Name, "")
	}
	t.Setenv(Registry, "123456789012.dkr.ecr.eu-west-1.amazonaws.com")
	c, err := LoadImage()
	if err != nil {
		t.Fatal(err)
	}
	if c.RegistryType != "ecr" {
		t.Fatalf("type %q, want ecr", c.RegistryType)
	}
}

func TestParseECRHost(t *testing.T) {
	cases := []struct {
		host, account, region string
		ok                    bool
	}{
		{"123456789012.dkr.ecr.eu-west-1.amazonaws.com", "123456789012", "eu-west-1", true},
		{"123456789012.dkr.ecr-fips.us-east-1.amazonaws.com", "123456789012", "us-east-1", true},
		{"123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn", "123456789012", "cn-north-1", true},
		{"12345.dkr.ecr.eu-west-1.amazonaws.com", "", "", false},
		{"123456789012.dkr.ecr.eu-west-1.amazonaws.com.evil.io", "", "", false},
		{"127.0.0.1:5000", "", "", false},
		{"public.ecr.aws", "", "", false},
	}
	for _, tc := range cases {
		a, r, ok := ParseECRHost(tc.host)
		if a != tc.account || r != tc.region || ok != tc.ok {
			t.Errorf("ParseECRHost(%q) = %q, %q, %v; want %q, %q, %v", tc.host, a, r, ok, tc.account, tc.region, tc.ok)
		}
	}
}

func TestSecretsNeverPrinted(t *testing.T) {
	t.Setenv("E2E_TEST_TOKEN", "hunter2")
	t.Setenv("MY_PASSWORD", "s3cret")
	t.Setenv(SecretVars, "MY_PASSWORD")
	var b strings.Builder
	Print(&b)
	out := b.String()
	if strings.Contains(out, "hunter2") || strings.Contains(out, "s3cret") {
		t.Fatalf("secret printed:\n%s", out)
	}
	if !strings.Contains(out, "E2E_TEST_TOKEN") || !strings.Contains(out, "MY_PASSWORD") {
		t.Fatalf("secret names should be listed:\n%s", out)
	}
	if !IsSecret("E2E_TEST_TOKEN") || !IsSecret("MY_PASSWORD") || IsSecret("HOME") {
		t.Fatal("IsSecret wrong")
	}
}
