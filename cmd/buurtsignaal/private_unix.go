//go:build unix

package main

import "syscall"

// umaskPrivate makes what the process creates from now on readable by its
// own user only (files 0600, directories 0700), whatever the umask it was
// started with.
func umaskPrivate() { syscall.Umask(0o077) }
