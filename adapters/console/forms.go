package console

import (
	"html/template"
	"regexp"
	"strconv"
	"strings"
)

// Form errors: the API answers a 422 with errors [{field, message}] in
// English, naming fields by JSON path (subject.name, rules[2].team_id). The
// console shows each next to its field in the page's language, tied to it
// with aria-describedby, and lists them at the top of the page with links to
// the fields. The API stays as it is: a message is mapped to a rule by its
// wording (fieldRules), and the rule to the console's text.

// fieldError is one field's error as a page shows it.
type fieldError struct {
	ID      string // the id of the field's input
	Label   string // the field's label
	Message string
}

// formErrors are the errors of the form that was sent.
type formErrors struct {
	Form   string            // the form's name: its inputs' ids start with it
	ByID   map[string]string // input id -> message
	Errors []fieldError      // in the API's order, for the summary
}

// fieldRules classify the API's English messages; the first match wins.
var fieldRules = []struct {
	re   *regexp.Regexp
	rule string
}{
	{regexp.MustCompile(`no routing rule matches`), "no_rule"},
	{regexp.MustCompile(`^unknown team`), "unknown_team"},
	{regexp.MustCompile(`^unknown organisation`), "unknown_organisation"},
	{regexp.MustCompile(`is longer than (\d+) characters`), "too_long"},
	{regexp.MustCompile(`at least one .* is required`), "choose_one"},
	{regexp.MustCompile(`(^is required$|is required$)`), "required"},
	{regexp.MustCompile(`date|RFC 3339`), "date"},
	{regexp.MustCompile(`must be before to`), "from_before_to"},
	{regexp.MustCompile(`is used twice|unique name`), "duplicate"},
	{regexp.MustCompile(`e-mail address`), "email"},
	{regexp.MustCompile(`is for the (email|webhook) channel`), "wrong_channel"},
	{regexp.MustCompile(`must be empty`), "must_be_empty"},
	{regexp.MustCompile(`letters, digits`), "identifier"},
	{regexp.MustCompile(`too many|at most \d+|more than \d+`), "too_many"},
	{regexp.MustCompile(`must (each )?be one of|^unknown |must be [a-z_, ]+ or [a-z_]+$`), "choice"},
}

// ruleTexts are the console's words per rule; %s is a number where the
// rule has one.
var ruleTexts = map[string][2]string{
	"required":             {"Vul dit veld in.", "Please fill in this field."},
	"choose_one":           {"Kies er ten minste één.", "Choose at least one."},
	"choice":               {"Kies een van de mogelijkheden.", "Choose one of the options."},
	"too_long":             {"Dit is te lang: ten hoogste %s tekens.", "This is too long: at most %s characters."},
	"date":                 {"Vul een datum in (jjjj-mm-dd).", "Enter a date (yyyy-mm-dd)."},
	"from_before_to":       {"De begindatum moet voor de einddatum liggen.", "The start must be before the end."},
	"no_rule":              {"Geen routeringsregel past bij dit signaal: kies een team.", "No routing rule matches this signal: choose a team."},
	"unknown_team":         {"Dit team is onbekend.", "This team is unknown."},
	"unknown_organisation": {"Deze organisatie is onbekend.", "This organisation is unknown."},
	"duplicate":            {"Deze waarde komt twee keer voor.", "This value is used twice."},
	"email":                {"Vul een gewoon e-mailadres in.", "Enter a plain e-mail address."},
	"wrong_channel":        {"Dit hoort bij een ander kanaal: laat het leeg.", "This belongs to another channel: leave it empty."},
	"must_be_empty":        {"Laat dit veld leeg.", "Leave this field empty."},
	"identifier":           {"Gebruik alleen kleine letters, cijfers, '.', '_' of '-'.", "Use only lower-case letters, digits, '.', '_' or '-'."},
	"too_many":             {"Dit zijn er te veel.", "There are too many."},
	"invalid":              {"Deze waarde klopt niet.", "This value is not valid."},
}

