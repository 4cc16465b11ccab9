package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/buurtsignaal/buurtsignaal/adapters/notify/notifytest"
	"github.com/buurtsignaal/buurtsignaal/domain"
)

// noSMTPLeaks fails the test if it leaves goroutines behind; it runs after
// the relays' cleanups.
func noSMTPLeaks(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

// mailLog records a Mailer's waits and retries.
type mailLog struct {
	waits   []time.Duration
	retried int
}

// testMailer returns a Mailer for relay that trusts its certificate, sleeps
// not at all and records into log.
func testMailer(relay *notifytest.Relay, log *mailLog) *Mailer {
	_, pool := notifytest.Cert()
	return &Mailer{
		Addr: relay.Addr, From: "buurtsignaal@buurtsignaal.example",
		TLS:      &tls.Config{RootCAs: pool},
		Attempts: 5, Base: 10 * time.Millisecond, Max: 15 * time.Millisecond,
		Sleep:   func(_ context.Context, d time.Duration) error { log.waits = append(log.waits, d); return nil },
		Retried: func() { log.retried++ },
		Now:     func() time.Time { return time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC) },
		Hello:   "buurtsignaal.test",
	}
}

// The recipient: a staff member's work address, personal data.
const mailTo = "ans.de.vries@wijkteam.example"

var mailNote = Notification{
	ID: "6f1c2a9e-3b7d-5c1e-9a4f-2d8b7c6e5a10", Kind: domain.NotifyNormEscalated,
	Signal: "sig-4711", Team: "team-noord", Org: "org-wijkzorg",
	Link:    "https://buurtsignaal.example/signalen/sig-4711",
	At:      time.Date(2026, 3, 2, 9, 30, 0, 0, time.FixedZone("CET", 3600)),
	Network: "net-utrecht",
}

// parsedMail is a message as a reader sees it: the headers that matter,
// the subject decoded, and the body decoded with '\n' line endings.
type parsedMail struct {
	Header map[string]string
	Body   string
}

func parseMail(t *testing.T, raw string) parsedMail {
	t.Helper()
	if strings.Contains(strings.ReplaceAll(raw, "\r\n", ""), "\n") || strings.Contains(strings.ReplaceAll(raw, "\r\n", ""), "\r") {
		t.Errorf("a line does not end in CRLF:\n%q", raw)
	}
	for i := 0; i < len(raw); i++ {
		if raw[i] >= 0x80 {
			t.Fatalf("byte %d is not 7-bit: %q", i, raw)
		}
	}
	msg, err := mail.ReadMessage(strings.NewReader(raw))
	if err != nil {
		t.Fatalf("ReadMessage: %v", err)
	}
	p := parsedMail{Header: map[string]string{}}
	for _, k := range []string{"From", "To", "Subject", "Date", "Message-Id", "Idempotency-Key", "Auto-Submitted", "Mime-Version", "Content-Type", "Content-Transfer-Encoding"} {
		p.Header[k] = msg.Header.Get(k)
	}
	if p.Header["Subject"], err = new(mime.WordDecoder).DecodeHeader(p.Header["Subject"]); err != nil {
		t.Fatalf("Subject: %v", err)
	}
	body, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if err != nil {
		t.Fatalf("quoted-printable body: %v", err)
	}
	p.Body = strings.ReplaceAll(string(body), "\r\n", "\n")
	return p
}

