// This file is the e-mail channel: each delivery is one plain-text message,
// in Dutch (the default) or English, sent through an SMTP relay with
// STARTTLS (required unless Mailer.Insecure, for loopback test relays) and,
// when configured, AUTH PLAIN. The message names the kind of notification
// in words and lists its ids, its link and its time; it carries its
// idempotency key in the header
//
//	Idempotency-Key: <Notification.ID>
//
// and in its Message-ID, so repeats are recognisable. A failed delivery
// (network error, 4xx reply) is retried with exponential backoff and full
// jitter, like the webhook's (see retry); 5xx replies are final. Errors name
// the SMTP stage and the relay's reply code, never the recipient or the
// message: a staff member's address is personal data.

package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"slices"
	"strings"
	"text/template"
	"time"
)

// Mailer delivers notifications by e-mail through an SMTP relay. It is safe
// for concurrent use once configured.
type Mailer struct {
	Addr     string // host:port of the SMTP relay
	From     string // sender address (also gives the Message-ID's domain)
	Username string // optional: AUTH PLAIN after STARTTLS
	Password string
	// TLS configures STARTTLS; nil, or an empty ServerName, verifies the
	// relay's certificate for the host of Addr.
	TLS *tls.Config
	// Insecure allows a relay that does not offer STARTTLS: only for
	// loopback test relays. By default the relay must offer it, or delivery
	// fails with ErrNoStartTLS.
	Insecure bool
	Attempts int           // tries per delivery (default 5)
	Base     time.Duration // first backoff (default 500ms); doubled each retry, full jitter
	Max      time.Duration // backoff cap (default 1 minute)
	Sleep    func(context.Context, time.Duration) error
	// Retried counts retries, for metrics; may be nil.
	Retried func()
	Now     func() time.Time // the Date header (default time.Now)
	Hello   string           // the EHLO name (default "localhost")
}

// Errors of Mailer.Deliver that are final: nothing is sent.
var (
	ErrInvalidRecipient = errors.New("notify: the recipient is not a single valid e-mail address")
	ErrHeaderInjection  = errors.New("notify: a line break in a header value")
	ErrNoStartTLS       = errors.New("notify: the SMTP relay does not offer STARTTLS, which is required (Mailer.Insecure is for loopback test relays only)")
)

// smtpTimeout bounds one SMTP conversation (and its dial).
const smtpTimeout = 30 * time.Second

// Deliver e-mails n to the address to, in lang ("nl", the default, or
// "en"), retrying as the file comment says. It returns nil once the relay
// accepted the message, and the last error otherwise (the caller
// dead-letters it). An invalid recipient, a line break in a header value or
// an invalid configuration fails before the relay is contacted.
func (m *Mailer) Deliver(ctx context.Context, to string, lang string, n Notification) error {
	host, _, err := net.SplitHostPort(m.Addr)
	if err != nil || host == "" {
		return errors.New("notify: Mailer.Addr must be host:port")
	}
	if strings.ContainsAny(m.Hello, "\r\n") {
		return fmt.Errorf("%w: Hello", ErrHeaderInjection)
	}
	msg, from, rcpt, err := m.message(to, lang, n)
	if err != nil {
		return err
	}
	tlsConf := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if m.TLS != nil {
		tlsConf = m.TLS.Clone()
		if tlsConf.ServerName == "" {
			tlsConf.ServerName = host
		}
	}
	return retry(ctx, m.Attempts, m.Base, m.Max, m.Sleep, m.Retried, func() (bool, error) {
		return m.send(ctx, host, tlsConf, from, rcpt, msg)
	})
}

