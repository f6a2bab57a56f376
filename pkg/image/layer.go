package image

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/stream"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// BinaryPath is where test and app images hold their binary; the base's
// ENTRYPOINT runs it.
const BinaryPath = "/testship/run"

// Layer compressions of the direct builder.
const (
	Gzip = "gzip"
	Zstd = "zstd"
)

// pgzipBlock is the parallel gzip block size. The compressed bytes depend
// on it (each block is compressed on its own), never on the number of cores,
// so it is fixed: the same binary gives the same layer digest everywhere.
const pgzipBlock = 1 << 20

// writeBinaryTar writes the layer holding the binary at /testship/run as an
// uncompressed tar: the directory testship/ and the file, root-owned, mode
// 0755, mtime the Unix epoch, no user or group names, so the same binary
// always gives the same bytes. It is what `COPY run /testship/run` in
// images/test/Dockerfile adds.
func writeBinaryTar(w io.Writer, bin string) error {
	f, err := os.Open(bin)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	epoch := time.Unix(0, 0)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "testship/", Mode: 0o755, ModTime: epoch, Format: tar.FormatPAX}); err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "testship/run", Mode: 0o755, Size: st.Size(), ModTime: epoch, Format: tar.FormatPAX}); err != nil {
		return err
	}
	if _, err := io.Copy(tw, f); err != nil {
		return fmt.Errorf("read %s: %w", bin, err)
	}
	return tw.Close()
}

// newCompressor returns a writer compressing into w with every core.
func newCompressor(w io.Writer, compression string) (io.WriteCloser, error) {
	switch compression {
	case Zstd:
		// The encoder's output does not depend on its concurrency.
		return zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(runtime.NumCPU()))
	default:
		z, err := pgzip.NewWriterLevel(w, pgzip.BestSpeed)
		if err != nil {
			return nil, err
		}
		if err := z.SetConcurrency(pgzipBlock, 2*runtime.NumCPU()); err != nil {
			return nil, err
		}
		return z, nil
	}
}

// binaryLayer is the layer of one binary, tarred and compressed once, while
// it is uploaded: its digests are known once the upload has read it all
// (like go-containerregistry's stream.Layer, whose errors it returns so
// remote.Write and mutate treat it the same, but compressing on every
// core). Uncompressed re-reads the file.
type binaryLayer struct {
	bin         string
	compression string

	mu       sync.Mutex
	consumed bool
	digest   *v1.Hash
	diffID   *v1.Hash
	size     int64
}

var _ v1.Layer = (*binaryLayer)(nil)

func newBinaryLayer(bin, compression string) *binaryLayer {
	return &binaryLayer{bin: bin, compression: compression}
}

func (l *binaryLayer) Digest() (v1.Hash, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.digest == nil {
		return v1.Hash{}, stream.ErrNotComputed
	}
	return *l.digest, nil
}

func (l *binaryLayer) DiffID() (v1.Hash, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.diffID == nil {
		return v1.Hash{}, stream.ErrNotComputed
	}
	return *l.diffID, nil
}

func (l *binaryLayer) Size() (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.digest == nil {
		return 0, stream.ErrNotComputed
	}
	return l.size, nil
}

func (l *binaryLayer) MediaType() (types.MediaType, error) {
	if l.compression == Zstd {
		return types.OCILayerZStd, nil
	}
	return types.DockerLayer, nil
}

func (l *binaryLayer) Uncompressed() (io.ReadCloser, error) {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeBinaryTar(pw, l.bin)) }()
	return pr, nil
}

// Compressed streams the compressed layer; the digests are set when the
// stream has been read to the end and closed.
func (l *binaryLayer) Compressed() (io.ReadCloser, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.consumed {
		return nil, stream.ErrConsumed
	}
	l.consumed = true
	pr, pw := io.Pipe()
	diff, comp, n := sha256.New(), sha256.New(), &countWriter{}
	z, err := newCompressor(io.MultiWriter(pw, comp, n), l.compression)
	if err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() {
		err := writeBinaryTar(io.MultiWriter(diff, z), l.bin)
		if cerr := z.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = l.finalize(diff, comp, n.n)
		}
		done <- err
		pw.CloseWithError(err)
	}()
	return &layerReader{PipeReader: pr, done: done}, nil
}

func (l *binaryLayer) finalize(diff, comp hash.Hash, size int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	d, err := v1.NewHash("sha256:" + hex.EncodeToString(diff.Sum(nil)))
	if err != nil {
		return err
	}
	c, err := v1.NewHash("sha256:" + hex.EncodeToString(comp.Sum(nil)))
	if err != nil {
		return err
	}
	l.diffID, l.digest, l.size = &d, &c, size
	return nil
}

// layerReader waits, on Close, for the compressor to finish, so the
// digests are set once the reader is closed.
type layerReader struct {
	*io.PipeReader
	done chan error
	once sync.Once
	err  error
}

func (r *layerReader) Close() error {
	r.once.Do(func() {
		// A reader closed early stops the writer.
		r.PipeReader.CloseWithError(errors.New("layer upload stopped"))
		r.err = <-r.done
	})
	return r.err
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }
