package kurrenttest

import (
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// LeakCheckedMain runs the tests of a package that talks to the test server
// through the KurrentDB client, then checks that no goroutine outlives
// them (goleak, with opts). A call abandoned at its deadline while the
// client connects ends only when the client gives up, which on a loaded
// machine takes longer than goleak's own retries: it waits up to 10 s for
// such goroutines to end before it calls any a leak. Call it from TestMain.
func LeakCheckedMain(m *testing.M, opts ...goleak.Option) {
	code := m.Run()
	if code == 0 {
		err := goleak.Find(opts...)
		for deadline := time.Now().Add(10 * time.Second); err != nil && time.Now().Before(deadline); err = goleak.Find(opts...) {
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