// fieldMessage is the console's text for one of the API's field messages.
func fieldMessage(lang, msg string) string {
	for _, r := range fieldRules {
		m := r.re.FindStringSubmatch(msg)
		if m == nil {
			continue
		}
		t := translateRule(lang, r.rule)
		if r.rule == "too_long" {
			return strings.Replace(t, "%s", m[1], 1)
		}
		return t
	}
	return translateRule(lang, "invalid")
}

func translateRule(lang, rule string) string {
	t := ruleTexts[rule]
	if lang == "en" {
		return t[1]
	}
	return t[0]
}

var listIndex = regexp.MustCompile(`^[a-z_]+\[(\d+)\]\.([a-z_]+)`)

// inputID is the id of the input a field of the API names, in a form:
// "<form>-<field>" (subject.name -> raise-name), or for the rows of a
// configuration table "<field>-<row>" (rules[2].team_id -> team_id-2).
func inputID(form, field string) string {
	if m := listIndex.FindStringSubmatch(field); m != nil {
		return m[2] + "-" + m[1]
	}
	if i := strings.LastIndexByte(field, '.'); i >= 0 {
		field = field[i+1:]
	}
	return form + "-" + field
}

// newFormErrors maps a problem's field errors onto the inputs of form.
func newFormErrors(lang, form string, p *problem) *formErrors {
	fe := &formErrors{Form: form, ByID: map[string]string{}}
	if p == nil {
		return fe
	}
	for _, e := range p.Errors {
		id := inputID(form, e.Field)
		msg := fieldMessage(lang, e.Message)
		if _, seen := fe.ByID[id]; seen {
			continue
		}
		fe.ByID[id] = msg
		name := e.Field
		if m := listIndex.FindStringSubmatch(name); m != nil {
			n, _ := strconv.Atoi(m[1])
			name = translate(lang, "col_"+m[2]) + " (" + translate(lang, "row") + " " + strconv.Itoa(n+1) + ")"
		} else {
			if i := strings.LastIndexByte(name, '.'); i >= 0 {
				name = name[i+1:]
			}
			name = translate(lang, "field_"+name)
		}
		fe.Errors = append(fe.Errors, fieldError{ID: id, Label: name, Message: msg})
	}
	return fe
}

// The template side: {{invalid $ "decline-reason"}} marks an input whose
// value was refused and ties it to its message; {{fielderror $
// "decline-reason"}} writes the message, with that id.
func invalidAttrs(p page, id string) template.HTMLAttr {
	if p.Form == nil {
		return ""
	}
	if _, ok := p.Form.ByID[id]; !ok {
		return ""
	}
	return template.HTMLAttr(`aria-invalid="true" aria-describedby="` + template.HTMLEscapeString("err-"+id) + `"`)
}

func fieldErrorHTML(p page, id string) template.HTML {
	if p.Form == nil {
		return ""
	}
	msg, ok := p.Form.ByID[id]
	if !ok {
		return ""
	}
	return template.HTML(`<p class="field-error" id="` + template.HTMLEscapeString("err-"+id) + `">` + template.HTMLEscapeString(msg) + `</p>`)
}

// problemText is what a page says of a problem of the API, in its language:
// by the problem's code, else by its status. The API's own words (English)
// never reach the page.
func problemText(lang string, p *problem) string {
	key := ""
	switch p.Code {
	case "validation", "bad_request":
		key = "problem_validation"
	case "invalid_transition":
		key = "problem_transition"
	case "stale_version", "wrong_expected_version":
		key = "problem_stale"
	case "idempotency_key_reused":
		key = "problem_reused"
	case "mfa_required":
		key = "problem_mfa"
	case "erased":
		key = "problem_erased"
	case "organisation_exists":
		key = "problem_org_exists"
	case "rate_limited":
		key = "problem_busy"
	}
	if key == "" {
		switch {
		case p.Status == 403:
			key = "problem_forbidden"
		case p.Status == 404:
			key = "not_found"
		case p.Status == 409:
			key = "problem_transition"
		case p.Status == 413:
			key = "problem_too_large"
		case p.Status == 422, p.Status == 400:
			key = "problem_validation"
		case p.Status == 429:
			key = "problem_busy"
		case p.Status == 503:
			key = "unavailable"
		default:
			key = "error"
		}
	}
	return translate(lang, key)
}
