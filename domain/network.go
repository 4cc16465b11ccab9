package domain

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// What a network works with is its own configuration, event-sourced like
// the routing rules: each kind on a stream of the network's own, each event
// replacing the whole list, the stream's revision + 1 its version. Until a
// coordinator sets one, a network works with the defaults below.
//
//	categories-<network>      CategoriesSet      the categories a signal may name, with norms per urgency
//	norms-<network>           NormsSet           the response norms per urgency and the feedback norm
//	feedbacktexts-<network>   FeedbackTextsSet   what a signaller reads for each feedback code
//	neighbourhoods-<network>  NeighbourhoodsSet  the neighbourhoods a signal may name
//
// A change applies from its position in the log on: signals raised after a
// norm change are due by the new norm, feedback given after a text change
// reads the new text, and what was recorded before keeps what applied then.

// Stream categories of a network's configuration.
const (
	CategoriesCategory     = "categories"
	NormsCategory          = "norms"
	FeedbackTextsCategory  = "feedbacktexts"
	NeighbourhoodsCategory = "neighbourhoods"
)

// ConfigStream is the stream of one kind of a network's configuration.
func ConfigStream(kind, network string) string { return kind + "-" + network }

// Category is one of a network's categories of concern. A retired category
// may no longer be named by a new signal, but stays readable and reportable
// on the signals that name it; a category is never removed.
type Category struct {
	ID          string `json:"id"`
	LabelNL     string `json:"label_nl"`
	LabelEN     string `json:"label_en"`
	Description string `json:"description,omitempty"`
	// Norms override the network's response norm for signals of this
	// category, by urgency (the strictest applicable norm wins).
	Norms   map[string]Norm `json:"norms,omitempty"`
	Retired bool            `json:"retired,omitempty"`
}

// Neighbourhood is one of a network's neighbourhoods (a place, never a
// person); a retired one stays readable on the signals that name it.
type Neighbourhood struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Retired bool   `json:"retired,omitempty"`
}

// FeedbackText is what a signaller reads for a feedback code, in Dutch and
// English: a status, never private details.
type FeedbackText struct {
	NL string `json:"nl"`
	EN string `json:"en"`
}

// In returns the text in lang (nl or en).
func (t FeedbackText) In(lang string) string {
	if lang == "en" {
		return t.EN
	}
	return t.NL
}

// The configuration events.
type (
	CategoriesSet struct {
		Network    string     `json:"network"`
		Categories []Category `json:"categories"`
	}
	NormsSet struct {
		Network string `json:"network"`
		// Norms holds by_urgency and feedback_working_days; category norms
		// are the categories'.
		Norms Norms `json:"norms"`
	}
	FeedbackTextsSet struct {
		Network string                  `json:"network"`
		Texts   map[string]FeedbackText `json:"texts"`
	}
	NeighbourhoodsSet struct {
		Network        string          `json:"network"`
		Neighbourhoods []Neighbourhood `json:"neighbourhoods"`
	}
)

func (CategoriesSet) EventType() string     { return "CategoriesSet" }
func (NormsSet) EventType() string          { return "NormsSet" }
func (FeedbackTextsSet) EventType() string  { return "FeedbackTextsSet" }
func (NeighbourhoodsSet) EventType() string { return "NeighbourhoodsSet" }

// DefaultCategories are the categories a network starts from.
func DefaultCategories() []Category {
	return []Category{
		{ID: "loneliness", LabelNL: "Eenzaamheid", LabelEN: "Loneliness"},
		{ID: "malnutrition", LabelNL: "Ondervoeding", LabelEN: "Malnutrition"},
		{ID: "bullying", LabelNL: "Pesten", LabelEN: "Bullying"},
		{ID: "debt", LabelNL: "Schulden", LabelEN: "Debt"},
		{ID: "safety", LabelNL: "Veiligheid", LabelEN: "Safety"},
		{ID: "health", LabelNL: "Gezondheid", LabelEN: "Health"},
		{ID: "housing", LabelNL: "Wonen", LabelEN: "Housing"},
		{ID: "other", LabelNL: "Anders", LabelEN: "Other"},
	}
}

