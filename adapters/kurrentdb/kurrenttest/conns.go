package kurrenttest

import (
	"net"
	"time"
)

// Connections: refused on demand, and the HTTP/2 pings a client sends.

type listener struct {
	net.Listener
	s *Server
}

func (l *listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if take(&l.s.refuse) {
			l.s.refused.Add(1)
			_ = c.Close()
			continue
		}
		l.s.conns.Add(1)
		if l.s.tls != nil {
			return c, nil // the frames are encrypted: no ping counting
		}
		return &pingCounter{Conn: c, s: l.s}, nil
	}
}

// pingCounter notes the HTTP/2 PING frames a client sends (keepalive and
// bandwidth probes), by reading frame headers as the bytes go by.
type pingCounter struct {
	net.Conn
	s       *Server
	preface int    // bytes of the client preface still to skip
	head    []byte // a frame header being read
	skip    int    // payload bytes still to skip
	started bool
}

// clientPreface is the length of "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".
const clientPreface = 24

func (c *pingCounter) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.scan(p[:n])
	return n, err
}

func (c *pingCounter) scan(b []byte) {
	if !c.started {
		c.started, c.preface = true, clientPreface
	}
	for len(b) > 0 {
		switch {
		case c.preface > 0:
			k := min(c.preface, len(b))
			c.preface -= k
			b = b[k:]
		case c.skip > 0:
			k := min(c.skip, len(b))
			c.skip -= k
			b = b[k:]
		default:
			k := min(9-len(c.head), len(b))
			c.head = append(c.head, b[:k]...)
			b = b[k:]
			if len(c.head) < 9 {
				return
			}
			length := int(c.head[0])<<16 | int(c.head[1])<<8 | int(c.head[2])
			if typ, flags := c.head[3], c.head[4]; typ == 0x6 && flags&0x1 == 0 {
				c.s.pingMu.Lock()
				c.s.pings = append(c.s.pings, time.Now())
				c.s.pingMu.Unlock()
			}
			c.head, c.skip = c.head[:0], length
		}
	}
}

// Pings returns when the node received each HTTP/2 PING frame (not
// acknowledgements) from its clients.
func (s *Server) Pings() []time.Time {
	s.pingMu.Lock()
	defer s.pingMu.Unlock()
	return append([]time.Time(nil), s.pings...)
}
