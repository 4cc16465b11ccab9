package kurrentconn

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"

	gossipapi "github.com/EventStore/EventStore-Client-Go/v4/protos/gossip"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// The v4 Go client has no operations API; KurrentDB serves it over gRPC as
// event_store.client.operations.Operations. Its two scavenge messages are
// described here (from the server's published operations.proto: field
// numbers and types only) and sent as dynamic messages.
const (
	// OperationsService is the gRPC service of the operations API.
	OperationsService = "event_store.client.operations.Operations"
	// StartScavengeMethod is the full method that starts a node's scavenge.
	StartScavengeMethod = "/" + OperationsService + "/StartScavenge"
)

var (
	opsOnce                  sync.Once
	startScavengeReq, scResp protoreflect.MessageDescriptor
	startScavengeOpts        protoreflect.MessageDescriptor
)

func opsDescriptors() {
	opsOnce.Do(func() {
		i32 := descriptorpb.FieldDescriptorProto_TYPE_INT32.Enum()
		str := descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum()
		msg := descriptorpb.FieldDescriptorProto_TYPE_MESSAGE.Enum()
		enum := descriptorpb.FieldDescriptorProto_TYPE_ENUM.Enum()
		opt := descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum()
		field := func(name string, n int32, typ *descriptorpb.FieldDescriptorProto_Type, typeName string) *descriptorpb.FieldDescriptorProto {
			f := &descriptorpb.FieldDescriptorProto{Name: proto.String(name), Number: proto.Int32(n), Label: opt, Type: typ, JsonName: proto.String(name)}
			if typeName != "" {
				f.TypeName = proto.String(typeName)
			}
			return f
		}
		fd := &descriptorpb.FileDescriptorProto{
			Name:    proto.String("buurtsignaal/operations.proto"),
			Package: proto.String("event_store.client.operations"),
			Syntax:  proto.String("proto3"),
			MessageType: []*descriptorpb.DescriptorProto{
				{
					Name:  proto.String("StartScavengeReq"),
					Field: []*descriptorpb.FieldDescriptorProto{field("options", 1, msg, ".event_store.client.operations.StartScavengeReq.Options")},
					NestedType: []*descriptorpb.DescriptorProto{{
						Name:  proto.String("Options"),
						Field: []*descriptorpb.FieldDescriptorProto{field("thread_count", 1, i32, ""), field("start_from_chunk", 2, i32, "")},
					}},
				},
				{
					Name: proto.String("ScavengeResp"),
					Field: []*descriptorpb.FieldDescriptorProto{
						field("scavenge_id", 1, str, ""),
						field("scavenge_result", 2, enum, ".event_store.client.operations.ScavengeResp.ScavengeResult"),
					},
					EnumType: []*descriptorpb.EnumDescriptorProto{{
						Name: proto.String("ScavengeResult"),
						Value: []*descriptorpb.EnumValueDescriptorProto{
							{Name: proto.String("Started"), Number: proto.Int32(0)},
							{Name: proto.String("InProgress"), Number: proto.Int32(1)},
							{Name: proto.String("Stopped"), Number: proto.Int32(2)},
						},
					}},
				},
			},
		}
		f, err := protodesc.NewFile(fd, nil)
		if err != nil {
			panic("kurrentconn: the operations descriptor does not build: " + err.Error())
		}
		startScavengeReq = f.Messages().ByName("StartScavengeReq")
		startScavengeOpts = startScavengeReq.Messages().ByName("Options")
		scResp = f.Messages().ByName("ScavengeResp")
	})
}

// NewStartScavengeReq returns a StartScavengeReq with the options (0: the
// server's defaults).
func NewStartScavengeReq(threads, fromChunk int32) *dynamicpb.Message {
	opsDescriptors()
	o := dynamicpb.NewMessage(startScavengeOpts)
	o.Set(startScavengeOpts.Fields().ByName("thread_count"), protoreflect.ValueOfInt32(threads))
	o.Set(startScavengeOpts.Fields().ByName("start_from_chunk"), protoreflect.ValueOfInt32(fromChunk))
	m := dynamicpb.NewMessage(startScavengeReq)
	m.Set(startScavengeReq.Fields().ByName("options"), protoreflect.ValueOfMessage(o))
	return m
}

// EmptyStartScavengeReq and EmptyScavengeResp return empty messages to
// decode into (the test server decodes requests, the client answers).
func EmptyStartScavengeReq() *dynamicpb.Message {
	opsDescriptors()
	return dynamicpb.NewMessage(startScavengeReq)
}

// EmptyScavengeResp returns an empty ScavengeResp to decode into.
func EmptyScavengeResp() *dynamicpb.Message {
	opsDescriptors()
	return dynamicpb.NewMessage(scResp)
}

// StartScavengeOptions reads the options of a StartScavengeReq.
func StartScavengeOptions(m *dynamicpb.Message) (threads, fromChunk int32) {
	opsDescriptors()
	o := m.Get(startScavengeReq.Fields().ByName("options")).Message()
	return int32(o.Get(startScavengeOpts.Fields().ByName("thread_count")).Int()),
		int32(o.Get(startScavengeOpts.Fields().ByName("start_from_chunk")).Int())
}

// NewScavengeResp returns a ScavengeResp (result: Started, InProgress or
// Stopped).
func NewScavengeResp(id, result string) *dynamicpb.Message {
	opsDescriptors()
	m := dynamicpb.NewMessage(scResp)
	m.Set(scResp.Fields().ByName("scavenge_id"), protoreflect.ValueOfString(id))
	if v := scResp.Fields().ByName("scavenge_result").Enum().Values().ByName(protoreflect.Name(result)); v != nil {
		m.Set(scResp.Fields().ByName("scavenge_result"), protoreflect.ValueOfEnum(v.Number()))
	}
	return m
}