func TestMailerDelivers(t *testing.T) {
	noSMTPLeaks(t)
	header := func(subject string) map[string]string {
		return map[string]string{
			"From":                      "<buurtsignaal@buurtsignaal.example>",
			"To":                        "<" + mailTo + ">",
			"Subject":                   subject,
			"Date":                      "Mon, 02 Mar 2026 10:00:00 +0000",
			"Message-Id":                "<6f1c2a9e-3b7d-5c1e-9a4f-2d8b7c6e5a10@buurtsignaal.example>",
			"Idempotency-Key":           "6f1c2a9e-3b7d-5c1e-9a4f-2d8b7c6e5a10",
			"Auto-Submitted":            "auto-generated",
			"Mime-Version":              "1.0",
			"Content-Type":              "text/plain; charset=utf-8",
			"Content-Transfer-Encoding": "quoted-printable",
		}
	}
	nlBody := `Een signaal heeft na driemaal de reactienorm nog geen eerste reactie en is geëscaleerd naar de coördinatoren.

Soort melding: signaal geëscaleerd
Signaal: sig-4711
Team: team-noord
Organisatie: org-wijkzorg
Tijdstip (UTC): 2026-03-02T08:30:00Z
Link: https://buurtsignaal.example/signalen/sig-4711
Kenmerk melding: 6f1c2a9e-3b7d-5c1e-9a4f-2d8b7c6e5a10

Dit bericht bevat geen persoonsgegevens. Open de link en log in om het signaal te bekijken.
`
	enBody := `A signal still has no first response after three times its response norm and has been escalated to the coordinators.

Kind of notification: signal escalated
Signal: sig-4711
Team: team-noord
Organisation: org-wijkzorg
Time (UTC): 2026-03-02T08:30:00Z
Link: https://buurtsignaal.example/signalen/sig-4711
Notification reference: 6f1c2a9e-3b7d-5c1e-9a4f-2d8b7c6e5a10

This message contains no personal data. Open the link and sign in to see the signal.
`
	nlSubject := "Buurtsignaal: signaal geëscaleerd, reactienorm driemaal overschreden"
	enSubject := "Buurtsignaal: signal escalated, response norm passed three times"
	tests := []struct {
		lang string
		want parsedMail
	}{
		{"nl", parsedMail{header(nlSubject), nlBody}},
		{"en", parsedMail{header(enSubject), enBody}},
		{"", parsedMail{header(nlSubject), nlBody}},   // Dutch is the default
		{"fr", parsedMail{header(nlSubject), nlBody}}, // and the fallback
		{"en-GB", parsedMail{header(enSubject), enBody}},
	}
	for _, tt := range tests {
		t.Run("lang="+tt.lang, func(t *testing.T) {
			relay := (&notifytest.Relay{TLS: func() *tls.Config { c, _ := notifytest.Cert(); return c }()}).Start(t)
			var log mailLog
			if err := testMailer(relay, &log).Deliver(context.Background(), mailTo, tt.lang, mailNote); err != nil {
				t.Fatalf("Deliver: %v", err)
			}
			conns, _, mails := relay.Seen()
			if conns != 1 || len(mails) != 1 || log.retried != 0 {
				t.Fatalf("%d connections, %d messages, %d retries; want 1, 1, 0", conns, len(mails), log.retried)
			}
			envelope := notifytest.Mail{From: "buurtsignaal@buurtsignaal.example", To: []string{mailTo}, TLS: true}
			if diff := cmp.Diff(envelope, mails[0], cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Data" }, cmp.Ignore())); diff != "" {
				t.Errorf("envelope (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.want, parseMail(t, mails[0].Data)); diff != "" {
				t.Errorf("message (-want +got):\n%s", diff)
			}
			if raw := mails[0].Data; tt.want.Header["Subject"] == nlSubject && !strings.Contains(raw, "Subject: =?utf-8?q?") {
				t.Errorf("the Dutch subject is not Q-encoded:\n%s", raw)
			}
		})
	}
}

func TestMailerStartTLS(t *testing.T) {
	noSMTPLeaks(t)
	serverTLS, _ := notifytest.Cert()
	tests := []struct {
		name      string
		offered   bool
		insecure  bool
		untrusted bool // the Mailer trusts only the system's roots
		wantErr   func(error) bool
		wantTLS   bool
	}{
		{name: "offered and used", offered: true, wantTLS: true},
		{name: "offered and used even when Insecure", offered: true, insecure: true, wantTLS: true},
		{name: "not offered: required", wantErr: func(err error) bool { return errors.Is(err, ErrNoStartTLS) }},
		{name: "not offered: Insecure allows plain text", insecure: true},
		{name: "untrusted certificate", offered: true, untrusted: true, wantErr: func(err error) bool {
			var ve *tls.CertificateVerificationError
			return errors.As(err, &ve)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			relay := &notifytest.Relay{}
			if tt.offered {
				relay.TLS = serverTLS
			}
			relay.Start(t)
			var log mailLog
			m := testMailer(relay, &log)
			m.Insecure = tt.insecure
			if tt.untrusted {
				m.TLS = nil
			}
			err := m.Deliver(context.Background(), mailTo, "nl", mailNote)
			conns, _, mails := relay.Seen()
			if tt.wantErr != nil {
				if err == nil || !tt.wantErr(err) {
					t.Fatalf("Deliver = %v, want the error of the case", err)
				}
				if conns != 1 || len(mails) != 0 || log.retried != 0 {
					t.Fatalf("%d connections, %d messages, %d retries; want a final error: 1, 0, 0", conns, len(mails), log.retried)
				}
				return
			}
			if err != nil {
				t.Fatalf("Deliver: %v", err)
			}
			if len(mails) != 1 || mails[0].TLS != tt.wantTLS {
				t.Fatalf("messages %+v, want one with TLS %v", mails, tt.wantTLS)
			}
		})
	}
}

func TestMailerAuth(t *testing.T) {
	noSMTPLeaks(t)
	serverTLS, _ := notifytest.Cert()
	tests := []struct {
		name             string
		relayUser        string // "": the relay offers no AUTH
		username, passwd string
		wantAuths        []string
		wantCode         int    // the relay's final reply code; 0: delivered
		wantErr          string // part of the error when there is no reply code
	}{
		{name: "credentials accepted", relayUser: "relay-user", username: "relay-user", passwd: "s3cret", wantAuths: []string{"relay-user:s3cret"}},
		{name: "wrong password is final", relayUser: "relay-user", username: "relay-user", passwd: "wrong", wantAuths: []string{"relay-user:wrong"}, wantCode: 535},
		{name: "no credentials for a relay that wants them", relayUser: "relay-user", wantCode: 530},
		{name: "credentials for a relay without AUTH", username: "relay-user", passwd: "s3cret", wantErr: "does not offer AUTH PLAIN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			relay := (&notifytest.Relay{TLS: serverTLS, User: tt.relayUser, Pass: "s3cret"}).Start(t)
			var log mailLog
			m := testMailer(relay, &log)
			m.Username, m.Password = tt.username, tt.passwd
			err := m.Deliver(context.Background(), mailTo, "en", mailNote)
			conns, _, mails := relay.Seen()
			auths := relay.Auths()
			if diff := cmp.Diff(tt.wantAuths, auths); diff != "" {
				t.Errorf("AUTH PLAIN seen by the relay (-want +got):\n%s", diff)
			}
			var re *smtpReplyError
			switch {
			case tt.wantCode != 0:
				if !errors.As(err, &re) || re.Code != tt.wantCode {
					t.Fatalf("Deliver = %v, want the relay's %d", err, tt.wantCode)
				}
			case tt.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Deliver = %v, want %q", err, tt.wantErr)
				}
			default:
				if err != nil {
					t.Fatalf("Deliver: %v", err)
				}
				if len(mails) != 1 || mails[0].Auth != tt.username || !mails[0].TLS {
					t.Fatalf("messages %+v, want one sent by %s over TLS", mails, tt.username)
				}
				return
			}
			if conns != 1 || len(mails) != 0 || log.retried != 0 {
				t.Fatalf("%d connections, %d messages, %d retries; want a final error: 1, 0, 0", conns, len(mails), log.retried)
			}
		})
	}
}

