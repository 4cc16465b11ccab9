package kurrentconn

import (
	"errors"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
)

// schemes maps the connection string schemes the server accepts to the
// ones the v4 client parses.
var schemes = []struct{ from, to string }{
	{"kurrentdb+discover://", "esdb+discover://"},
	{"kurrent+discover://", "esdb+discover://"},
	{"esdb+discover://", "esdb+discover://"},
	{"kurrentdb://", "esdb://"},
	{"kurrent://", "esdb://"},
	{"esdb://", "esdb://"},
}

// MinKeepAlive is grpc's floor for client pings, which servers enforcing a
// ping policy accept.
const MinKeepAlive = 10 * time.Second

var keepAliveSetting = regexp.MustCompile(`(?i)keepaliveinterval=[0-9]+`)

// Parse parses a connection string (kurrentdb://, kurrent://, esdb:// and
// their +discover forms) into the client's configuration, with keepalive
// intervals raised to MinKeepAlive. Its errors never quote the string,
// which may hold credentials.
func Parse(connString string) (*esdb.Configuration, error) {
	conn := ""
	for _, s := range schemes {
		if len(connString) >= len(s.from) && strings.EqualFold(connString[:len(s.from)], s.from) {
			conn = s.to + connString[len(s.from):]
			break
		}
	}
	if conn == "" {
		return nil, errors.New("kurrentdb: the connection string must start with kurrentdb://, kurrent://, esdb:// or their +discover forms")
	}
	// Raise a keepalive interval below grpc's floor before the client sees
	// it (it would warn on standard output).
	conn = keepAliveSetting.ReplaceAllStringFunc(conn, func(kv string) string {
		ms, err := strconv.Atoi(kv[strings.IndexByte(kv, '=')+1:])
		if err != nil || ms < 0 || ms >= int(MinKeepAlive/time.Millisecond) {
			return kv
		}
		return kv[:strings.IndexByte(kv, '=')+1] + strconv.Itoa(int(MinKeepAlive/time.Millisecond))
	})
	cfg, err := esdb.ParseConnectionString(conn)
	if err != nil {
		return nil, errors.New("kurrentdb: the connection string does not parse")
	}
	if err := cfg.Validate(); err != nil {
		return nil, errors.New("kurrentdb: the connection string's TLS settings are incomplete")
	}
	if cfg.KeepAliveInterval >= 0 && cfg.KeepAliveInterval < MinKeepAlive {
		cfg.KeepAliveInterval = MinKeepAlive
	}
	if cfg.KeepAliveTimeout <= 0 {
		cfg.KeepAliveTimeout = MinKeepAlive
	}
	return cfg, nil
}
