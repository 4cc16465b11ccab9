package subjectkeys

import (
	"errors"
	"testing"
	"time"
)

// Close waits for an operation under way and releases the store once;
// operations after it fail with ErrClosed.
func TestLife(t *testing.T) {
	var l Life
	if err := l.Enter(); err != nil {
		t.Fatal(err)
	}
	released := make(chan struct{})
	closed := make(chan error, 1)
	go func() {
		closed <- l.Close(func() error { close(released); return errors.New("release") })
	}()
	select {
	case <-released:
		t.Fatal("released while an operation was under way")
	case <-time.After(50 * time.Millisecond):
	}
	l.Exit()
	if err := <-closed; err == nil || err.Error() != "release" {
		t.Fatalf("Close = %v, want the release's error", err)
	}
	if err := l.Close(func() error { t.Fatal("released twice"); return nil }); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	if err := l.Enter(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Enter after Close = %v, want ErrClosed", err)
	}
}
