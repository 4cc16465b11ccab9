//go:build !linux

package pebblestore

import "os"

// fdatasync makes a file's data durable: fsync where fdatasync is missing.
func fdatasync(f *os.File) error { return f.Sync() }
