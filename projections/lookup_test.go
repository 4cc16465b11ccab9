package projections

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/eventlog"
)

// headOnly is a log that tells its head and nothing else.
type headOnly struct {
	eventlog.Store
	head uint64
}

func (h headOnly) Head(context.Context) (uint64, error) { return h.head, nil }

// TestALookupThatCannotCatchUpSaysSo: a referral the projections do not
// hold is "no such referral" only when they hold the log as it is now;
// while they are behind (a runner that does not get there in time), the
// answer is ErrBehind, which the API answers 503, not 404.
func TestALookupThatCannotCatchUpSaysSo(t *testing.T) {
	for _, tc := range []struct {
		name string
		head uint64
		want error
	}{
		{"current", 0, nil},
		{"behind", 5, ErrBehind},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cases := NewCases(domain.DefaultNorms(), domain.NewCalendar(time.UTC, nil))
			l := &Lookup{Runner: NewRunner(headOnly{head: tc.head}, domain.NewRegistry(), cases), Cases: cases}
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			_, ok, err := l.SignalOfReferral(ctx, uuid.New())
			if ok || !errors.Is(err, tc.want) {
				t.Errorf("found %t, err %v; want not found, err %v", ok, err, tc.want)
			}
		})
	}
}
