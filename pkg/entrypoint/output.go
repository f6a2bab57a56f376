package entrypoint

import (
	"bytes"
	"fmt"
	"io"
	"sync"

	"github.com/testship/testship/pkg/testlog"
)

// output is the container's stdout: everything written goes there, is
// counted (testlog.Counter) and parsed line by line (testlog.Summary).
type output struct {
	mu      sync.Mutex
	w       io.Writer
	werr    error // the first write error; output is still counted
	counter *testlog.Counter
	summary testlog.Summary
	line    []byte // the current line, up to maxLine bytes
	long    bool   // the current line is longer than a result line can be
	midLine bool   // the last byte written was not a newline
}

// maxLine bounds the bytes kept of a line: Summary ignores longer lines.
const maxLine = 4096

func newOutput(w io.Writer) *output { return &output{w: w, counter: testlog.NewCounter()} }

// Write copies the binary's output; it never fails, so the binary is never
// blocked by a broken stdout.
func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.write(p)
	return len(p), nil
}

func (o *output) write(p []byte) {
	if len(p) == 0 {
		return
	}
	o.midLine = p[len(p)-1] != '\n'
	if o.werr == nil {
		_, o.werr = o.w.Write(p)
	}
	o.counter.Write(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		chunk := p
		if i >= 0 {
			chunk = p[:i+1]
		}
		if !o.long && len(o.line)+len(chunk) <= maxLine+1 {
			o.line = append(o.line, chunk...)
		} else {
			o.long, o.line = true, o.line[:0]
		}
		if i < 0 {
			break
		}
		if !o.long {
			o.summary.Observe(o.line)
		}
		o.line, o.long = o.line[:0], false
		p = p[i+1:]
	}
}

// Linef writes one line of the entrypoint's own, starting a new line
// first if the binary left one unfinished.
func (o *output) Linef(format string, args ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	s := fmt.Sprintf(format, args...) + "\n"
	if o.midLine {
		s = "\n" + s
	}
	o.write([]byte(s))
}

// Fill sets the record's output fields: lines, bytes, digest and the
// test counts (an unfinished last line is parsed too).
func (o *output) Fill(rec *testlog.Record) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.line) > 0 && !o.long {
		o.summary.Observe(o.line)
		o.line = o.line[:0]
	}
	rec.Lines, rec.Bytes, rec.SHA256 = o.counter.Lines(), o.counter.Bytes(), o.counter.Sum()
	rec.Pass, rec.Fail, rec.Skip = len(o.summary.Passed), len(o.summary.Failed), len(o.summary.Skipped)
	rec.Failed = o.summary.FailedTop()
}