// DefaultFeedbackTexts are the texts a network starts from.
func DefaultFeedbackTexts() map[string]FeedbackText {
	return map[string]FeedbackText{
		"received":    {NL: "Uw signaal is ontvangen door het basisteam.", EN: "Your signal has been received by the basisteam."},
		"in_progress": {NL: "Het basisteam is met uw signaal aan de slag.", EN: "The basisteam is working on your signal."},
		"referred":    {NL: "De bewoner is doorverwezen naar een passende organisatie.", EN: "The resident has been referred to a suitable organisation."},
		"closed":      {NL: "Het basisteam heeft uw signaal afgerond. Dank voor uw melding.", EN: "The basisteam has completed your signal. Thank you for raising it."},
	}
}

// NetworkConfig is a network's configuration as it stands, with the version of
// each kind (0: the default).
type NetworkConfig struct {
	Categories            []Category
	CategoriesVersion     int
	Norms                 Norms
	NormsVersion          int
	FeedbackTexts         map[string]FeedbackText
	FeedbackTextsVersion  int
	Neighbourhoods        []Neighbourhood
	NeighbourhoodsVersion int
}

// DefaultConfig is the configuration of a network that set none.
func DefaultConfig() NetworkConfig {
	return NetworkConfig{Categories: DefaultCategories(), Norms: DefaultNorms(), FeedbackTexts: DefaultFeedbackTexts()}
}

// Category returns the category with id, retired or not.
func (n NetworkConfig) Category(id string) (Category, bool) {
	i := slices.IndexFunc(n.Categories, func(c Category) bool { return c.ID == id })
	if i < 0 {
		return Category{}, false
	}
	return n.Categories[i], true
}

// NormsFor returns the norms that apply to a signal of urgency and
// categories: the network's by urgency, and each category's override for
// that urgency.
func (n NetworkConfig) NormsFor(urgency string, categories []string) Norms {
	out := Norms{ByUrgency: n.Norms.ByUrgency, FeedbackWorkDays: n.Norms.FeedbackWorkDays}
	for _, id := range categories {
		if c, ok := n.Category(id); ok {
			if nm, ok := c.Norms[urgency]; ok {
				if out.ByCategory == nil {
					out.ByCategory = map[string]Norm{}
				}
				out.ByCategory[id] = nm
			}
		}
	}
	return out
}

// SignalNorms are the norms a signal was raised under, recorded on it
// (SignalRaised.Norms) so that a later change of the network's norms or
// categories never moves its deadlines: the response norm of its urgency,
// its categories' overrides for that urgency, the feedback norm, and the
// versions of the network's norms and categories they came from.
type SignalNorms struct {
	NormsVersion      int             `json:"norms_version"`
	CategoriesVersion int             `json:"categories_version"`
	Response          Norm            `json:"response"`
	ByCategory        map[string]Norm `json:"by_category,omitempty"`
	FeedbackWorkDays  int             `json:"feedback_working_days"`
}

// SignalNorms returns the norms a signal of urgency and categories raised
// now is due by.
func (n NetworkConfig) SignalNorms(urgency string, categories []string) SignalNorms {
	all := n.NormsFor(urgency, categories)
	return SignalNorms{NormsVersion: n.NormsVersion, CategoriesVersion: n.CategoriesVersion,
		Response: all.ByUrgency[urgency], ByCategory: all.ByCategory, FeedbackWorkDays: all.FeedbackWorkDays}
}

// Norms returns the recorded norms as Norms of one urgency, for Due.
func (s SignalNorms) Norms(urgency string) Norms {
	return Norms{ByUrgency: map[string]Norm{urgency: s.Response}, ByCategory: s.ByCategory, FeedbackWorkDays: s.FeedbackWorkDays}
}

// Version is the norm version a signal's figures use: the version of the
// network's norms, a dot, and the version of its categories (whose
// overrides count too); "0.0" are the defaults.
func (s SignalNorms) Version() string { return NormVersion(s.NormsVersion, s.CategoriesVersion) }

// NormVersion writes a norm version: norms version "." categories version.
func NormVersion(norms, categories int) string {
	return strconv.Itoa(norms) + "." + strconv.Itoa(categories)
}

// FeedbackText returns the network's text for a feedback code now.
func (n NetworkConfig) FeedbackText(code string) FeedbackText { return n.FeedbackTexts[code] }

