package gha

import (
	"fmt"
	"io"
	"strings"
)

// MaxErrorAnnotations is how many error annotations GitHub shows per step;
// it drops the rest.
const MaxErrorAnnotations = 10

// Annotation is an ::error workflow command: GitHub shows it on the run's
// page and, when File is part of the pull request's diff, on that line.
type Annotation struct {
	File  string // repository-relative path; "" for none
	Line  int    // 0 for none
	Title string
	// Message may span lines.
	Message string
}

// String is the workflow command, escaped per GitHub's rules.
func (a Annotation) String() string {
	var props []string
	if a.File != "" {
		props = append(props, "file="+EscapeProperty(a.File))
		if a.Line > 0 {
			props = append(props, fmt.Sprintf("line=%d", a.Line))
		}
	}
	if a.Title != "" {
		props = append(props, "title="+EscapeProperty(a.Title))
	}
	cmd := "::error"
	if len(props) > 0 {
		cmd += " " + strings.Join(props, ",")
	}
	return cmd + "::" + EscapeData(a.Message)
}

// EscapeData escapes a workflow command's message: %, \r and \n.
func EscapeData(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

// EscapeProperty escapes a workflow command's property value: as
// EscapeData, plus : and ,.
func EscapeProperty(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(s)
}

// WriteAnnotations writes at most MaxErrorAnnotations annotations to w (the
// step's standard output), one per line; when there are more it says how
// many were left out in the last one's place, so nothing is silently lost.
func WriteAnnotations(w io.Writer, anns []Annotation) {
	if len(anns) > MaxErrorAnnotations {
		more := len(anns) - (MaxErrorAnnotations - 1)
		anns = append(anns[:MaxErrorAnnotations-1:MaxErrorAnnotations-1], Annotation{
			Title:   "more test failures",
			Message: fmt.Sprintf("%d more failure(s) not annotated (GitHub shows %d per step): see the job summary and the report artifact", more, MaxErrorAnnotations),
		})
	}
	for _, a := range anns {
		fmt.Fprintln(w, a.String())
	}
}