func TestMailerRetries(t *testing.T) {
	noSMTPLeaks(t)
	serverTLS, _ := notifytest.Cert()
	down := func() string { // a port nobody listens on
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().String()
	}()
	tests := []struct {
		name      string
		relay     *notifytest.Relay
		addr      string // overrides the relay's
		attempts  int
		wantCode  int // the last reply code; 0: delivered, -1: a network error
		wantConns int
		wantDatas int
		wantMails int
	}{
		{name: "451 twice, then accepted", relay: &notifytest.Relay{TempFail: 2}, attempts: 5, wantConns: 3, wantDatas: 3, wantMails: 1},
		{name: "451 until the attempts run out", relay: &notifytest.Relay{TempFail: 100}, attempts: 3, wantCode: 451, wantConns: 3, wantDatas: 3},
		{name: "550 is final after one attempt", relay: &notifytest.Relay{Refuse: true}, attempts: 5, wantCode: 550, wantConns: 1, wantDatas: 1},
		{name: "relay down: network errors are retried", relay: &notifytest.Relay{}, addr: down, attempts: 4, wantCode: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			relay := tt.relay
			relay.TLS = serverTLS
			relay.Start(t)
			var log mailLog
			m := testMailer(relay, &log)
			m.Attempts = tt.attempts
			if tt.addr != "" {
				m.Addr = tt.addr
			}
			err := m.Deliver(context.Background(), mailTo, "nl", mailNote)
			var re *smtpReplyError
			switch tt.wantCode {
			case 0:
				if err != nil {
					t.Fatalf("Deliver: %v", err)
				}
			case -1:
				var ne net.Error
				if !errors.As(err, &ne) {
					t.Fatalf("Deliver = %v, want a network error", err)
				}
			default:
				if !errors.As(err, &re) || re.Code != tt.wantCode || re.Stage != "DATA" {
					t.Fatalf("Deliver = %v, want the relay's %d to DATA", err, tt.wantCode)
				}
			}
			if err != nil && strings.Contains(err.Error(), mailTo) {
				t.Errorf("the error names the recipient: %v", err)
			}
			conns, datas, mails := relay.Seen()
			if conns != tt.wantConns || datas != tt.wantDatas || len(mails) != tt.wantMails {
				t.Errorf("%d connections, %d DATA, %d messages; want %d, %d, %d", conns, datas, len(mails), tt.wantConns, tt.wantDatas, tt.wantMails)
			}
			wantRetries := tt.attempts - 1
			if tt.wantCode == 550 {
				wantRetries = 0
			} else if tt.wantCode == 0 {
				wantRetries = tt.wantConns - 1
			}
			if log.retried != wantRetries || len(log.waits) != wantRetries {
				t.Fatalf("%d retries, %d waits; want %d", log.retried, len(log.waits), wantRetries)
			}
			for i, d := range log.waits { // full jitter under 10ms, then the 15ms cap
				if limit := min(15*time.Millisecond, 10*time.Millisecond<<i); d < 0 || d > limit {
					t.Errorf("wait %d = %v, want within [0, %v]", i, d, limit)
				}
			}
		})
	}
}

