package subjectkeys

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/adapters/durablefs"
	"github.com/buurtsignaal/buurtsignaal/domain"
)

func fileError(err error) error {
	if errors.Is(err, syscall.ENOSPC) {
		return domain.Wrap(domain.KindUnavailable, "erased_file_full", "the erased-subjects file's disk is full", err)
	}
	return domain.Wrap(domain.KindInternal, "erased_file", "the erased-subjects file cannot be used", err)
}

// appendMu serialises RecordErased in this process: a vfs.FS has no
// O_APPEND, so an append is a write at the file's end, and two at once
// would write over each other. (One process writes a file: the key store
// it goes with is locked to one process.)
var appendMu sync.Mutex

// RecordErased appends a subject id to the erased-subjects file at path on
// fs (nil: the operating system's) and makes it durable before it returns,
// before the subject's key is erased: the file is synced, and so is its
// directory, which holds the file's entry when this append created it (an
// append to a file an earlier process created, whose directory entry that
// process may not have synced, needs it too; it costs one more sync per
// erasure). The file holds pseudonymous ids only, one per line. It lives
// apart from the backed-up data, never inside it, so that no restore of an
// older backup can roll it back; the key stores' ShredErased apply it.
//
// A last line left torn by a crash (an erasure that was never acknowledged)
// is dropped first: the file is written anew without it (to a temporary
// file, synced, renamed over it, the directory synced), so that no torn
// line ever ends up before the end.
func RecordErased(fs vfs.FS, path string, subject uuid.UUID) error {
	if fs == nil {
		fs = vfs.Default
	}
	appendMu.Lock()
	defer appendMu.Unlock()
	line := []byte(subject.String() + "\n")
	f, err := fs.OpenReadWrite(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return fileError(err)
	}
	whole, size, err := endsWhole(f)
	if err == nil && !whole {
		_ = f.Close()
		return rewriteErased(fs, path, subject)
	}
	if err == nil {
		_, err = f.WriteAt(line, size)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = durablefs.SyncDir(fs, fs.PathDir(path))
	}
	if err != nil {
		return fileError(err)
	}
	return nil
}

// endsWhole reports whether the file is empty or ends with a whole line
// that is an id (or blank), and its size.
func endsWhole(f vfs.File) (bool, int64, error) {
	st, err := f.Stat()
	if err != nil {
		return false, 0, err
	}
	size := st.Size()
	if size == 0 {
		return true, 0, nil
	}
	const window = 128 // more than any line the file should hold
	n := min(size, window)
	tail := make([]byte, n)
	if _, err := f.ReadAt(tail, size-n); err != nil && !errors.Is(err, io.EOF) {
		return false, size, err
	}
	if tail[n-1] != '\n' {
		return false, size, nil
	}
	last := tail[:n-1]
	i := bytes.LastIndexByte(last, '\n')
	if i < 0 && size > window {
		return false, size, nil // the last line is longer than any id
	}
	last = bytes.TrimSpace(last[i+1:])
	if len(last) == 0 {
		return true, size, nil
	}
	_, err = uuid.ParseBytes(last)
	return err == nil, size, nil
}

// rewriteErased writes the file at path anew with the ids it holds (its
// torn last line dropped) and subject, durably: a temporary file, synced,
// renamed over it, the directory synced.
func rewriteErased(fs vfs.FS, path string, subject uuid.UUID) error {
	ids, err := ReadErased(fs, path)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	for _, id := range append(ids, subject) {
		b.WriteString(id.String())
		b.WriteByte('\n')
	}
	if err := durablefs.WriteFile(fs, path, b.Bytes()); err != nil {
		return fileError(err)
	}
	return nil
}

// ReadErased reads the erased-subjects file at path on fs (nil: the
// operating system's); a missing file is an empty list. A torn last line (a
// crash during RecordErased, whose erasure was then never acknowledged) is
// skipped; any other bad line is an error.
func ReadErased(fs vfs.FS, path string) ([]uuid.UUID, error) {
	if fs == nil {
		fs = vfs.Default
	}
	f, err := fs.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fileError(err)
	}
	defer f.Close()
	var ids []uuid.UUID
	sc := bufio.NewScanner(f)
	var bad []string
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		id, err := uuid.Parse(line)
		if err != nil {
			bad = append(bad, line)
			continue
		}
		if len(bad) > 0 {
			return nil, fmt.Errorf("erased-subjects file %s: %d bad lines before its end", path, len(bad))
		}
		ids = append(ids, id)
	}
	if err := sc.Err(); err != nil {
		return nil, fileError(err)
	}
	if len(bad) > 1 {
		return nil, fmt.Errorf("erased-subjects file %s: %d bad lines", path, len(bad))
	}
	return ids, nil
}
