package subjectkeys

import "sync"

// Life admits a key store's operations until the store closes: each
// operation holds it shared, from Enter to Exit, and Close takes it alone,
// so a store closes once the operations under way are done, and none starts
// after. The zero value is open.
type Life struct {
	mu     sync.RWMutex
	closed bool
}

// Enter admits an operation, which calls Exit when it is done (usually
// deferred); after Close it fails with ErrClosed.
func (l *Life) Enter() error {
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return ErrClosed
	}
	return nil
}

// Exit ends an operation Enter admitted.
func (l *Life) Exit() { l.mu.RUnlock() }

// Close waits for the operations under way, then, the first time only, runs
// release (the store's own closing) and returns its error; later calls
// return nil.
func (l *Life) Close(release func() error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	return release()
}
