// Command crashtest kills a process appending to the embedded store with
// SIGKILL at random moments and checks, after each reopen, that every
// acknowledged event is there exactly once, with gap-free revisions and
// positions. Run: go run ./scripts/crashtest -rounds 20
//
// The parent re-executes itself as a child (-child DIR) that appends from 64
// goroutines, each to its own stream with exact expected revisions (and now
// and then an idempotent retry of its last append) and to shared streams
// with any, and prints one line per acknowledged event; whatever the parent
// reads from the pipe, up to its end after the kill, was acknowledged.
// The last line printed is the summary; the exit status is non-zero on any
// loss or inconsistency.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/adapters/pebblestore"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
)

func main() {
	rounds := flag.Int("rounds", 20, "kill and reopen this many times")
	child := flag.String("child", "", "internal: run as the appending child on this directory")
	writers := flag.Int("writers", 64, "concurrent appenders in the child")
	flag.Parse()
	if *child != "" {
		if err := runChild(*child, *writers); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		return
	}
	acked, lost, err := runParent(*rounds, *writers)
	fmt.Printf("crash rounds: %d, acknowledged: %d, lost: %d\n", *rounds, acked, lost)
	if err != nil || lost > 0 {
		if err != nil {
			fmt.Fprintln(os.Stderr, "crashtest:", err)
		}
		os.Exit(1)
	}
}

// ack is one acknowledged append as the child reports it.
type ack struct {
	stream   string
	rev, pos uint64
	id       uuid.UUID
}

func runChild(dir string, writers int) error {
	s, err := pebblestore.Open(dir, pebblestore.Options{})
	if err != nil {
		return err
	}
	out := bufio.NewWriterSize(os.Stdout, 1<<16)
	var mu sync.Mutex
	report := func(stream string, r eventlog.AppendResult, evs []eventlog.EventData) {
		mu.Lock()
		defer mu.Unlock()
		n := uint64(len(evs))
		for i, e := range evs {
			back := n - 1 - uint64(i)
			fmt.Fprintf(out, "%s %d %d %s\n", stream, r.NextRevision-back, r.Position-back, e.ID)
		}
		if err := out.Flush(); err != nil { // acknowledged to the parent only once written
			os.Exit(3)
		}
	}
	fail := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "child: "+format+"\n", args...)
		os.Exit(2)
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			own := fmt.Sprintf("signal-w%d", w)
			expected := eventlog.NoStream()
			last, err := s.ReadStream(ctx, own, eventlog.Backwards, eventlog.End, 1)
			switch {
			case err == nil:
				expected = eventlog.Revision(last[0].Revision)
			case !errors.Is(err, eventlog.ErrStreamNotFound):
				fail("read %s: %v", own, err)
			}
			for {
				evs := make([]eventlog.EventData, 1+rng.IntN(3))
				for i := range evs {
					evs[i] = eventlog.EventData{ID: uuid.New(), Type: "CrashTested", Data: payload}
				}
				if rng.IntN(4) == 0 {
					stream := fmt.Sprintf("signal-shared%d", rng.IntN(4))
					r, err := s.Append(ctx, stream, eventlog.Any(), evs...)
					if err != nil {
						fail("append to %s: %v", stream, err)
					}
					report(stream, r, evs)
					continue
				}
				r, err := s.Append(ctx, own, expected, evs...)
				if err != nil {
					fail("append to %s at %s: %v", own, expected, err)
				}
				if rng.IntN(8) == 0 { // the caller did not hear the answer and retries
					again, err := s.Append(ctx, own, expected, evs...)
					if err != nil || again != r {
						fail("retry to %s: %+v, %v; first %+v", own, again, err, r)
					}
				}
				report(own, r, evs)
				expected = eventlog.Revision(r.NextRevision)
			}
		}(w)
	}
	wg.Wait()
	return nil
}

var payload = []byte(`{"payload":"` + strings.Repeat("x", 200) + `"}`)

