// Command crashtest kills a process appending to the embedded store with
// SIGKILL at random moments and checks, after each reopen, that every
// acknowledged event is there exactly once, with gap-free revisions and
// positions. Run: go run ./scripts/crashtest -rounds 20
//
// The parent re-executes itself as a child (-child DIR) that appends from 64
// goroutines and prints one line per acknowledged event; whatever the parent
// has read from the pipe when it kills the child is what was acknowledged.
package main

import (
	"bufio"
	"context"
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
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			own := fmt.Sprintf("signal-w%d", w)
			for {
				stream := own
				if rng.IntN(4) == 0 {
					stream = fmt.Sprintf("signal-shared%d", rng.IntN(4))
				}
				n := 1 + rng.IntN(3)
				evs := make([]eventlog.EventData, n)
				for i := range evs {
					evs[i] = eventlog.EventData{ID: uuid.New(), Type: "CrashTested", Data: []byte(`{"payload":"` + strings.Repeat("x", 200) + `"}`)}
				}
				r, err := s.Append(context.Background(), stream, eventlog.Any(), evs...)
				if err != nil {
					fmt.Fprintln(os.Stderr, "append:", err)
					os.Exit(2)
				}
				mu.Lock()
				for i, e := range evs {
					rev := r.NextRevision - uint64(n-1-i)
					pos := r.Position - uint64(n-1-i)
					fmt.Fprintf(out, "%s %d %d %s\n", stream, rev, pos, e.ID)
				}
				out.Flush() // acknowledged to the parent only once written
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	return nil
}

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
			sc := bufio.NewScanner(pipe)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		kill := time.After(time.Duration(50+rng.IntN(450)) * time.Millisecond)
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
				kill = nil
			}
		}
		_ = cmd.Wait()
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