func TestMailerRespectsContext(t *testing.T) {
	noSMTPLeaks(t)
	relay := (&notifytest.Relay{Stall: true}).Start(t) // never greets
	var log mailLog
	m := testMailer(relay, &log)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := m.Deliver(ctx, mailTo, "nl", mailNote)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Deliver = %v, want the context's deadline", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Deliver took %v after a 200ms deadline", d)
	}
	if log.retried != 0 {
		t.Errorf("%d retries after the context ended, want 0", log.retried)
	}
}

func TestMailerRefusesBeforeContacting(t *testing.T) {
	noSMTPLeaks(t)
	relay := (&notifytest.Relay{}).Start(t)
	withID := func(id string) Notification { n := mailNote; n.ID = id; return n }
	tests := []struct {
		name   string
		to     string
		n      Notification
		config func(*Mailer)
		want   error // nil: any error
	}{
		{name: "not an address", to: "ans de vries", n: mailNote, want: ErrInvalidRecipient},
		{name: "empty address", to: "", n: mailNote, want: ErrInvalidRecipient},
		{name: "two addresses", to: mailTo + ", piet@wijkteam.example", n: mailNote, want: ErrInvalidRecipient},
		{name: "CRLF in the recipient", to: mailTo + "\r\nBcc: piet@elders.example", n: mailNote, want: ErrHeaderInjection},
		{name: "LF in the recipient", to: mailTo + "\nBcc: piet@elders.example", n: mailNote, want: ErrHeaderInjection},
		{name: "CR in the recipient", to: mailTo + "\rBcc: piet@elders.example", n: mailNote, want: ErrHeaderInjection},
		{name: "CRLF in the notification id", to: mailTo, n: withID("n-1\r\nBcc: piet@elders.example"), want: ErrHeaderInjection},
		{name: "no notification id", to: mailTo, n: withID("")},
		{name: "an id unfit for a Message-ID", to: mailTo, n: withID("n 1>")},
		{name: "CRLF in From", to: mailTo, n: mailNote, config: func(m *Mailer) { m.From += "\r\nBcc: piet@elders.example" }, want: ErrHeaderInjection},
		{name: "CRLF in Hello", to: mailTo, n: mailNote, config: func(m *Mailer) { m.Hello += "\r\nRSET" }, want: ErrHeaderInjection},
		{name: "invalid From", to: mailTo, n: mailNote, config: func(m *Mailer) { m.From = "buurtsignaal" }},
		{name: "Addr without a port", to: mailTo, n: mailNote, config: func(m *Mailer) { m.Addr = "127.0.0.1" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log mailLog
			m := testMailer(relay, &log)
			if tt.config != nil {
				tt.config(m)
			}
			err := m.Deliver(context.Background(), tt.to, "nl", tt.n)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Fatalf("Deliver = %v, want %v", err, tt.want)
			}
			if tt.to != "" && strings.Contains(err.Error(), tt.to) {
				t.Errorf("the error quotes the recipient: %v", err)
			}
			if log.retried != 0 {
				t.Errorf("%d retries, want 0", log.retried)
			}
		})
	}
	if conns, _, _ := relay.Seen(); conns != 0 {
		t.Fatalf("the relay was contacted %d times, want 0", conns)
	}
}