// send holds one SMTP conversation; retry reports whether its failure is
// transient.
func (m *Mailer) send(ctx context.Context, host string, tlsConf *tls.Config, from, to string, msg []byte) (retry bool, err error) {
	d := net.Dialer{Timeout: smtpTimeout}
	conn, err := d.DialContext(ctx, "tcp", m.Addr)
	if err != nil {
		return smtpFailed(ctx, "dial", err)
	}
	_ = conn.SetDeadline(time.Now().Add(smtpTimeout))
	// net/smtp knows no context: a context that ends (its deadline or a
	// cancel) ends the conversation by expiring the connection's deadline,
	// after ctx.Err is set, so the failure is not mistaken for a transient one.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		conn.Close()
		return smtpFailed(ctx, "greeting", err)
	}
	defer c.Close()
	fail := func(stage string, err error) (bool, error) {
		var te *textproto.Error
		if errors.As(err, &te) {
			_ = c.Quit() // the session still stands: leave politely
		}
		return smtpFailed(ctx, stage, err)
	}
	hello := m.Hello
	if hello == "" {
		hello = "localhost"
	}
	if err := c.Hello(hello); err != nil {
		return fail("EHLO", err)
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		if err := c.StartTLS(tlsConf); err != nil {
			return fail("STARTTLS", err)
		}
	} else if !m.Insecure {
		_ = c.Quit()
		return false, ErrNoStartTLS
	}
	if m.Username != "" {
		ok, mechs := c.Extension("AUTH")
		if !ok || !slices.Contains(strings.Fields(strings.ToUpper(mechs)), "PLAIN") {
			_ = c.Quit()
			return false, errors.New("notify: the SMTP relay does not offer AUTH PLAIN")
		}
		if err := c.Auth(smtp.PlainAuth("", m.Username, m.Password, host)); err != nil {
			return fail("AUTH", err)
		}
	}
	if err := c.Mail(from); err != nil {
		return fail("MAIL", err)
	}
	if err := c.Rcpt(to); err != nil {
		return fail("RCPT", err)
	}
	w, err := c.Data()
	if err != nil {
		return fail("DATA", err)
	}
	if _, err := w.Write(msg); err != nil {
		return fail("DATA", err)
	}
	if err := w.Close(); err != nil {
		return fail("DATA", err)
	}
	_ = c.Quit() // the relay has the message: a failing QUIT changes nothing
	return false, nil
}

// smtpReplyError is a relay's error reply, without personal data.
type smtpReplyError struct {
	Stage string // the command: MAIL, RCPT, DATA, ...
	Code  int
	Msg   string // the reply text, addresses redacted
}

func (e *smtpReplyError) Error() string {
	return fmt.Sprintf("notify: SMTP relay answered %s with %d %s", e.Stage, e.Code, e.Msg)
}

// smtpFailed wraps the error of an SMTP stage and says whether it is
// transient: network errors and 4xx replies are, unless ctx is done; 5xx
// replies, TLS failures, unknown hosts and the rest are final. A reply's
// text loses every word with an '@' (relays echo addresses).
func smtpFailed(ctx context.Context, stage string, err error) (retry bool, _ error) {
	if ctx.Err() != nil {
		return false, fmt.Errorf("notify: SMTP %s: %w", stage, ctx.Err())
	}
	var te *textproto.Error
	if errors.As(err, &te) {
		words := strings.Fields(te.Msg)
		for i, w := range words {
			if strings.Contains(w, "@") {
				words[i] = "<redacted>"
			}
		}
		msg := strings.Join(words, " ")
		if len(msg) > 200 {
			msg = strings.ToValidUTF8(msg[:200], "") + "…"
		}
		return te.Code >= 400 && te.Code < 500, &smtpReplyError{Stage: stage, Code: te.Code, Msg: msg}
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		return false, fmt.Errorf("notify: SMTP %s: %w", stage, err)
	}
	var ne net.Error
	transient := errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
	return transient, fmt.Errorf("notify: SMTP %s: %w", stage, err)
}

