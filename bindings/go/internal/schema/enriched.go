package schema

import (
	"context"
	"fmt"
	"sync"

	"github.com/bufbuild/protocompile"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
)

// Enriched is a decoded userevents.EnrichedEvent (proto/enriched.proto), the fields the
// tests look at.
type Enriched struct {
	Event         *Event
	SessionID     string // session.session_id
	SourceTopic   string
	EnrichVersion uint32
}

var (
	enrichedOnce sync.Once
	enrichedMD   protoreflect.MessageDescriptor
	enrichedErr  error
)

func enrichedDescriptor() (protoreflect.MessageDescriptor, error) {
	enrichedOnce.Do(func() {
		c := protocompile.Compiler{Resolver: protocompile.WithStandardImports(
			&protocompile.SourceResolver{ImportPaths: []string{Dir()}})}
		files, err := c.Compile(context.Background(), "enriched.proto")
		if err != nil {
			enrichedErr = fmt.Errorf("compiling %s/enriched.proto: %w", Dir(), err)
			return
		}
		if enrichedMD = files[0].Messages().ByName("EnrichedEvent"); enrichedMD == nil {
			enrichedErr = fmt.Errorf("enriched.proto has no message EnrichedEvent")
		}
	})
	return enrichedMD, enrichedErr
}

// DecodeEnriched parses one record value of the enriched topic. Its inner event goes
// through Decode, so both schemas are checked.
func DecodeEnriched(b []byte) (*Enriched, error) {
	md, err := enrichedDescriptor()
	if err != nil {
		return nil, err
	}
	m := dynamicpb.NewMessage(md)
	if err := proto.Unmarshal(b, m); err != nil {
		return nil, err
	}
	f := md.Fields()
	inner, err := proto.Marshal(m.Get(f.ByName("event")).Message().Interface())
	if err != nil {
		return nil, err
	}
	ev, err := Decode(inner)
	if err != nil {
		return nil, err
	}
	session := m.Get(f.ByName("session")).Message()
	return &Enriched{
		Event:         ev,
		SessionID:     session.Get(session.Descriptor().Fields().ByName("session_id")).String(),
		SourceTopic:   m.Get(f.ByName("source_topic")).String(),
		EnrichVersion: uint32(m.Get(f.ByName("enrich_version")).Uint()),
	}, nil
}