// NeighbourhoodCode is the form of a neighbourhood while a network has no
// list of its own: a code of lower-case letters, digits and '-', so that no
// free text (a resident's name) can be put where it is kept in clear.
var NeighbourhoodCode = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,49}$`)

var configID = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,49}$`)

// ValidConfigID reports whether s has the form of a category's id.
func ValidConfigID(s string) bool { return configID.MatchString(s) }

// CheckRaise checks a new signal's categories and neighbourhood against the
// network: active categories only; a neighbourhood of the network's list
// (active), or, without a list, a neighbourhood code.
func (n NetworkConfig) CheckRaise(neighbourhood string, categories []string) []FieldError {
	var errs []FieldError
	if len(categories) == 0 {
		errs = append(errs, FieldError{Field: "categories", Message: "at least one category is required"})
	} else if len(categories) > len(n.Categories) {
		errs = append(errs, FieldError{Field: "categories", Message: "has too many entries"})
	} else {
		for _, id := range categories {
			if c, ok := n.Category(id); !ok || c.Retired {
				errs = append(errs, FieldError{Field: "categories", Message: "must each be an active category of the network: " + strings.Join(n.activeCategories(), ", ")})
				break
			}
		}
	}
	switch {
	case strings.TrimSpace(neighbourhood) == "":
		errs = append(errs, FieldError{Field: "neighbourhood", Message: "is required"})
	case len(n.Neighbourhoods) > 0:
		i := slices.IndexFunc(n.Neighbourhoods, func(h Neighbourhood) bool { return h.ID == neighbourhood })
		if i < 0 || n.Neighbourhoods[i].Retired {
			errs = append(errs, FieldError{Field: "neighbourhood", Message: "must be one of the network's neighbourhoods"})
		}
	case !NeighbourhoodCode.MatchString(neighbourhood):
		errs = append(errs, FieldError{Field: "neighbourhood", Message: "must be a neighbourhood code: lower-case letters, digits and '-', at most 50"})
	}
	return errs
}

func (n NetworkConfig) activeCategories() []string {
	var out []string
	for _, c := range n.Categories {
		if !c.Retired {
			out = append(out, c.ID)
		}
	}
	return out
}

// MaxConfigItems bounds one list of a network's configuration.
const MaxConfigItems = 200

// ValidateCategories checks a new list against the current one: ids in the
// id form and unique, both labels, norms of known urgencies, and no
// category of the current list left out (retire it instead: old signals
// name it).
func ValidateCategories(list, current []Category) error {
	var errs []FieldError
	if len(list) > MaxConfigItems {
		errs = append(errs, FieldError{Field: "categories", Message: fmt.Sprintf("at most %d categories", MaxConfigItems)})
	}
	seen := map[string]bool{}
	active := 0
	for i, c := range list {
		at := func(f string) string { return fmt.Sprintf("categories[%d].%s", i, f) }
		switch {
		case !configID.MatchString(c.ID):
			errs = append(errs, FieldError{Field: at("id"), Message: "must be 1 to 50 lower-case letters, digits, '-' or '_'"})
		case seen[c.ID]:
			errs = append(errs, FieldError{Field: at("id"), Message: "is used twice"})
		}
		seen[c.ID] = true
		errs = append(errs, checkLabel(at("label_nl"), c.LabelNL, 100)...)
		errs = append(errs, checkLabel(at("label_en"), c.LabelEN, 100)...)
		if len(c.Description) > 1000 {
			errs = append(errs, FieldError{Field: at("description"), Message: "is longer than 1000 characters"})
		}
		for u, nm := range c.Norms {
			if !Urgencies.Has(u) {
				errs = append(errs, FieldError{Field: at("norms." + u), Message: "unknown urgency"})
			} else if msg := checkNorm(nm); msg != "" {
				errs = append(errs, FieldError{Field: at("norms." + u), Message: msg})
			}
		}
		if !c.Retired {
			active++
		}
	}
	if len(list) > 0 && active == 0 {
		errs = append(errs, FieldError{Field: "categories", Message: "at least one category must be active"})
	}
	for _, c := range current {
		if !seen[c.ID] {
			errs = append(errs, FieldError{Field: "categories", Message: "category " + c.ID + " is left out: retire it instead (signals name it)"})
		}
	}
	if len(errs) > 0 {
		return Invalid(errs...)
	}
	return nil
}

