package httpapi

import (
	"context"
	"net/http"
	"strconv"

	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/app"
)

// A network's own configuration (domain/network.go): categories, norms,
// feedback texts and neighbourhoods, each read whole with its version as
// ETag (0 and the defaults while the network set none) and replaced whole
// with If-Match. Every role reads; coordinators and admins edit.

type (
	categoriesBody struct {
		Categories []domain.Category `json:"categories"`
	}
	categoriesView struct {
		Version    int               `json:"version"`
		Categories []domain.Category `json:"categories"`
	}
	normsBody struct {
		Norms *domain.Norms `json:"norms"`
	}
	normsView struct {
		Version int          `json:"version"`
		Norms   domain.Norms `json:"norms"`
	}
	feedbackTextsBody struct {
		Texts map[string]domain.FeedbackText `json:"texts"`
	}
	feedbackTextsView struct {
		Version int                            `json:"version"`
		Texts   map[string]domain.FeedbackText `json:"texts"`
	}
	neighbourhoodsBody struct {
		Neighbourhoods []domain.Neighbourhood `json:"neighbourhoods"`
	}
	neighbourhoodsView struct {
		Version int `json:"version"`
		// Neighbourhoods is empty while the network keeps no list: then a
		// signal names a neighbourhood code (lower-case letters, digits, '-').
		Neighbourhoods []domain.Neighbourhood `json:"neighbourhoods"`
	}
)

// readNetwork answers one kind of the caller's network's configuration.
func readNetwork(s *Server, view func(domain.NetworkConfig) (any, int)) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		p, err := s.query(r, domain.ActReadNetwork)
		if err != nil {
			return err
		}
		cfg, err := s.App.Network(r.Context(), p.Network)
		if err != nil {
			return err
		}
		v, version := view(cfg)
		w.Header().Set("ETag", strconv.Quote(strconv.Itoa(version)))
		writeJSON(w, http.StatusOK, v)
		return nil
	}
}

func (s *Server) categories() handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		p, err := s.query(r, domain.ActReadNetwork)
		if err != nil {
			return err
		}
		cats, version, err := s.App.Categories(r.Context(), p.Network)
		if err != nil {
			return err
		}
		w.Header().Set("ETag", strconv.Quote(strconv.Itoa(version)))
		writeJSON(w, http.StatusOK, categoriesView{Version: version, Categories: cats})
		return nil
	}
}

func (s *Server) putCategories() handlerFunc {
	return putConfig(s, domain.ActManageNetwork, func(ctx context.Context, req app.Request, b categoriesBody) (app.Result, error) {
		if b.Categories == nil {
			return app.Result{}, errWholeList("categories")
		}
		return s.App.SetCategories(ctx, req, b.Categories)
	})
}

func (s *Server) norms() handlerFunc {
	return readNetwork(s, func(c domain.NetworkConfig) (any, int) {
		return normsView{Version: c.NormsVersion, Norms: c.Norms}, c.NormsVersion
	})
}

func (s *Server) putNorms() handlerFunc {
	return putConfig(s, domain.ActManageNetwork, func(ctx context.Context, req app.Request, b normsBody) (app.Result, error) {
		if b.Norms == nil {
			return app.Result{}, domain.Invalid(domain.FieldError{Field: "norms", Message: "is required"})
		}
		return s.App.SetNorms(ctx, req, *b.Norms)
	})
}

func (s *Server) feedbackTexts() handlerFunc {
	return readNetwork(s, func(c domain.NetworkConfig) (any, int) {
		return feedbackTextsView{Version: c.FeedbackTextsVersion, Texts: c.FeedbackTexts}, c.FeedbackTextsVersion
	})
}

func (s *Server) putFeedbackTexts() handlerFunc {
	return putConfig(s, domain.ActManageNetwork, func(ctx context.Context, req app.Request, b feedbackTextsBody) (app.Result, error) {
		if b.Texts == nil {
			return app.Result{}, domain.Invalid(domain.FieldError{Field: "texts", Message: "is required"})
		}
		return s.App.SetFeedbackTexts(ctx, req, b.Texts)
	})
}

func (s *Server) neighbourhoods() handlerFunc {
	return readNetwork(s, func(c domain.NetworkConfig) (any, int) {
		list := c.Neighbourhoods
		if list == nil {
			list = []domain.Neighbourhood{}
		}
		return neighbourhoodsView{Version: c.NeighbourhoodsVersion, Neighbourhoods: list}, c.NeighbourhoodsVersion
	})
}

func (s *Server) putNeighbourhoods() handlerFunc {
	return putConfig(s, domain.ActManageNetwork, func(ctx context.Context, req app.Request, b neighbourhoodsBody) (app.Result, error) {
		if b.Neighbourhoods == nil {
			return app.Result{}, errWholeList("neighbourhoods")
		}
		return s.App.SetNeighbourhoods(ctx, req, b.Neighbourhoods)
	})
}
