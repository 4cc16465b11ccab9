//go:build unix

package durablefs

import (
	"syscall"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// private makes a file the operating system holds readable and writable by
// its owner only (0600), whatever the process's umask; a file without a
// descriptor (in memory) has no mode to set.
func private(f vfs.File) error {
	fd := f.Fd()
	if fd == vfs.InvalidFd {
		return nil
	}
	return syscall.Fchmod(int(fd), 0o600)
}
