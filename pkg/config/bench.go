package config

import (
	"regexp"
	"strings"
	"time"
)

// Variables of `mage bench` (area "bench").
var (
	BenchTime = Declare(Var{Name: "BENCH_TIME", Default: "5x", Area: "bench",
		Help: "mage bench: go test -benchtime, a count such as 5x or a duration such as 10s"})
	BenchTestPackage = Declare(Var{Name: "BENCH_TEST_PACKAGE", Default: "./tests/link", Area: "bench",
		Help: "mage bench: the Go package the image benchmarks put into the test image"})
)

// Bench is the validated configuration of `mage bench`.
type Bench struct {
	Time        string // -benchtime
	TestPackage string
}

var benchCount = regexp.MustCompile(`^[1-9][0-9]*x$`)

func loadBench(c *checker) Bench {
	b := Bench{Time: Get(BenchTime), TestPackage: Get(BenchTestPackage)}
	if !benchCount.MatchString(b.Time) {
		if d, err := time.ParseDuration(b.Time); err != nil || d <= 0 {
			c.bad(BenchTime, b.Time, "", "a count such as 5x or a positive Go duration such as 10s (go test -benchtime)")
		}
	}
	if strings.HasPrefix(b.TestPackage, "-") || strings.ContainsAny(b.TestPackage, " \t") {
		c.bad(BenchTestPackage, b.TestPackage, "", "a Go package path such as ./tests/link")
	}
	return b
}
