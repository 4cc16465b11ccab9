package notify

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

func ids(ds []Delivery, err error) []string {
	out := []string{}
	if err != nil {
		return []string{err.Error()}
	}
	for _, d := range ds {
		out = append(out, d.Notification.ID)
	}
	return out
}

// TestOutbox walks an item through the outbox across reopenings: queued
// with the checkpoint, dead-lettered, not queued again while dead, retried,
// done.
func TestOutbox(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	o, err := OpenOutbox(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := o.Checkpoint(ctx); ok || err != nil {
		t.Fatalf("a new outbox has a checkpoint (%v)", err)
	}
	at := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	d := func(id string) Delivery {
		return Delivery{Notification: Notification{ID: id, Kind: "handed_over", At: at}, TargetID: "t", Channel: "webhook", QueuedAt: at}
	}
	pos := uint64(42)
	if err := o.Enqueue(ctx, []Delivery{d("a"), d("b")}, []string{"sig/norm_lapsed"}, &pos); err != nil {
		t.Fatal(err)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if o, err = OpenOutbox(dir); err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if cp, ok, err := o.Checkpoint(ctx); cp != 42 || !ok || err != nil {
		t.Fatalf("checkpoint after reopening: %d %t %v", cp, ok, err)
	}
	if m, err := o.Marked(ctx, "sig/norm_lapsed"); !m || err != nil {
		t.Fatalf("mark lost: %v", err)
	}
	if m, _ := o.Marked(ctx, "sig/norm_lapsing"); m {
		t.Fatal("an unmarked trigger is marked")
	}
	if diff := cmp.Diff([]string{"a", "b"}, ids(o.Pending(ctx, 10))); diff != "" {
		t.Fatal(diff)
	}
	failed := d("a")
	failed.Attempts, failed.Error = 1, "webhook answered 500"
	if err := o.Fail(ctx, failed); err != nil {
		t.Fatal(err)
	}
	// A redo of the same event does not bring a dead letter back.
	if err := o.Enqueue(ctx, []Delivery{d("a")}, nil, &pos); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"b"}, ids(o.Pending(ctx, 10))); diff != "" {
		t.Fatal(diff)
	}
	dead, err := o.DeadLetters(ctx, 10)
	if err != nil || len(dead) != 1 || dead[0].Error != "webhook answered 500" || dead[0].Attempts != 1 {
		t.Fatalf("dead letters: %+v %v", dead, err)
	}
	if p, dl, err := o.Count(ctx); p != 1 || dl != 1 || err != nil {
		t.Fatalf("count: %d pending, %d dead, %v", p, dl, err)
	}
	if _, err := o.Retry(ctx, "nope"); !errors.Is(err, domain.ErrNoDeadLetter) {
		t.Fatalf("retry of an unknown id: %v", err)
	}
	back, err := o.Retry(ctx, "a")
	if err != nil || back.Error != "" || back.Attempts != 1 {
		t.Fatalf("retry: %+v %v", back, err)
	}
	if diff := cmp.Diff([]string{"a", "b"}, ids(o.Pending(ctx, 10))); diff != "" {
		t.Fatal(diff)
	}
	for _, id := range []string{"a", "b"} {
		if err := o.Done(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if p, dl, err := o.Count(ctx); p != 0 || dl != 0 || err != nil {
		t.Fatalf("count after delivery: %d pending, %d dead, %v", p, dl, err)
	}
}
