// Package notifytest has a test SMTP relay on loopback, for the e-mail
// channel's tests and the server's end-to-end notification tests.
package notifytest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"
)

// Relay is a test SMTP server on 127.0.0.1. It speaks EHLO/HELO,
// STARTTLS (when tls is set), AUTH PLAIN (required when user is set, and
// only after STARTTLS when that is offered), MAIL, RCPT, DATA, RSET, NOOP
// and QUIT, and records what it receives.
type Relay struct {
	TLS        *tls.Config // offered by STARTTLS; nil: not offered
	User, Pass string      // AUTH PLAIN required; "": AUTH not offered
	TempFail   int         // answer 451 to the first TempFail DATA commands
	Refuse     bool        // answer 550 to every DATA command
	Stall      bool        // accept connections but never greet

	Addr string // set by Start
	wg   sync.WaitGroup

	mu     sync.Mutex
	open   map[net.Conn]bool
	closed bool
	conns  int      // connections accepted
	datas  int      // DATA commands seen
	auths  []string // "user:pass" of every AUTH PLAIN
	mails  []Mail   // messages accepted
}

// Mail is one accepted message; Data is raw (CRLF line endings, dots
// unstuffed).
type Mail struct {
	From string
	To   []string
	TLS  bool
	Auth string // the authenticated user, if any
	Data string
}

// Start listens on 127.0.0.1:0 and serves until the test ends.
func (r *Relay) Start(t testing.TB) *Relay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.Addr, r.open = ln.Addr().String(), map[net.Conn]bool{}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.mu.Lock()
			if r.closed {
				r.mu.Unlock()
				c.Close()
				return
			}
			r.open[c] = true
			r.conns++
			r.wg.Add(1)
			r.mu.Unlock()
			go func() {
				defer r.wg.Done()
				r.serve(c)
				r.mu.Lock()
				delete(r.open, c)
				r.mu.Unlock()
				c.Close()
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		r.mu.Lock()
		r.closed = true
		for c := range r.open {
			c.Close()
		}
		r.mu.Unlock()
		r.wg.Wait()
	})
	return r
}

func (r *Relay) serve(conn net.Conn) {
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if r.Stall {
		_, _ = io.Copy(io.Discard, conn) // until the client hangs up
		return
	}
	tp := textproto.NewConn(conn)
	var (
		secure   bool
		authUser string
		from     string
		to       []string
	)
	reply := func(format string, args ...any) { _ = tp.PrintfLine(format, args...) }
	reply("220 relay.test ESMTP")
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO", "HELO":
			exts := []string{"relay.test"}
			if r.TLS != nil && !secure {
				exts = append(exts, "STARTTLS")
			}
			if r.User != "" && (secure || r.TLS == nil) {
				exts = append(exts, "AUTH PLAIN")
			}
			for i, e := range exts {
				sep := "-"
				if i == len(exts)-1 {
					sep = " "
				}
				reply("250%s%s", sep, e)
			}
		case "STARTTLS":
			if r.TLS == nil || secure {
				reply("502 5.5.1 STARTTLS not offered")
				continue
			}
			reply("220 2.0.0 Ready to start TLS")
			tc := tls.Server(conn, r.TLS)
			if tc.Handshake() != nil {
				return
			}
			tp, secure = textproto.NewConn(tc), true
			authUser, from, to = "", "", nil
		case "AUTH":
			mech, initial, _ := strings.Cut(arg, " ")
			switch {
			case r.User == "" || !strings.EqualFold(mech, "PLAIN"):
				reply("504 5.5.4 mechanism not supported")
				continue
			case r.TLS != nil && !secure:
				reply("538 5.7.11 encryption required")
				continue
			}
			if initial == "" {
				reply("334 ")
				if initial, err = tp.ReadLine(); err != nil {
					return
				}
			}
			raw, _ := base64.StdEncoding.DecodeString(initial)
			parts := strings.Split(string(raw), "\x00")
			if len(parts) != 3 {
				reply("501 5.5.2 malformed AUTH PLAIN")
				continue
			}
			r.mu.Lock()
			r.auths = append(r.auths, parts[1]+":"+parts[2])
			r.mu.Unlock()
			if parts[1] != r.User || parts[2] != r.Pass {
				reply("535 5.7.8 authentication credentials invalid")
				continue
			}
			authUser = parts[1]
			reply("235 2.7.0 authenticated")
		case "MAIL":
			if r.User != "" && authUser == "" {
				reply("530 5.7.0 authentication required")
				continue
			}
			from, to = strings.Trim(strings.TrimPrefix(arg, "FROM:"), "<>"), nil
			reply("250 2.1.0 ok")
		case "RCPT":
			if from == "" {
				reply("503 5.5.1 MAIL first")
				continue
			}
			to = append(to, strings.Trim(strings.TrimPrefix(arg, "TO:"), "<>"))
			reply("250 2.1.5 ok")
		case "DATA":
			if len(to) == 0 {
				reply("503 5.5.1 RCPT first")
				continue
			}
			r.mu.Lock()
			r.datas++
			n := r.datas
			r.mu.Unlock()
			switch { // the replies echo the recipient, as relays do
			case r.Refuse:
				reply("550 5.7.1 <%s>: message refused", to[0])
				continue
			case n <= r.TempFail:
				reply("451 4.3.0 <%s>: try again later", to[0])
				continue
			}
			reply("354 end with <CRLF>.<CRLF>")
			var data strings.Builder
			for {
				l, err := tp.R.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				data.WriteString(strings.TrimPrefix(l, "."))
			}
			r.mu.Lock()
			r.mails = append(r.mails, Mail{From: from, To: to, TLS: secure, Auth: authUser, Data: data.String()})
			r.mu.Unlock()
			from, to = "", nil
			reply("250 2.0.0 queued")
		case "RSET":
			from, to = "", nil
			reply("250 2.0.0 ok")
		case "NOOP":
			reply("250 2.0.0 ok")
		case "QUIT":
			reply("221 2.0.0 bye")
			return
		default:
			reply("500 5.5.2 unknown command")
		}
	}
}

// Seen returns the connections, DATA commands and messages so far.
func (r *Relay) Seen() (conns, datas int, mails []Mail) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.conns, r.datas, append([]Mail(nil), r.mails...)
}

// Auths returns "user:pass" of every AUTH PLAIN so far.
func (r *Relay) Auths() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.auths...)
}

// Cert returns a server TLS configuration with a self-signed ECDSA
// certificate for 127.0.0.1, and a pool that trusts it.
var Cert = sync.OnceValues(func() (*tls.Config, *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "relay.test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	certDER = der
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}, pool
})

var certDER []byte

// CertPEM is Cert's certificate in PEM, for a CA file.
func CertPEM() []byte {
	_, _ = Cert()
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER})
}
