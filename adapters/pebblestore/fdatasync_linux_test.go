package pebblestore

import (
	"os"
	"syscall"
)

// fdatasync makes a file's data durable, without its unneeded metadata.
func fdatasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }
