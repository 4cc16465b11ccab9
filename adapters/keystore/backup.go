package keystore

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/cockroachdb/pebble/v2"
	"github.com/google/uuid"
)

// Checkpoint writes a consistent copy of the key store into dir, which must
// not exist, while the store serves (hard links to its tables and a copy of
// its flushed write-ahead log). A restored copy brings back the keys of
// subjects erased since: RecordErased keeps the list that ShredErased
// applies to it.
func (s *Store) Checkpoint(dir string) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.life.RUnlock()
	if err := s.db.Checkpoint(dir, pebble.WithFlushedWAL()); err != nil {
		return classify(err)
	}
	return nil
}

// RecordErased appends a subject id to the erased-subjects file at path and
// syncs it, before the subject's key is shredded. The file holds
// pseudonymous ids only, one per line. It lives next to the backed-up data,
// never inside it, so that no restore of an older backup can roll it back;
// ShredErased applies it.
func RecordErased(path string, subject uuid.UUID) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return classify(err)
	}
	_, werr := f.WriteString(subject.String() + "\n")
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return classify(err)
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
		return nil, classify(err)
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
			return nil, fmt.Errorf("keystore: erased-subjects file %s: %d bad lines before its end", path, len(bad))
		}
		ids = append(ids, id)
	}
	if err := sc.Err(); err != nil {
		return nil, classify(err)
	}
	if len(bad) > 1 {
		return nil, fmt.Errorf("keystore: erased-subjects file %s: %d bad lines", path, len(bad))
	}
	return ids, nil
}

// ShredErased shreds every subject the erased-subjects file at path lists
// that still has a key here (after a restore, or an erasure cut short by a
// crash between recording and shredding). It returns how many it shredded.
func (s *Store) ShredErased(ctx context.Context, path string) (int, error) {
	ids, err := ReadErased(path)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		erased, err := s.Erased(ctx, id)
		if err != nil {
			return n, err
		}
		if erased {
			continue
		}
		if err := s.Shred(ctx, id); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
