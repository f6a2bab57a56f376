package testlog

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"strings"
)

// MaxRecord is the most the kubelet keeps of a termination message.
const MaxRecord = 4096

// RecordVersion is the version of the record's format.
const RecordVersion = 1

// Record is what the entrypoint writes to the container's termination
// message when the test binary has exited: the runner compares it with
// what it received, and takes the result from it.
type Record struct {
	V int `json:"v"`
	// Exit is the test binary's exit code (128+signal when it was killed).
	Exit int `json:"exit"`
	// Signal names the signal that ended the binary, if one did.
	Signal string `json:"signal,omitempty"`
	// Lines, Bytes and SHA256 describe the binary's whole output (stdout
	// and stderr, merged as the pod's log has them).
	Lines  int64  `json:"lines"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
	// Pass, Fail and Skip count `--- PASS/FAIL/SKIP` lines (subtests too).
	Pass int `json:"pass"`
	Fail int `json:"fail"`
	Skip int `json:"skip"`
	// Failed names failed tests (FailedTop), as many as fit; Truncated
	// says some were left out.
	Failed    []string `json:"failed,omitempty"`
	Truncated bool     `json:"truncated,omitempty"`
	// Error is set when the entrypoint itself failed (binary not found, …).
	Error string `json:"error,omitempty"`
}

// Encode returns the record as JSON of at most MaxRecord bytes, leaving
// out failed names (and setting Truncated) when they do not fit.
func (r Record) Encode() []byte {
	r.V = RecordVersion
	if len(r.Error) > 1024 {
		r.Error = r.Error[:1024]
	}
	for {
		b, _ := json.Marshal(r)
		if len(b) <= MaxRecord || len(r.Failed) == 0 {
			return b
		}
		r.Failed = r.Failed[:len(r.Failed)-1]
		r.Truncated = true
	}
}

// ParseRecord reads a termination message written by the entrypoint. ok is
// false when msg is not such a record (an older base image, or a message
// written by something else).
func ParseRecord(msg string) (rec Record, ok bool) {
	msg = strings.TrimSpace(msg)
	if !strings.HasPrefix(msg, "{") {
		return Record{}, false
	}
	if err := json.Unmarshal([]byte(msg), &rec); err != nil || rec.V != RecordVersion || rec.SHA256 == "" {
		return Record{}, false
	}
	return rec, true
}

// Counter counts the lines and bytes written to it and digests them; the
// entrypoint feeds it what the binary writes, the runner what it received.
// A last line without a newline counts as a line.
type Counter struct {
	lines, bytes int64
	partial      bool
	h            hash.Hash
}

// NewCounter returns an empty counter.
func NewCounter() *Counter { return &Counter{h: sha256.New()} }

// Write implements io.Writer; it never fails.
func (c *Counter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.h.Write(p)
	c.bytes += int64(len(p))
	n := int64(bytes.Count(p, []byte{'\n'}))
	c.lines += n
	c.partial = p[len(p)-1] != '\n'
	return len(p), nil
}

// Lines is the number of lines so far (a trailing partial line included).
func (c *Counter) Lines() int64 {
	if c.partial {
		return c.lines + 1
	}
	return c.lines
}

// Bytes is the number of bytes so far.
func (c *Counter) Bytes() int64 { return c.bytes }

// Sum is the hex SHA-256 of everything written so far.
func (c *Counter) Sum() string { return hex.EncodeToString(c.h.Sum(nil)) }

// Verify compares what a counter received with a record: "" when they
// match, otherwise what differs.
func (r Record) Verify(c *Counter) string {
	switch {
	case c.Lines() == r.Lines && c.Bytes() == r.Bytes && c.Sum() == r.SHA256:
		return ""
	case c.Lines() < r.Lines:
		return fmt.Sprintf("%d of %d lines lost (%d of %d bytes received)", r.Lines-c.Lines(), r.Lines, c.Bytes(), r.Bytes)
	case c.Lines() == r.Lines && c.Bytes() == r.Bytes:
		return fmt.Sprintf("all %d lines received but their digest differs from the pod's", r.Lines)
	default:
		return fmt.Sprintf("received %d lines (%d bytes), the pod wrote %d lines (%d bytes)", c.Lines(), c.Bytes(), r.Lines, r.Bytes)
	}
}
