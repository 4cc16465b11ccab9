package console

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"math"
	"net/http"
	"path"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

// parse builds one template set per page: the layout plus the page.
func (c *Console) parse() error {
	funcs := template.FuncMap{
		"tr":         translate,
		"lbl":        label,
		"lbls":       labelList,
		"catlbl":     categoryLabel,
		"catlbls":    categoryLabels,
		"when":       c.when,
		"day":        c.day,
		"shortday":   c.shortDay,
		"hours":      hoursText,
		"pct":        formatPercent,
		"actor":      actorName,
		"pname":      personName,
		"event":      eventSentence,
		"invalid":    invalidAttrs,
		"fielderror": fieldErrorHTML,
		"join":       strings.Join,
		"has":        func(list []string, v string) bool { return contains(list, v) },
		"newid":      func() string { return uuid.NewString() },
		"list":       func(v ...string) []string { return v },
		"inc":        func(i int) int { return i + 1 },
		"age":        ageText,
		"dict": func(kv ...any) map[string]any {
			m := make(map[string]any, len(kv)/2)
			for i := 0; i+1 < len(kv); i += 2 {
				k, _ := kv[i].(string)
				m[k] = kv[i+1]
			}
			return m
		},
		"short": func(id any) string {
			s := fmt.Sprint(id)
			if len(s) > 8 {
				return s[:8]
			}
			return s
		},
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return err
	}
	c.pages = map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimSuffix(path.Base(n), ".html")
		if name == "layout" || strings.HasPrefix(name, "_") {
			continue // the layout and partials (_*.html) go with every page
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/_*.html", n)
		if err != nil {
			return fmt.Errorf("console: template %s: %w", name, err)
		}
		c.pages[name] = t
	}
	return nil
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// timeOf reads a time of the API (RFC 3339) or of the console.
func timeOf(t any) (time.Time, bool) {
	switch v := t.(type) {
	case time.Time:
		return v, !v.IsZero()
	case *time.Time:
		if v == nil {
			return time.Time{}, false
		}
		return *v, !v.IsZero()
	case string:
		p, err := time.Parse(time.RFC3339Nano, v)
		return p, err == nil && !p.IsZero()
	}
	return time.Time{}, false
}

// when writes a moment in the network's time zone: "di 8 dec 2026, 14:05".
func (c *Console) when(lang string, t any) string {
	tt, ok := timeOf(t)
	if !ok {
		return "–"
	}
	return formatDateTime(lang, tt.In(c.Location))
}

// day writes a day: a date of the API (YYYY-MM-DD) or the day of a moment
// in the network's time zone: "di 8 dec 2026".
func (c *Console) day(lang string, t any) string {
	if s, ok := t.(string); ok {
		if d, err := time.Parse(time.DateOnly, s); err == nil {
			return formatDate(lang, d)
		}
	}
	tt, ok := timeOf(t)
	if !ok {
		return "–"
	}
	return formatDate(lang, tt.In(c.Location))
}

// shortDay writes a day without weekday and year, for the chart's axis:
// "8 dec", "8 Dec".
func (c *Console) shortDay(lang string, t time.Time) string {
	t = t.In(c.Location)
	if lang == "en" {
		return t.Format("2 Jan")
	}
	return fmt.Sprintf("%d %s", t.Day(), nlMonths[t.Month()-1])
}

// hoursText writes hours, "–" when there are none (nil), and 0 as 0.
func hoursText(lang string, v any) string {
	switch h := v.(type) {
	case *float64:
		if h == nil {
			return "–"
		}
		return formatHours(lang, *h)
	case float64:
		return formatHours(lang, h)
	}
	return "–"
}

// ageText writes an age in hours as hours (under two days) or days.
func ageText(lang string, v any) string {
	h, _ := v.(float64)
	if h < 48 {
		return formatHours(lang, float64(int(h)))
	}
	d := int(h / 24)
	if lang == "en" {
		return fmt.Sprintf("%d days", d)
	}
	return fmt.Sprintf("%d dagen", d)
}

// personName is a principal's display name, else its id.
func personName(people map[string]person, id any) string {
	s, _ := id.(string)
	if p, ok := people[s]; ok && p.Name != "" {
		return p.Name
	}
	return s
}

// eventSentence says what an event of a case's history was, and who did
// it: "Anna de Vries (professional) heeft de overdracht geaccepteerd."
func eventSentence(lang string, people map[string]person, e any) string {
	m, _ := e.(map[string]any)
	typ, _ := m["type"].(string)
	who := actorName(lang, people, m["actor_id"], m["actor_role"])
	format, ok := Label(lang, "event", typ)
	if !ok {
		return who + ": " + typ
	}
	sentence := fmt.Sprintf(format, who)
	if strings.HasPrefix(sentence, translate(lang, "system_routing")) {
		sentence = capitalize(sentence)
	}
	return sentence
}

func capitalize(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if n == 0 {
		return s
	}
	return string(unicode.ToUpper(r)) + s[n:]
}

// render writes a page; s may be nil (signed out).
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name string, s *session, p page) {
	t := c.pages[name]
	if t == nil {
		c.Log.Error("console", "err", errNoTemplate, "template", name)
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return
	}
	p.Lang = c.lang(r)
	p.Path = r.URL.Path
	if p.Title == "" {
		p.Title = name
	}
	p.Title = translate(p.Lang, p.Title)
	if s != nil {
		p.Principal, p.CSRF = &s.principal, s.CSRF
		p.Categories = c.categoryNames(r)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, p); err != nil {
		c.Log.Error("console: render", "template", name, "err", err)
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// lang is the console's language: the bs_lang cookie, else Accept-Language,
// else Dutch.
func (c *Console) lang(r *http.Request) string {
	if ck, err := r.Cookie("bs_lang"); err == nil && (ck.Value == "nl" || ck.Value == "en") {
		return ck.Value
	}
	return domain.Language(r.Header.Get("Accept-Language"))
}

func (c *Console) t(r *http.Request, key string) string { return translate(c.lang(r), key) }

// chartData is the SVG chart of open and overdue signals over time.
type chartData struct {
	Width, Height   int
	OpenPath        string
	OverduePath     string
	Max             int
	First, Last     time.Time
	YTicks          []chartTick
	XTicks          []chartXTick
	Points          int
	LastOpen, LastO int
	// Series are the chart's figures, for its table (its text alternative).
	Series []seriesPoint
}

type chartTick struct {
	Y     float64
	Label int
}

// chartXTick is a dated mark on the time axis.
type chartXTick struct {
	X  float64
	At time.Time
}

// chart lays out a series (from the monitor report) as two polylines, with
// a count axis and a dated time axis (at most five dates).
func chart(series []seriesPoint) chartData {
	const w, h, pad = 600, 200, 30
	d := chartData{Width: w, Height: h, Points: len(series), Series: series}
	if len(series) == 0 {
		return d
	}
	for _, p := range series {
		if p.Open.Hidden || p.Overdue.Hidden {
			// A suppressed count has no place on a line: the table shows
			// the series ("<k").
			return d
		}
		d.Max = max(d.Max, p.Open.N, p.Overdue.N)
	}
	top := max(d.Max, 1)
	x := func(i int) float64 {
		if len(series) == 1 {
			return pad
		}
		return pad + float64(i)*float64(w-2*pad)/float64(len(series)-1)
	}
	y := func(v int) float64 { return float64(h-pad) - float64(v)*float64(h-2*pad)/float64(top) }
	var open, over strings.Builder
	for i, p := range series {
		fmt.Fprintf(&open, "%.1f,%.1f ", x(i), y(p.Open.N))
		fmt.Fprintf(&over, "%.1f,%.1f ", x(i), y(p.Overdue.N))
	}
	d.OpenPath, d.OverduePath = strings.TrimSpace(open.String()), strings.TrimSpace(over.String())
	step := int(math.Max(1, math.Ceil(float64(top)/4)))
	for v := 0; v <= top; v += step {
		d.YTicks = append(d.YTicks, chartTick{Y: y(v), Label: v})
	}
	n := len(series) - 1
	last := -1
	for _, i := range []int{0, n / 4, n / 2, 3 * n / 4, n} {
		if i != last {
			d.XTicks = append(d.XTicks, chartXTick{X: x(i), At: series[i].At})
			last = i
		}
	}
	d.First, d.Last = series[0].At, series[n].At
	d.LastOpen, d.LastO = series[n].Open.N, series[n].Overdue.N
	return d
}

type seriesPoint struct {
	At      time.Time `json:"at"`
	Open    count     `json:"open"`
	Overdue count     `json:"overdue"`
}

// translate looks a key up in the console's texts; unknown keys show as is.
func translate(lang, key string) string {
	if t, ok := texts[key]; ok {
		if lang == "en" {
			return t[1]
		}
		return t[0]
	}
	return key
}
