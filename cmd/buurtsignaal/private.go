package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// privateFiles keeps the server's data to its own user: the umask for what
// it creates from now on, and whatever already is under the paths (data
// directory, erased-subjects file, master key, notification secret, backups)
// tightened to 0600 for files and 0700 for directories. A path that does
// not exist is skipped.
func privateFiles(paths ...string) error {
	umaskPrivate()
	var errs []error
	for _, root := range paths {
		if root == "" {
			continue
		}
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err != nil {
				return err
			}
			if d.Type()&fs.ModeSymlink != 0 || d.Type()&fs.ModeSocket != 0 {
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			want := fs.FileMode(0o600)
			if d.IsDir() {
				want = 0o700
			}
			if perm := info.Mode().Perm(); perm&^want != 0 {
				return os.Chmod(path, perm&want)
			}
			return nil
		})
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
