//go:build !unix

package main

// umaskPrivate: no umask outside Unix; privateFiles tightens what exists.
func umaskPrivate() {}