// TestMailerNoPersonalData renders every kind in both languages for two
// notifications with different values: with the values replaced by their
// field names the messages are the same, so nothing but the notification's
// fields varies; each value appears, and the recipient only in To.
func TestMailerNoPersonalData(t *testing.T) {
	note := func(x string, at time.Time) Notification {
		return Notification{ID: "id-" + x, Signal: "sig-" + x, Team: "team-" + x, Org: "org-" + x,
			Referral: "ref-" + x, Code: "code-" + x, ReviewItem: "flag:" + x, Link: "https://buurtsignaal.example/s/" + x, At: at, Network: "net-" + x}
	}
	a := note("aaaa", time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC))
	b := note("bbbb", time.Date(2027, 6, 7, 23, 59, 1, 0, time.FixedZone("CEST", 7200)))
	fields := func(n Notification) [][2]string { // in replacement order
		return [][2]string{{n.Link, "{Link}"}, {n.ID, "{ID}"}, {n.Signal, "{Signal}"}, {n.Team, "{Team}"}, {n.Org, "{Org}"},
			{n.Referral, "{Referral}"}, {n.Code, "{Code}"}, {n.ReviewItem, "{ReviewItem}"}, {n.At.UTC().Format(time.RFC3339), "{At}"}}
	}
	kinds := append(append([]string(nil), domain.NotificationKinds...), "some_new_kind")
	for _, lang := range []string{"nl", "en"} {
		if tmpl := mailTemplates[lang]; tmpl == nil {
			t.Fatalf("no templates for %s", lang)
		}
		subjects := map[string]string{}
		for _, kind := range kinds {
			if kind != "some_new_kind" && mailTemplates[lang].Lookup("body/"+kind) == nil {
				t.Errorf("%s: no template for %s", lang, kind)
			}
			m := &Mailer{From: "buurtsignaal@buurtsignaal.example", Now: time.Now}
			var got [2]parsedMail
			for i, n := range []Notification{a, b} {
				n.Kind = kind
				msg, _, _, err := m.message(mailTo, lang, n)
				if err != nil {
					t.Fatalf("%s %s: %v", lang, kind, err)
				}
				p := parseMail(t, string(msg))
				for _, f := range fields(n) {
					if !strings.Contains(p.Body, f[0]) {
						t.Errorf("%s %s: the body lacks %s %q:\n%s", lang, kind, f[1], f[0], p.Body)
					}
					p.Body = strings.ReplaceAll(p.Body, f[0], f[1])
				}
				if strings.Contains(p.Body, n.Network) {
					t.Errorf("%s %s: the body names the network", lang, kind)
				}
				if strings.Count(string(msg), mailTo) != 1 {
					t.Errorf("%s %s: the recipient appears %d times, want once (To)", lang, kind, strings.Count(string(msg), mailTo))
				}
				got[i] = parsedMail{Header: map[string]string{"Subject": p.Header["Subject"]}, Body: p.Body}
			}
			if diff := cmp.Diff(got[0], got[1]); diff != "" {
				t.Errorf("%s %s: more than the notification's fields varies (-a +b):\n%s", lang, kind, diff)
			}
			if prev, dup := subjects[got[0].Header["Subject"]]; dup {
				t.Errorf("%s: %s and %s have the same subject", lang, prev, kind)
			}
			subjects[got[0].Header["Subject"]] = kind
		}
	}
	// Fields left empty leave their lines out.
	subject, body, err := renderMail("en", Notification{ID: "id-1", Kind: domain.NotifyFeedbackGiven, Signal: "sig-1", Code: "code-1"})
	if err != nil {
		t.Fatal(err)
	}
	want := `Feedback has been given on a signal you reported.

Kind of notification: feedback
Signal: sig-1
Feedback code: code-1
Notification reference: id-1

This message contains no personal data. Open the link and sign in to see the signal.
`
	if diff := cmp.Diff([2]string{"Buurtsignaal: feedback on your signal", want}, [2]string{subject, body}); diff != "" {
		t.Errorf("sparse notification (-want +got):\n%s", diff)
	}
}