// message renders n for to in lang and returns the message (CRLF line
// endings) and the envelope's sender and recipient.
func (m *Mailer) message(to, lang string, n Notification) (msg []byte, from, rcpt string, err error) {
	if strings.ContainsAny(to, "\r\n") {
		return nil, "", "", fmt.Errorf("%w: To", ErrHeaderInjection)
	}
	if strings.ContainsAny(m.From, "\r\n") {
		return nil, "", "", fmt.Errorf("%w: From", ErrHeaderInjection)
	}
	if strings.ContainsAny(n.ID, "\r\n") {
		return nil, "", "", fmt.Errorf("%w: Idempotency-Key", ErrHeaderInjection)
	}
	toAddr, err := mail.ParseAddress(to)
	if err != nil { // its message may quote the address: not passed on
		return nil, "", "", ErrInvalidRecipient
	}
	fromAddr, err := mail.ParseAddress(m.From)
	if err != nil {
		return nil, "", "", errors.New("notify: Mailer.From is not a valid e-mail address")
	}
	if !isMsgIDPart(n.ID) {
		return nil, "", "", errors.New("notify: the notification id cannot be part of a Message-ID")
	}
	subject, body, err := renderMail(lang, n)
	if err != nil {
		return nil, "", "", err
	}
	if strings.ContainsAny(subject, "\r\n") {
		return nil, "", "", fmt.Errorf("%w: Subject", ErrHeaderInjection)
	}
	now := time.Now
	if m.Now != nil {
		now = m.Now
	}
	domain := fromAddr.Address[strings.LastIndexByte(fromAddr.Address, '@')+1:]
	headers := [][2]string{
		{"From", fromAddr.String()},
		{"To", toAddr.String()},
		{"Subject", mime.QEncoding.Encode("utf-8", subject)},
		{"Date", now().Format(time.RFC1123Z)},
		{"Message-ID", "<" + n.ID + "@" + domain + ">"},
		{"Idempotency-Key", n.ID},
		{"Auto-Submitted", "auto-generated"},
		{"MIME-Version", "1.0"},
		{"Content-Type", "text/plain; charset=utf-8"},
		{"Content-Transfer-Encoding", "quoted-printable"},
	}
	var b bytes.Buffer
	for _, h := range headers {
		if strings.ContainsAny(h[1], "\r\n") {
			return nil, "", "", fmt.Errorf("%w: %s", ErrHeaderInjection, h[0])
		}
		v := h[1]
		if h[0] == "Subject" { // fold between encoded-words, which hold no spaces
			v = strings.ReplaceAll(v, "?= =?", "?=\r\n =?")
		}
		b.WriteString(h[0] + ": " + v + "\r\n")
	}
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b) // writes each line break as CRLF
	if _, err := qp.Write([]byte(body)); err != nil {
		return nil, "", "", err
	}
	if err := qp.Close(); err != nil {
		return nil, "", "", err
	}
	return b.Bytes(), fromAddr.Address, toAddr.Address, nil
}

// isMsgIDPart reports whether id can be the left part of a Message-ID
// (RFC 5322 dot-atom-text).
func isMsgIDPart(id string) bool {
	if id == "" || id[0] == '.' || id[len(id)-1] == '.' || strings.Contains(id, "..") {
		return false
	}
	for _, r := range id {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
		case strings.ContainsRune("!#$%&'*+-/=?^_`{|}~.", r):
		default:
			return false
		}
	}
	return true
}

// mailData is what the templates see: the notification, its kind in words
// and its time in UTC.
type mailData struct {
	Notification
	KindText string
	AtUTC    string // RFC 3339; empty for a zero time
}

// renderMail returns the subject and the body ('\n' line endings) of n in
// lang: the templates "kind/<kind>", "subject/<kind>" and "body/<kind>",
// or those of "generic" for an unknown kind.
func renderMail(lang string, n Notification) (subject, body string, err error) {
	t := mailTemplates["nl"]
	if l, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(lang)), "-"); mailTemplates[l] != nil {
		t = mailTemplates[l]
	}
	kind := n.Kind
	if t.Lookup("body/"+kind) == nil {
		kind = "generic"
	}
	d := mailData{Notification: n}
	if !n.At.IsZero() {
		d.AtUTC = n.At.UTC().Format(time.RFC3339)
	}
	exec := func(name string) (string, error) {
		var b strings.Builder
		if err := t.ExecuteTemplate(&b, name, d); err != nil {
			return "", fmt.Errorf("notify: e-mail template %s: %w", name, err)
		}
		return b.String(), nil
	}
	if d.KindText, err = exec("kind/" + kind); err != nil {
		return "", "", err
	}
	if subject, err = exec("subject/" + kind); err != nil {
		return "", "", err
	}
	if body, err = exec("body/" + kind); err != nil {
		return "", "", err
	}
	return subject, strings.TrimSpace(body) + "\n", nil
}

