package config

import (
	"errors"
	"strings"
	"testing"
)

func TestLoadDev(t *testing.T) {
	t.Setenv(DevDir, "")
	t.Setenv(CacheDir, "")
	t.Setenv(DevNodeIP, "")
	t.Setenv(DevWipe, "")
	d, err := LoadDev()
	if err != nil || d.Dir != "/var/lib/testship/dev" || d.CacheDir != "/var/cache/testship" || d.Wipe {
		t.Fatalf("defaults: %+v, %v", d, err)
	}
	t.Setenv(DevWipe, "yes")
	if d, _ := LoadDev(); !d.Wipe {
		t.Error("DEV_WIPE=yes not read as true")
	}
	for _, c := range []struct{ name, value, want string }{
		{DevDir, "relative/dir", "absolute"},
		{DevDir, "/" + strings.Repeat("x", 70), "at most 60"},
		{CacheDir, "cache", "absolute"},
		{DevNodeIP, "127.0.0.1", "non-loopback IPv4"},
		{DevNodeIP, "not-an-ip", "non-loopback IPv4"},
		{DevWipe, "maybe", "true or false"},
	} {
		t.Run(c.name+"="+c.value, func(t *testing.T) {
			t.Setenv(DevWipe, "")
			t.Setenv(c.name, c.value)
			_, err := LoadDev()
			var ce *Error
			if !errors.As(err, &ce) || ce.Name != c.name || !strings.Contains(err.Error(), c.want) {
				t.Errorf("LoadDev with %s=%q: %v; want a config error naming %s and %q", c.name, c.value, err, c.name, c.want)
			}
		})
	}
}
