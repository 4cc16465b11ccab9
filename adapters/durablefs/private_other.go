//go:build !unix

package durablefs

import "github.com/cockroachdb/pebble/v2/vfs"

// private: no file modes to set outside Unix.
func private(vfs.File) error { return nil }