func runParent(rounds, writers int) (acked, lost int, err error) {
	dir, err := os.MkdirTemp("", "buurtsignaal-crashtest-")
	if err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(dir)
	self, err := os.Executable()
	if err != nil {
		return 0, 0, err
	}
	all := map[uuid.UUID]ack{}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	for round := 1; round <= rounds; round++ {
		cmd := exec.Command(self, "-child", dir, "-writers", strconv.Itoa(writers))
		cmd.Stderr = os.Stderr
		pipe, err := cmd.StdoutPipe()
		if err != nil {
			return acked, lost, err
		}
		if err := cmd.Start(); err != nil {
			return acked, lost, err
		}
		lines := make(chan string, 4096)
		go func() {
			defer close(lines)
			rd := bufio.NewReaderSize(pipe, 1<<16)
			for {
				l, err := rd.ReadString('\n')
				if err != nil {
					return // a line cut short by the kill was never reported whole: not an acknowledgement
				}
				lines <- strings.TrimSuffix(l, "\n")
			}
		}()
		kill := time.After(time.Duration(50+rng.IntN(450)) * time.Millisecond)
		killed := false
		var roundAcks int
	read:
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					break read
				}
				a, err := parse(l)
				if err != nil {
					_ = cmd.Process.Kill()
					return acked, lost, err
				}
				all[a.id] = a
				roundAcks++
			case <-kill:
				_ = cmd.Process.Signal(syscall.SIGKILL)
				kill, killed = nil, true
			}
		}
		if err := cmd.Wait(); !killed {
			return acked, lost, fmt.Errorf("round %d: the child ended before it was killed: %v", round, err)
		}
		acked += roundAcks
		n, err := verify(dir, all)
		lost += n
		if err != nil {
			return acked, lost, fmt.Errorf("round %d: %w", round, err)
		}
		fmt.Fprintf(os.Stderr, "round %d: %d acknowledged this round, %d in all, store verified\n", round, roundAcks, len(all))
	}
	return acked, lost, nil
}

func parse(l string) (ack, error) {
	f := strings.Fields(l)
	if len(f) != 4 {
		return ack{}, fmt.Errorf("bad line %q", l)
	}
	rev, err1 := strconv.ParseUint(f[1], 10, 64)
	pos, err2 := strconv.ParseUint(f[2], 10, 64)
	id, err3 := uuid.Parse(f[3])
	if err1 != nil || err2 != nil || err3 != nil {
		return ack{}, fmt.Errorf("bad line %q", l)
	}
	return ack{stream: f[0], rev: rev, pos: pos, id: id}, nil
}

// verify reopens the store and checks every acknowledged event and the
// log's shape. It returns the number of acknowledged events missing.
func verify(dir string, acked map[uuid.UUID]ack) (int, error) {
	s, err := pebblestore.Open(dir, pebblestore.Options{})
	if err != nil {
		return 0, fmt.Errorf("reopen: %w", err)
	}
	defer s.Close()
	ctx := context.Background()
	seen := map[uuid.UUID]eventlog.RecordedEvent{}
	next := map[string]uint64{}
	var after uint64
	for {
		page, err := s.ReadAll(ctx, after, 10_000)
		if err != nil {
			return 0, err
		}
		for _, e := range page {
			if e.Position != after+1 {
				return 0, fmt.Errorf("position %d follows %d", e.Position, after)
			}
			after = e.Position
			if e.Revision != next[e.StreamID] {
				return 0, fmt.Errorf("%s: revision %d where %d was next", e.StreamID, e.Revision, next[e.StreamID])
			}
			next[e.StreamID]++
			if _, dup := seen[e.ID]; dup {
				return 0, fmt.Errorf("event %s stored twice", e.ID)
			}
			seen[e.ID] = e
		}
		if len(page) < 10_000 {
			break
		}
	}
	head, err := s.Head(ctx)
	if err != nil || head != after {
		return 0, fmt.Errorf("head %d (%v), the log ends at %d", head, err, after)
	}
	for stream, n := range next {
		last, err := s.ReadStream(ctx, stream, eventlog.Backwards, eventlog.End, 1)
		if err != nil || len(last) != 1 || last[0].Revision != n-1 {
			return 0, fmt.Errorf("%s: the stream's last event is not revision %d: %v", stream, n-1, err)
		}
	}
	lost := 0
	for id, a := range acked {
		e, ok := seen[id]
		if !ok {
			lost++
			continue
		}
		if e.StreamID != a.stream || e.Revision != a.rev || e.Position != a.pos {
			return lost, fmt.Errorf("event %s acknowledged at %s@%d/%d, stored at %s@%d/%d", id, a.stream, a.rev, a.pos, e.StreamID, e.Revision, e.Position)
		}
	}
	return lost, nil
}