// ValidateNorms checks the network's norms: one for every urgency, each in
// hours or working days, and a feedback norm in working days.
func ValidateNorms(n Norms) error {
	var errs []FieldError
	for _, u := range Urgencies {
		nm, ok := n.ByUrgency[u]
		if !ok {
			errs = append(errs, FieldError{Field: "norms.by_urgency." + u, Message: "is required"})
		} else if msg := checkNorm(nm); msg != "" {
			errs = append(errs, FieldError{Field: "norms.by_urgency." + u, Message: msg})
		}
	}
	for u := range n.ByUrgency {
		if !Urgencies.Has(u) {
			errs = append(errs, FieldError{Field: "norms.by_urgency." + u, Message: "unknown urgency"})
		}
	}
	if len(n.ByCategory) > 0 {
		errs = append(errs, FieldError{Field: "norms.by_category", Message: "category norms are set on the categories"})
	}
	if n.FeedbackWorkDays < 1 || n.FeedbackWorkDays > 60 {
		errs = append(errs, FieldError{Field: "norms.feedback_working_days", Message: "must be 1 to 60"})
	}
	if len(errs) > 0 {
		return Invalid(errs...)
	}
	return nil
}

func checkNorm(n Norm) string {
	switch {
	case (n.Hours > 0) == (n.WorkingDays > 0):
		return "must be either hours or working days"
	case n.Hours < 0 || n.WorkingDays < 0 || n.Hours > 24*30 || n.WorkingDays > 60:
		return "must be 1 to 720 hours or 1 to 60 working days"
	}
	return ""
}

// ValidateFeedbackTexts checks the texts: one for every feedback code, in
// both languages, none longer than 500 characters.
func ValidateFeedbackTexts(texts map[string]FeedbackText) error {
	var errs []FieldError
	for _, code := range FeedbackCodes {
		t, ok := texts[code]
		if !ok {
			errs = append(errs, FieldError{Field: "texts." + code, Message: "is required"})
			continue
		}
		errs = append(errs, checkLabel("texts."+code+".nl", t.NL, 500)...)
		errs = append(errs, checkLabel("texts."+code+".en", t.EN, 500)...)
	}
	for code := range texts {
		if !FeedbackCodes.Has(code) {
			errs = append(errs, FieldError{Field: "texts." + code, Message: "unknown feedback code"})
		}
	}
	if len(errs) > 0 {
		return Invalid(errs...)
	}
	return nil
}

// ValidateNeighbourhoods checks a new list against the current one like
// ValidateCategories.
func ValidateNeighbourhoods(list, current []Neighbourhood) error {
	var errs []FieldError
	if len(list) > MaxConfigItems {
		errs = append(errs, FieldError{Field: "neighbourhoods", Message: fmt.Sprintf("at most %d neighbourhoods", MaxConfigItems)})
	}
	seen := map[string]bool{}
	for i, h := range list {
		at := func(f string) string { return fmt.Sprintf("neighbourhoods[%d].%s", i, f) }
		switch {
		case !NeighbourhoodCode.MatchString(h.ID):
			errs = append(errs, FieldError{Field: at("id"), Message: "must be 1 to 50 lower-case letters, digits or '-'"})
		case seen[h.ID]:
			errs = append(errs, FieldError{Field: at("id"), Message: "is used twice"})
		}
		seen[h.ID] = true
		errs = append(errs, checkLabel(at("name"), h.Name, 100)...)
	}
	for _, h := range current {
		if !seen[h.ID] {
			errs = append(errs, FieldError{Field: "neighbourhoods", Message: "neighbourhood " + h.ID + " is left out: retire it instead (signals name it)"})
		}
	}
	if len(errs) > 0 {
		return Invalid(errs...)
	}
	return nil
}

func checkLabel(field, v string, max int) []FieldError {
	switch {
	case strings.TrimSpace(v) == "":
		return []FieldError{{Field: field, Message: "is required"}}
	case len([]rune(v)) > max:
		return []FieldError{{Field: field, Message: fmt.Sprintf("is longer than %d characters", max)}}
	}
	return nil
}