func TestRetryBackoff(t *testing.T) {
	errTry := errors.New("try failed")
	tests := []struct {
		name            string
		attempts        int
		base, maxWait   time.Duration
		results         []bool // retry of each failed try; past the end: success
		sleepErr        error
		want            error
		wantTries       int
		wantWaitLimits  []time.Duration
		wantRetriedCall int
	}{
		{name: "success at once", attempts: 3, wantTries: 1},
		{name: "success after two transient failures", attempts: 5, base: 100 * time.Millisecond, maxWait: time.Second, results: []bool{true, true},
			wantTries: 3, wantWaitLimits: []time.Duration{100 * time.Millisecond, 200 * time.Millisecond}, wantRetriedCall: 2},
		{name: "backoff doubles up to the cap", attempts: 6, base: 100 * time.Millisecond, maxWait: 300 * time.Millisecond,
			results: []bool{true, true, true, true, true, true}, want: errTry, wantTries: 6, wantRetriedCall: 5,
			wantWaitLimits: []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond, 300 * time.Millisecond, 300 * time.Millisecond}},
		{name: "defaults: 5 tries from 500ms", results: []bool{true, true, true, true, true}, want: errTry, wantTries: 5, wantRetriedCall: 4,
			wantWaitLimits: []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second}},
		{name: "a final failure stops", attempts: 5, results: []bool{true, false}, want: errTry, wantTries: 2, wantRetriedCall: 1,
			wantWaitLimits: []time.Duration{500 * time.Millisecond}},
		{name: "a failing sleep stops", attempts: 5, results: []bool{true}, sleepErr: context.Canceled, want: context.Canceled, wantTries: 1, wantRetriedCall: 1,
			wantWaitLimits: []time.Duration{500 * time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var waits []time.Duration
			tries, retried := 0, 0
			err := retry(context.Background(), tt.attempts, tt.base, tt.maxWait,
				func(_ context.Context, d time.Duration) error { waits = append(waits, d); return tt.sleepErr },
				func() { retried++ },
				func() (bool, error) {
					tries++
					if tries > len(tt.results) {
						return false, nil
					}
					return tt.results[tries-1], fmt.Errorf("%w (%d)", errTry, tries)
				})
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("retry = %v, want %v", err, tt.want)
			}
			if errors.Is(err, errTry) && err.Error() != fmt.Sprintf("try failed (%d)", tries) {
				t.Errorf("retry = %v, want the last error (%d)", err, tries)
			}
			if tries != tt.wantTries || retried != tt.wantRetriedCall || len(waits) != len(tt.wantWaitLimits) {
				t.Fatalf("%d tries, %d retried, waits %v; want %d, %d, %d waits", tries, retried, waits, tt.wantTries, tt.wantRetriedCall, len(tt.wantWaitLimits))
			}
			for i, d := range waits {
				if d < 0 || d > tt.wantWaitLimits[i] {
					t.Errorf("wait %d = %v, want within [0, %v]", i, d, tt.wantWaitLimits[i])
				}
			}
		})
	}
}

// TestSMTPRelayCommands checks the test relay itself with net/smtp: NOOP,
// RSET and a plain-text delivery.
func TestSMTPRelayCommands(t *testing.T) {
	noSMTPLeaks(t)
	relay := (&notifytest.Relay{}).Start(t)
	c, err := smtp.Dial(relay.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	step := func(name string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	step("EHLO", c.Hello("test"))
	step("NOOP", c.Noop())
	step("MAIL", c.Mail("a@relay.test"))
	step("RSET", c.Reset())
	if err := c.Rcpt("b@relay.test"); err == nil {
		t.Fatal("RCPT after RSET: want 503")
	}
	step("MAIL", c.Mail("a@relay.test"))
	step("RCPT", c.Rcpt("b@relay.test"))
	w, err := c.Data()
	step("DATA", err)
	_, err = io.Copy(w, bytes.NewReader([]byte("Subject: x\r\n\r\n.dot\r\n")))
	step("DATA", err)
	step("DATA", w.Close())
	step("QUIT", c.Quit())
	_, _, mails := relay.Seen()
	if diff := cmp.Diff([]notifytest.Mail{{From: "a@relay.test", To: []string{"b@relay.test"}, Data: "Subject: x\r\n\r\n.dot\r\n"}}, mails); diff != "" {
		t.Errorf("relay (-want +got):\n%s", diff)
	}
}
