// Package durablefs writes files that must survive a power cut, on a
// vfs.FS (Pebble's file system interface: the operating system's in
// production, a crashable in-memory one in the power-loss tests). What a
// write returns from is on stable storage: the file's bytes and its entry in
// its directory. It is a library, not an adapter (TestTheHouse knows it):
// the adapters and the command share it.
//
// A crash keeps a file's bytes only once the file was synced, and a new,
// renamed or removed name only once its directory was synced; until then
// either may come back as it was, or half written. So:
//
//   - WriteFile replaces a file whole: a temporary file beside it, synced,
//     renamed over it, the directory synced;
//   - CreateFile makes a file that must not be replaced (a key): the same,
//     but linked into place, which fails when the file exists;
//   - MkdirAll makes a directory and syncs the parent of every directory it
//     made;
//   - SyncDir makes a directory's entries durable.
package durablefs

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// WriteFile writes data to the file at path on fsys so that a crash, or a
// power cut, leaves either the old file or the new one, whole, and the new
// one once it returns. The file's mode is 0600. data may be changed by the
// write (a vfs.File may do so).
func WriteFile(fsys vfs.FS, path string, data []byte) error {
	tmp, err := tempName(path)
	if err != nil {
		return err
	}
	if err := writeSynced(fsys, tmp, data); err != nil {
		_ = fsys.Remove(tmp)
		return err
	}
	if err := fsys.Rename(tmp, path); err != nil {
		_ = fsys.Remove(tmp)
		return err
	}
	return SyncDir(fsys, fsys.PathDir(path))
}

// CreateFile writes data to a new file at path on fsys (mode 0600), durably
// and whole,
// unless a file is there already: then it leaves that file as it is and
// returns an error satisfying errors.Is(err, os.ErrExist). Two processes
// creating the file at once leave one of them whole.
func CreateFile(fsys vfs.FS, path string, data []byte) error {
	tmp, err := tempName(path)
	if err != nil {
		return err
	}
	if err := writeSynced(fsys, tmp, data); err != nil {
		_ = fsys.Remove(tmp)
		return err
	}
	lerr := fsys.Link(tmp, path) // os.ErrExist when another was first
	// The temporary name goes, for good (it may name a secret), and the
	// directory sync keeps what is at path.
	if err := errors.Join(fsys.Remove(tmp), SyncDir(fsys, fsys.PathDir(path))); err != nil {
		return errors.Join(lerr, err)
	}
	return lerr
}

// MkdirAll makes the directory dir and its missing parents on fsys, and
// syncs the parent of each directory it made, so they stay after a power
// cut. A directory that exists is fine (and its entry is synced again: an
// earlier process may have made it without).
func MkdirAll(fsys vfs.FS, dir string) error {
	var parents []string // from dir's parent up to the closest that existed
	for p := fsys.PathDir(dir); ; p = fsys.PathDir(p) {
		parents = append(parents, p)
		if fsys.PathDir(p) == p {
			break
		}
		if _, err := fsys.Stat(p); err == nil {
			break
		} else if !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	if err := fsys.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for _, p := range parents {
		if err := SyncDir(fsys, p); err != nil {
			return err
		}
	}
	return nil
}

// SyncDir syncs the directory dir on fsys: the entries made, renamed or
// removed in it become durable.
func SyncDir(fsys vfs.FS, dir string) error {
	d, err := fsys.OpenDir(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}

// writeSynced creates the file at path (replacing one there), mode 0600,
// with data and syncs it.
func writeSynced(fsys vfs.FS, path string, data []byte) error {
	f, err := fsys.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	if err := private(f); err != nil {
		return errors.Join(err, f.Close())
	}
	_, werr := f.Write(data)
	return errors.Join(werr, f.Sync(), f.Close())
}

// tempName is a name beside path that no other writer picks.
func tempName(path string) (string, error) {
	var r [8]byte
	if _, err := rand.Read(r[:]); err != nil {
		return "", err
	}
	return path + ".tmp-" + hex.EncodeToString(r[:]), nil
}
