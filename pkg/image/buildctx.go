package image

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"
)

// file is one entry of a build context: a regular file (Src on disk or
// Data in memory) or a directory.
type file struct {
	Name string // path inside the context, slash-separated
	Mode int64
	Dir  bool
	Data []byte // in-memory content
	Src  string // or a file on disk, streamed when the tar is written
	// CacheSum keeps Src's digest in Src+".sum", reused while Src's
	// identity (fileID: size, mode, modification and change time, inode)
	// is unchanged: a binary the pipeline did not recompile.
	CacheSum bool
}

// buildContext is the exact set of files sent to the Docker Engine. Its
// Digest covers every byte and mode, so a tag made from it changes exactly
// when the image would.
type buildContext struct {
	files []file
}

func (c *buildContext) add(f file) { c.files = append(c.files, f) }

func (c *buildContext) sorted() []file {
	out := append([]file(nil), c.files...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Digest hashes the context together with extra inputs (base image, build
// arguments, platform) that change the image without being files.
func (c *buildContext) Digest(extra ...string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "testship-image-v1\n")
	for _, e := range extra {
		fmt.Fprintf(h, "extra %q\n", e)
	}
	for _, f := range c.sorted() {
		if f.Dir {
			fmt.Fprintf(h, "dir %q %o\n", f.Name, f.Mode)
			continue
		}
		sum, err := f.sum()
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "file %q %o %s\n", f.Name, f.Mode, sum)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func (f file) sum() (string, error) {
	h := sha256.New()
	if f.Src == "" {
		h.Write(f.Data)
		return hex.EncodeToString(h.Sum(nil)), nil
	}
	r, err := os.Open(f.Src)
	if err != nil {
		return "", err
	}
	defer r.Close()
	var key string
	if f.CacheSum {
		if st, err := r.Stat(); err == nil {
			key = fileID(st) + " "
			if b, err := os.ReadFile(f.Src + ".sum"); err == nil && strings.HasPrefix(string(b), key) && len(b) == len(key)+64 {
				return string(b[len(key):]), nil
			}
		}
	}
	if _, err := io.Copy(h, r); err != nil {
		return "", fmt.Errorf("read %s: %w", f.Src, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if key != "" {
		_ = os.WriteFile(f.Src+".sum", []byte(key+sum), 0o644) // a cache: a failed write costs a re-hash
	}
	return sum, nil
}

// Tar streams the context as the tar archive the Engine API expects.
// Timestamps are fixed so the same inputs give the same layers.
func (c *buildContext) Tar(w io.Writer) error {
	tw := tar.NewWriter(w)
	epoch := time.Unix(0, 0)
	for _, f := range c.sorted() {
		hdr := &tar.Header{Name: f.Name, Mode: f.Mode, ModTime: epoch, Format: tar.FormatPAX}
		if f.Dir {
			hdr.Typeflag = tar.TypeDir
			hdr.Name += "/"
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			continue
		}
		hdr.Typeflag = tar.TypeReg
		var r io.Reader = bytes.NewReader(f.Data)
		hdr.Size = int64(len(f.Data))
		if f.Src != "" {
			fh, err := os.Open(f.Src)
			if err != nil {
				return err
			}
			defer fh.Close()
			st, err := fh.Stat()
			if err != nil {
				return err
			}
			hdr.Size, r = st.Size(), fh
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := io.Copy(tw, r); err != nil {
			return fmt.Errorf("write %s into the build context: %w", f.Name, err)
		}
	}
	return tw.Close()
}