func readScavengeResp(m *dynamicpb.Message) (id, result string) {
	id = m.Get(scResp.Fields().ByName("scavenge_id")).String()
	n := m.Get(scResp.Fields().ByName("scavenge_result")).Enum()
	if v := scResp.Fields().ByName("scavenge_result").Enum().Values().ByNumber(n); v != nil {
		return id, string(v.Name())
	}
	return id, strconv.Itoa(int(n))
}

// Scavenge is one node's answer to a request to start a scavenge.
type Scavenge struct {
	Node   string // host:port
	Leader bool
	ID     string // the scavenge's id on the node
	Result string // Started, or InProgress when one was running already
}

// StartScavenge asks every live node of the cluster (as gossip lists them:
// followers and read-only replicas first, the leader last) to start a
// scavenge of its own database, and returns the nodes' answers. It does not
// wait for the scavenges to finish: each runs on its node in the
// background. The server requires an admin or ops user (in the connection
// string, over TLS) unless it runs insecure. It stops at the first node
// that refuses, with the answers so far; errors are classified as Call's
// (Classify).
func (c *Client) StartScavenge(ctx context.Context) ([]Scavenge, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	nodes, err := c.members(ctx)
	if err != nil {
		return nil, err
	}
	var out []Scavenge
	for _, n := range nodes {
		s, err := c.startScavenge(ctx, n)
		if err != nil {
			return out, err
		}
		out = append(out, s)
	}
	return out, nil
}

type member struct {
	addr   string
	leader bool
}

// members reads the cluster's membership from the first seed that
// answers; a node that does not offer gossip is taken as a single node.
func (c *Client) members(ctx context.Context) ([]member, error) {
	var seeds []string
	if c.cfg.Address != "" {
		seeds = append(seeds, c.cfg.Address)
	}
	for _, s := range c.cfg.GossipSeeds {
		seeds = append(seeds, net.JoinHostPort(s.Host, strconv.Itoa(int(s.Port))))
	}
	if len(seeds) == 0 {
		return nil, errors.New("kurrentdb: the connection string names no node")
	}
	var errs []error
	for _, seed := range seeds {
		cc, err := c.dial(seed)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		info, err := gossipapi.NewGossipClient(cc).Read(ctx, &shared.Empty{})
		_ = cc.Close()
		if Classify(err).Code == Invalid && !c.cfg.DnsDiscover { // no gossip: a single node
			return []member{{addr: seed, leader: true}}, nil
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var followers, leaders []member
		for _, m := range info.GetMembers() {
			ep := m.GetHttpEndPoint()
			if !m.GetIsAlive() || ep == nil {
				continue
			}
			addr := net.JoinHostPort(ep.GetAddress(), strconv.Itoa(int(ep.GetPort())))
			switch m.GetState() {
			case gossipapi.MemberInfo_Leader:
				leaders = append(leaders, member{addr: addr, leader: true})
			case gossipapi.MemberInfo_Follower, gossipapi.MemberInfo_ReadOnlyReplica, gossipapi.MemberInfo_ReadOnlyLeaderless:
				followers = append(followers, member{addr: addr})
			}
		}
		return append(followers, leaders...), nil
	}
	if ctx.Err() != nil {
		return nil, &timeoutError{cause: errors.Join(append(errs, ctx.Err())...)}
	}
	return nil, errors.Join(errs...)
}

// dial connects to one node as the v4 client would: TLS unless tls=false,
// with its CA, client certificate and basic credentials.
func (c *Client) dial(addr string) (*grpc.ClientConn, error) {
	creds := insecure.NewCredentials()
	opts := []grpc.DialOption{}
	if !c.cfg.DisableTLS {
		tc := &tls.Config{InsecureSkipVerify: c.cfg.SkipCertificateVerification, RootCAs: c.cfg.RootCAs} //nolint:gosec // as the connection string says
		if c.cfg.UserCertFile != "" && c.cfg.UserKeyFile != "" {
			cert, err := tls.LoadX509KeyPair(c.cfg.UserCertFile, c.cfg.UserKeyFile)
			if err != nil {
				return nil, fmt.Errorf("kurrentdb: the user certificate does not load: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		creds = credentials.NewTLS(tc)
		if c.cfg.Username != "" {
			opts = append(opts, grpc.WithPerRPCCredentials(basicAuth("Basic "+base64.StdEncoding.EncodeToString([]byte(c.cfg.Username+":"+c.cfg.Password)))))
		}
	}
	opts = append(opts, grpc.WithTransportCredentials(creds))
	return grpc.NewClient(addr, opts...)
}

type basicAuth string

func (b basicAuth) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": string(b)}, nil
}

func (basicAuth) RequireTransportSecurity() bool { return true }

func (c *Client) startScavenge(ctx context.Context, n member) (Scavenge, error) {
	cc, err := c.dial(n.addr)
	if err != nil {
		return Scavenge{}, err
	}
	defer cc.Close()
	resp := EmptyScavengeResp()
	if err := cc.Invoke(ctx, StartScavengeMethod, NewStartScavengeReq(0, 0), resp); err != nil {
		if ctx.Err() != nil {
			return Scavenge{}, &timeoutError{cause: errors.Join(ctx.Err(), err)}
		}
		return Scavenge{}, err
	}
	id, result := readScavengeResp(resp)
	return Scavenge{Node: n.addr, Leader: n.leader, ID: id, Result: result}, nil
}
