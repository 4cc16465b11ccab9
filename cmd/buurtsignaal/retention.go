package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/adapters/keystore"
	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/app"
	"github.com/buurtsignaal/buurtsignaal/projections"
)

func (s *system) retention() projections.Retention {
	r := projections.DefaultRetention()
	r.Withdrawn, r.Declined, r.Closed = s.cfg.RetentionWithdrawn, s.cfg.RetentionDeclined, s.cfg.RetentionClosed
	return r
}

// sweep finds the subjects past retention and, with apply, erases each one
// (the application's retention use case, app.EraseExpired).
func (s *system) sweep(ctx context.Context, apply bool) ([]uuid.UUID, error) {
	now := s.now().UTC()
	var expired []app.Expired
	s.runner.Read(func() {
		for _, id := range projections.Expired(s.cases, s.subjects, now, s.retention()) {
			e := app.Expired{Subject: id, Network: s.cfg.Network}
			if sp, ok := s.subjects.Get(id); ok {
				e.Network = sp.Network
			}
			expired = append(expired, e)
		}
	})
	s.sweepTotal.Store(uint64(len(expired)))
	s.sweepDone.Store(0)
	if !apply {
		ids := make([]uuid.UUID, len(expired))
		for i, e := range expired {
			ids[i] = e.Subject
		}
		return ids, nil
	}
	return s.app.EraseExpired(ctx, now, expired, func() { s.sweepDone.Add(1) })
}

// completeErasures records SubjectErased for every subject of the
// erased-subjects file (written before a key is shredded) that the log does
// not show as erased: an erasure cut short between shredding the key and
// recording it. It returns how many it recorded.
func (s *system) completeErasures(ctx context.Context) (int, error) {
	ids, err := keystore.ReadErased(s.fs, erasedFile(s.cfg))
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	open := map[uuid.UUID]string{} // subject -> network
	s.runner.Read(func() {
		for _, id := range ids {
			if sp, ok := s.subjects.Get(id); ok && !sp.Erased {
				open[id] = sp.Network
			}
		}
	})
	for id, network := range open {
		req := app.Request{Actor: domain.Principal{ID: "system:erasure", Roles: []domain.Role{domain.RolePrivacyOfficer}, Network: network},
			RequestID: "erasure-completed", IdempotencyKey: "erasure-completed-" + id.String()}
		if _, err := s.app.CompleteErasure(ctx, req, id); err != nil {
			return 0, err
		}
	}
	return len(open), nil
}

// retentionLoop runs the sweep on a schedule until ctx ends.
func (s *system) retentionLoop(ctx context.Context) {
	if s.cfg.RetentionEvery <= 0 {
		return
	}
	t := time.NewTicker(s.cfg.RetentionEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			ids, err := s.sweep(ctx, true)
			if err != nil {
				s.log.Error("retention sweep", "err", err, "erased", len(ids))
				continue
			}
			if len(ids) > 0 {
				s.log.Info("retention sweep", "erased", len(ids))
			}
		}
	}
}

// retentionCmd is `buurtsignaal retention --dry-run|--apply`.
func retentionCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	var apply, dry bool
	cfg, _, err := loadConfig("retention", args, getenv, output(stderr), func(fs *flag.FlagSet) {
		fs.BoolVar(&apply, "apply", false, "erase the subjects past their retention")
		fs.BoolVar(&dry, "dry-run", false, "only list the subjects past their retention")
	})
	if err != nil {
		return err
	}
	if apply == dry {
		return usagef("retention: give exactly one of --dry-run or --apply")
	}
	var ids []uuid.UUID
	if serverHolds(cfg) {
		// The server sweeps its own projections, asked over its admin socket.
		fmt.Fprintf(stderr, "retention: the data directory %s is held by a running server: asking it over its admin socket\n", cfg.DataDir)
		var ans struct {
			IDs   []uuid.UUID `json:"ids"`
			Error string      `json:"error"`
		}
		if err = askAdmin(ctx, adminSocket(cfg), http.MethodPost, "/retention?apply="+strconv.FormatBool(apply), &ans); err == nil && ans.Error != "" {
			err = errors.New(ans.Error)
		}
		ids = ans.IDs
	} else {
		sys, stop, oerr := openCaughtUp(ctx, "retention", cfg, stderr)
		if oerr != nil {
			return oerr
		}
		defer sys.Close()
		defer func() { _ = stop() }()
		log := newLogger(stderr, cfg.LogLevel)
		err = withProgress(ctx, stderr, log, "retention: erasing", "subjects", sys.sweepTotal.Load, sys.sweepDone.Load, func(ctx context.Context) error {
			ids, err = sys.sweep(ctx, apply)
			return err
		})
	}
	for _, id := range ids {
		fmt.Fprintln(stdout, id)
	}
	verb := "would erase"
	if apply {
		verb = "erased"
	}
	fmt.Fprintf(stdout, "retention: %s %d subjects\n", verb, len(ids))
	return err
}