// mailTemplates are the e-mail texts by language. Every kind defines
// kind/<kind> (the kind in words), subject/<kind> and body/<kind>; the
// bodies end with "details", the ids, link and time. Only ids, codes, the
// link and the time are dynamic: never personal data.
var mailTemplates = map[string]*template.Template{
	"nl": template.Must(template.New("nl").Parse(`
{{define "kind/handed_over"}}signaal overgedragen{{end}}
{{define "subject/handed_over"}}Buurtsignaal: signaal overgedragen aan uw team{{end}}
{{define "body/handed_over"}}Er is een signaal overgedragen aan uw team.
{{template "details" .}}{{end}}

{{define "kind/matched"}}signalen gekoppeld{{end}}
{{define "subject/matched"}}Buurtsignaal: signalen over dezelfde betrokkene gekoppeld{{end}}
{{define "body/matched"}}Signalen over dezelfde betrokkene zijn gekoppeld; uw team heeft er een of meer van.
{{template "details" .}}{{end}}

{{define "kind/norm_lapsing"}}reactienorm verloopt bijna{{end}}
{{define "subject/norm_lapsing"}}Buurtsignaal: reactienorm verloopt bijna{{end}}
{{define "body/norm_lapsing"}}De reactienorm van een signaal verloopt bijna en er is nog geen eerste reactie.
{{template "details" .}}{{end}}

{{define "kind/norm_lapsed"}}reactienorm verlopen{{end}}
{{define "subject/norm_lapsed"}}Buurtsignaal: reactienorm verlopen{{end}}
{{define "body/norm_lapsed"}}De reactienorm van een signaal is verlopen zonder eerste reactie.
{{template "details" .}}{{end}}

{{define "kind/norm_escalated"}}signaal geëscaleerd{{end}}
{{define "subject/norm_escalated"}}Buurtsignaal: signaal geëscaleerd, reactienorm driemaal overschreden{{end}}
{{define "body/norm_escalated"}}Een signaal heeft na driemaal de reactienorm nog geen eerste reactie en is geëscaleerd naar de coördinatoren.
{{template "details" .}}{{end}}

{{define "kind/referral_made"}}doorverwijzing{{end}}
{{define "subject/referral_made"}}Buurtsignaal: nieuwe doorverwijzing naar uw organisatie{{end}}
{{define "body/referral_made"}}Er is een doorverwijzing naar uw organisatie gedaan.
{{template "details" .}}{{end}}

{{define "kind/feedback_given"}}terugkoppeling{{end}}
{{define "subject/feedback_given"}}Buurtsignaal: terugkoppeling op uw signaal{{end}}
{{define "body/feedback_given"}}Er is terugkoppeling gegeven op een signaal dat u hebt gemeld.
{{template "details" .}}{{end}}

{{define "kind/review_overdue"}}beoordeling te laat{{end}}
{{define "subject/review_overdue"}}Buurtsignaal: een inzage wacht te lang op beoordeling{{end}}
{{define "body/review_overdue"}}Een doorbraak of signalering uit het toegangslog is niet binnen de termijn beoordeeld. Beoordeel hem in de console onder Privacy, Te beoordelen inzage.
{{template "details" .}}{{end}}
{{define "kind/unrouted"}}signaal zonder team{{end}}
{{define "subject/unrouted"}}Buurtsignaal: signaal na een werkdag nog zonder team{{end}}
{{define "body/unrouted"}}Een signaal is een werkdag na de melding nog niet overgedragen aan een team. Draag het over of vraag de melder dat te doen.
{{template "details" .}}{{end}}

{{define "kind/generic"}}melding ({{.Kind}}){{end}}
{{define "subject/generic"}}Buurtsignaal: melding over een signaal{{end}}
{{define "body/generic"}}Er is een melding over een signaal.
{{template "details" .}}{{end}}

{{define "details"}}
Soort melding: {{.KindText}}
{{- with .Signal}}
Signaal: {{.}}{{end}}
{{- with .Team}}
Team: {{.}}{{end}}
{{- with .Org}}
Organisatie: {{.}}{{end}}
{{- with .Referral}}
Doorverwijzing: {{.}}{{end}}
{{- with .Code}}
Code terugkoppeling: {{.}}{{end}}
{{- with .ReviewItem}}
Te beoordelen: {{.}}{{end}}
{{- with .AtUTC}}
Tijdstip (UTC): {{.}}{{end}}
{{- with .Link}}
Link: {{.}}{{end}}
Kenmerk melding: {{.ID}}

Dit bericht bevat geen persoonsgegevens. Open de link en log in om het signaal te bekijken.
{{end}}
`)),
	"en": template.Must(template.New("en").Parse(`
{{define "kind/handed_over"}}signal handed over{{end}}
{{define "subject/handed_over"}}Buurtsignaal: signal handed over to your team{{end}}
{{define "body/handed_over"}}A signal has been handed over to your team.
{{template "details" .}}{{end}}

{{define "kind/matched"}}signals matched{{end}}
{{define "subject/matched"}}Buurtsignaal: signals about the same person matched{{end}}
{{define "body/matched"}}Signals about the same person have been matched; your team holds one or more of them.
{{template "details" .}}{{end}}

{{define "kind/norm_lapsing"}}response norm about to lapse{{end}}
{{define "subject/norm_lapsing"}}Buurtsignaal: response norm about to lapse{{end}}
{{define "body/norm_lapsing"}}The response norm of a signal is about to lapse and there is no first response yet.
{{template "details" .}}{{end}}

{{define "kind/norm_lapsed"}}response norm lapsed{{end}}
{{define "subject/norm_lapsed"}}Buurtsignaal: response norm lapsed{{end}}
{{define "body/norm_lapsed"}}The response norm of a signal has lapsed without a first response.
{{template "details" .}}{{end}}

{{define "kind/norm_escalated"}}signal escalated{{end}}
{{define "subject/norm_escalated"}}Buurtsignaal: signal escalated, response norm passed three times{{end}}
{{define "body/norm_escalated"}}A signal still has no first response after three times its response norm and has been escalated to the coordinators.
{{template "details" .}}{{end}}

{{define "kind/referral_made"}}referral{{end}}
{{define "subject/referral_made"}}Buurtsignaal: new referral to your organisation{{end}}
{{define "body/referral_made"}}A referral to your organisation has been made.
{{template "details" .}}{{end}}

{{define "kind/feedback_given"}}feedback{{end}}
{{define "subject/feedback_given"}}Buurtsignaal: feedback on your signal{{end}}
{{define "body/feedback_given"}}Feedback has been given on a signal you reported.
{{template "details" .}}{{end}}

{{define "kind/review_overdue"}}review overdue{{end}}
{{define "subject/review_overdue"}}Buurtsignaal: an access waits too long for review{{end}}
{{define "body/review_overdue"}}A break-glass read or a flag from the access log was not reviewed within the term. Review it in the console under Privacy, Access to review.
{{template "details" .}}{{end}}
{{define "kind/unrouted"}}signal without a team{{end}}
{{define "subject/unrouted"}}Buurtsignaal: signal still without a team after a working day{{end}}
{{define "body/unrouted"}}A signal has not been handed over to a team one working day after it was raised. Hand it over, or ask the signaller to.
{{template "details" .}}{{end}}

{{define "kind/generic"}}notification ({{.Kind}}){{end}}
{{define "subject/generic"}}Buurtsignaal: notification about a signal{{end}}
{{define "body/generic"}}There is a notification about a signal.
{{template "details" .}}{{end}}

{{define "details"}}
Kind of notification: {{.KindText}}
{{- with .Signal}}
Signal: {{.}}{{end}}
{{- with .Team}}
Team: {{.}}{{end}}
{{- with .Org}}
Organisation: {{.}}{{end}}
{{- with .Referral}}
Referral: {{.}}{{end}}
{{- with .Code}}
Feedback code: {{.}}{{end}}
{{- with .ReviewItem}}
To review: {{.}}{{end}}
{{- with .AtUTC}}
Time (UTC): {{.}}{{end}}
{{- with .Link}}
Link: {{.}}{{end}}
Notification reference: {{.ID}}

This message contains no personal data. Open the link and sign in to see the signal.
{{end}}
`)),
}

