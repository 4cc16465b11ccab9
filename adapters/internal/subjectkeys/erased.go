package subjectkeys

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"

	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

func fileError(err error) error {
	if errors.Is(err, syscall.ENOSPC) {
		return domain.Wrap(domain.KindUnavailable, "erased_file_full", "the erased-subjects file's disk is full", err)
	}
	return domain.Wrap(domain.KindInternal, "erased_file", "the erased-subjects file cannot be used", err)
}

// RecordErased appends a subject id to the erased-subjects file at path and
// syncs it, before the subject's key is erased. The file holds pseudonymous
// ids only, one per line. It lives apart from the backed-up data, never
// inside it, so that no restore of an older backup can roll it back; the
// key stores' ShredErased apply it.
func RecordErased(path string, subject uuid.UUID) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fileError(err)
	}
	_, werr := f.WriteString(subject.String() + "\n")
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return fileError(err)
	}
	return nil
}

// ReadErased reads the erased-subjects file at path; a missing file is an
// empty list. A torn last line (a crash during RecordErased, whose erasure
// was then never acknowledged) is skipped; any other bad line is an error.
func ReadErased(path string) ([]uuid.UUID, error) {
	f, err := os.Open(path)
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
