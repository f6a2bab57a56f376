package gha

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

// verbose is `go test -v` output of a test binary, as the remote runner
// records it.
const verbose = `=== RUN   TestOK
--- PASS: TestOK (0.50s)
=== RUN   TestLink
=== RUN   TestLink/resolve
    link_test.go:42: GET /abc: got 404, want 302
        body: not found
    link_test.go:43: 100% of 3 replicas failed
=== RUN   TestLink/stats
--- FAIL: TestLink (2.25s)
    --- FAIL: TestLink/resolve (1.25s)
    --- PASS: TestLink/stats (1.00s)
=== RUN   TestSkip
    skip_test.go:9: needs a GPU
--- SKIP: TestSkip (0.00s)
=== RUN   TestPanic
--- FAIL: TestPanic (0.10s)
panic: boom [recovered]
	panic: boom
FAIL
FAIL	./tests/link	4.000s
`

// events converts the verbose output with the toolchain's test2json, as
// the runner's Recorder does.
func events(t *testing.T, out string) []byte {
	t.Helper()
	cmd := exec.Command("go", "tool", "test2json", "-p", "./tests/link")
	cmd.Stdin = strings.NewReader(out)
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("go tool test2json: %v", err)
	}
	return b
}

func TestParseEventsCountsAndAnnotations(t *testing.T) {
	rep, err := ParseEvents(bytes.NewReader(events(t, verbose)))
	if err != nil {
		t.Fatal(err)
	}
	p, f, s := rep.Count()
	if p != 2 || f != 3 || s != 1 {
		t.Errorf("passed, failed, skipped = %d, %d, %d; want 2, 3, 1", p, f, s)
	}
	var failed []string
	for _, r := range rep.Failed() {
		failed = append(failed, r.Name)
	}
	if got := strings.Join(failed, ","); got != "TestLink/resolve,TestPanic" {
		t.Errorf("Failed = %s, want TestLink/resolve,TestPanic (not the parent TestLink)", got)
	}
	anns := rep.Annotations(func(file string) string {
		if file == "link_test.go" {
			return "tests/link/link_test.go"
		}
		return ""
	})
	if len(anns) != 3 {
		t.Fatalf("%d annotations, want 3: %+v", len(anns), anns)
	}
	if a := anns[0]; a.File != "tests/link/link_test.go" || a.Line != 42 || a.Title != "TestLink/resolve" || a.Message != "GET /abc: got 404, want 302\nbody: not found" {
		t.Errorf("first annotation = %+v", a)
	}
	if got, want := anns[1].String(), "::error file=tests/link/link_test.go,line=43,title=TestLink/resolve::100%25 of 3 replicas failed"; got != want {
		t.Errorf("second annotation = %s, want %s", got, want)
	}
	if a := anns[2]; a.File != "" || a.Title != "TestPanic" || !strings.Contains(a.Message, "panic: boom") {
		t.Errorf("a failure without a file:line gets one annotation naming the test with its output; got %+v", a)
	}
	sl := rep.Slowest(2)
	if len(sl) != 2 || sl[0].Name != "TestLink" || sl[1].Name != "TestLink/resolve" {
		t.Errorf("Slowest(2) = %v, %v", sl[0].Name, sl[1].Name)
	}
	md := rep.Markdown("Tests", 3)
	for _, want := range []string{"| 2 | 3 | 1 |", "- `TestLink/resolve` (1.25s)", "| `TestLink` | fail | 2.25s |"} {
		if !strings.Contains(md, want) {
			t.Errorf("summary lacks %q:\n%s", want, md)
		}
	}
}

func TestAnnotationEscaping(t *testing.T) {
	a := Annotation{File: "a,b:c.go", Line: 7, Title: "T/x,y", Message: "50% done\r\nnext: line"}
	want := "::error file=a%2Cb%3Ac.go,line=7,title=T/x%2Cy::50%25 done%0D%0Anext: line"
	if got := a.String(); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if got := (Annotation{Message: "m"}).String(); got != "::error::m" {
		t.Errorf("bare annotation = %s", got)
	}
}

func TestWriteAnnotationsLimit(t *testing.T) {
	var anns []Annotation
	for i := 0; i < 14; i++ {
		anns = append(anns, Annotation{Message: fmt.Sprint("failure ", i)})
	}
	var out bytes.Buffer
	WriteAnnotations(&out, anns)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != MaxErrorAnnotations {
		t.Fatalf("%d annotations written, want GitHub's limit %d", len(lines), MaxErrorAnnotations)
	}
	if !strings.Contains(lines[9], "5 more failure(s) not annotated") {
		t.Errorf("last line = %s, want a note of the 5 left out", lines[9])
	}
	if anns[9].Message != "failure 9" {
		t.Errorf("WriteAnnotations changed its argument: %+v", anns[9])
	}
	out.Reset()
	WriteAnnotations(&out, anns[:3])
	if n := strings.Count(out.String(), "::error"); n != 3 {
		t.Errorf("%d annotations for 3 failures", n)
	}
}
