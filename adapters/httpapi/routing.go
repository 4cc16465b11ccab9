package httpapi

import (
	"net/http"
	"strconv"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

type (
	routingRulesBody struct {
		Rules []domain.RoutingRule `json:"rules"`
	}
	routingRulesView struct {
		Version int                  `json:"version"`
		Rules   []domain.RoutingRule `json:"rules"`
	}
)

// routingRules answers the caller's network's routing rules, with their
// version as ETag (send it back as If-Match with a PUT).
func (s *Server) routingRules(w http.ResponseWriter, r *http.Request) error {
	p, err := s.query(r, domain.ActReadRouting)
	if err != nil {
		return err
	}
	rules, version, err := s.App.RoutingRules(r.Context(), p.Network)
	if err != nil {
		return err
	}
	if rules == nil {
		rules = []domain.RoutingRule{}
	}
	w.Header().Set("ETag", strconv.Quote(strconv.Itoa(version)))
	writeJSON(w, http.StatusOK, routingRulesView{Version: version, Rules: rules})
	return nil
}

// putRoutingRules replaces the caller's network's routing rules (ordered:
// the first matching rule wins). If-Match with the version read is checked:
// 409 when the rules changed since.
func (s *Server) putRoutingRules(w http.ResponseWriter, r *http.Request) error {
	if _, err := domain.Authorize(principal(r.Context()), domain.ActManageRouting, domain.Target{}); err != nil {
		return err
	}
	var b routingRulesBody
	if err := s.decode(w, r, &b); err != nil {
		return err
	}
	req, err := appRequest(r)
	if err != nil {
		return err
	}
	res, err := s.App.SetRoutingRules(r.Context(), req, b.Rules)
	if err != nil {
		return err
	}
	return s.answer(w, http.StatusOK, res)
}