// retry runs try until it succeeds, reports its failure as final, or has
// run attempts times (default 5); it returns nil or try's last error. Before
// each retry it calls retried (may be nil) and sleeps, with sleep (default
// sleepCtx), a random time in [0, backoff] (full jitter), where backoff
// starts at base (default 500ms) and doubles each retry up to maxWait
// (default 1 minute). An error of sleep (ctx done) ends it with that error.
func retry(ctx context.Context, attempts int, base, maxWait time.Duration, sleep func(context.Context, time.Duration) error, retried func(), try func() (retry bool, err error)) error {
	if attempts <= 0 {
		attempts = 5
	}
	if base <= 0 {
		base = 500 * time.Millisecond
	}
	if maxWait <= 0 {
		maxWait = time.Minute
	}
	if sleep == nil {
		sleep = sleepCtx
	}
	backoff := min(base, maxWait)
	var last error
	for i := 0; i < attempts; i++ {
		if i > 0 {
			if retried != nil {
				retried()
			}
			if err := sleep(ctx, time.Duration(rand.Int64N(int64(backoff)+1))); err != nil {
				return err
			}
			if backoff > maxWait/2 {
				backoff = maxWait
			} else {
				backoff *= 2
			}
		}
		again, err := try()
		if err == nil {
			return nil
		}
		last = err
		if !again {
			break
		}
	}
	return last
}
