package kurrenttest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// selfSigned makes a self-signed certificate for the loopback address only
// (127.0.0.1, ::1 and localhost), valid for a day, and returns it with its
// PEM encoding (what a client trusts, tlsCAFile).
func selfSigned() (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "kurrenttest"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:    []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// useTLS gives the node a self-signed certificate and writes it where a
// client's tlsCAFile can name it.
func (s *Server) useTLS(dir string) error {
	cert, pemCert, err := selfSigned()
	if err != nil {
		return err
	}
	s.caFile = filepath.Join(dir, "kurrenttest-ca.pem")
	if err := os.WriteFile(s.caFile, pemCert, 0o600); err != nil {
		return err
	}
	s.tls = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	return nil
}

// CAFile is the PEM file of the node's certificate, for tlsCAFile ("" without TLS).
func (s *Server) CAFile() string { return s.caFile }

// SetPassword sets (or rotates) a user's password; "" removes the user.
func (s *Server) SetPassword(user, password string) {
	s.usersMu.Lock()
	defer s.usersMu.Unlock()
	if password == "" {
		delete(s.users, user)
		return
	}
	s.users[user] = password
}

// streamsService is the full name of the Streams service; its calls need
// credentials when the node has users. Gossip and server features are
// anonymous, as on KurrentDB by default.
const streamsServiceName = "/event_store.client.streams.Streams/"

// authenticate checks a Streams call's basic credentials: none is access
// denied (anonymous access to streams is off), a wrong user or password is
// unauthenticated, as KurrentDB answers them.
func (s *Server) authenticate(ctx context.Context, method string, setTrailer func(metadata.MD)) error {
	if s.users == nil || !strings.HasPrefix(method, streamsServiceName) {
		return nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	v := md.Get("authorization")
	if len(v) == 0 {
		setTrailer(metadata.Pairs("exception", "access-denied"))
		return status.Error(codes.PermissionDenied, "Access Denied")
	}
	raw, ok := strings.CutPrefix(v[0], "Basic ")
	if !ok {
		return status.Error(codes.Unauthenticated, "Bad HTTP status code: 401")
	}
	dec, err := base64.StdEncoding.DecodeString(raw)
	user, password, found := strings.Cut(string(dec), ":")
	s.usersMu.Lock()
	want, known := s.users[user]
	s.usersMu.Unlock()
	if err != nil || !found || !known || password != want {
		s.refusedCreds.Add(1)
		return status.Error(codes.Unauthenticated, "Bad HTTP status code: 401")
	}
	return nil
}

func (s *Server) unaryAuth(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err := s.authenticate(ctx, info.FullMethod, func(md metadata.MD) { _ = grpc.SetTrailer(ctx, md) }); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

func (s *Server) streamAuth(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if err := s.authenticate(ss.Context(), info.FullMethod, ss.SetTrailer); err != nil {
		return err
	}
	return handler(srv, ss)
}

// RefusedCredentials counts the calls refused for a wrong user or password.
func (s *Server) RefusedCredentials() int64 { return s.refusedCreds.Load() }
