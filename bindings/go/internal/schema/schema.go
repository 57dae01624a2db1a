// Package schema reads and writes events with proto/userevents.proto itself, compiled at run
// time (protocompile + dynamicpb): the tests and benchmarks of the binding decode what the
// broker holds with the schema, not with the library under test, and need no codegen step.
package schema

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/bufbuild/protocompile"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
)

// Event is a decoded userevents.Event, the fields the tests look at.
type Event struct {
	ID            [16]byte
	Type          string
	UserID        string
	AnonymousID   string
	SessionID     string
	TimestampMs   int64
	SchemaVersion uint32
	Properties    map[string]any // string, int64, float64 or bool
	Context       map[string]any // by proto field name: "app_name", "screen_width", ...
}

var (
	once    sync.Once
	eventMD protoreflect.MessageDescriptor
	loadErr error
)

// Dir is the directory of userevents.proto: $UE_PROTO_DIR, else the repository's proto/.
func Dir() string {
	if d := os.Getenv("UE_PROTO_DIR"); d != "" {
		return d
	}
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "..", "proto")
}

func descriptor() (protoreflect.MessageDescriptor, error) {
	once.Do(func() {
		c := protocompile.Compiler{Resolver: protocompile.WithStandardImports(
			&protocompile.SourceResolver{ImportPaths: []string{Dir()}})}
		files, err := c.Compile(context.Background(), "userevents.proto")
		if err != nil {
			loadErr = fmt.Errorf("compiling %s/userevents.proto: %w", Dir(), err)
			return
		}
		eventMD = files[0].Messages().ByName("Event")
		if eventMD == nil {
			loadErr = fmt.Errorf("userevents.proto has no message Event")
		}
	})
	return eventMD, loadErr
}

// Decode parses one record value as a userevents.Event.
func Decode(b []byte) (*Event, error) {
	md, err := descriptor()
	if err != nil {
		return nil, err
	}
	m := dynamicpb.NewMessage(md)
	if err := proto.Unmarshal(b, m); err != nil {
		return nil, err
	}
	get := func(name string) protoreflect.Value { return m.Get(md.Fields().ByName(protoreflect.Name(name))) }
	ev := &Event{
		Type:          get("type").String(),
		UserID:        get("user_id").String(),
		AnonymousID:   get("anonymous_id").String(),
		SessionID:     get("session_id").String(),
		TimestampMs:   get("timestamp_ms").Int(),
		SchemaVersion: uint32(get("schema_version").Uint()),
		Properties:    map[string]any{},
		Context:       map[string]any{},
	}
	copy(ev.ID[:], get("event_id").Bytes())
	get("properties").Map().Range(func(k protoreflect.MapKey, v protoreflect.Value) bool {
		val := v.Message()
		if fd := val.WhichOneof(val.Descriptor().Oneofs().ByName("kind")); fd != nil {
			ev.Properties[k.String()] = val.Get(fd).Interface()
		}
		return true
	})
	ctx := get("context").Message()
	ctx.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		ev.Context[string(fd.Name())] = v.Interface()
		return true
	})
	return ev, nil
}

// Encode builds the bytes of a userevents.Event (for benchmarks: the same payload another
// Kafka client produces). Property values: string, int64, float64 or bool.
func Encode(ev *Event) ([]byte, error) {
	md, err := descriptor()
	if err != nil {
		return nil, err
	}
	m := dynamicpb.NewMessage(md)
	f := md.Fields()
	set := func(name string, v protoreflect.Value) { m.Set(f.ByName(protoreflect.Name(name)), v) }
	set("event_id", protoreflect.ValueOfBytes(ev.ID[:]))
	set("type", protoreflect.ValueOfString(ev.Type))
	set("user_id", protoreflect.ValueOfString(ev.UserID))
	set("anonymous_id", protoreflect.ValueOfString(ev.AnonymousID))
	set("timestamp_ms", protoreflect.ValueOfInt64(ev.TimestampMs))
	set("schema_version", protoreflect.ValueOfUint32(ev.SchemaVersion))
	props := m.Mutable(f.ByName("properties")).Map()
	valueMD := f.ByName("properties").MapValue().Message()
	for k, v := range ev.Properties {
		val := dynamicpb.NewMessage(valueMD)
		name := map[string]string{"string": "string_value", "int64": "int_value",
			"float64": "double_value", "bool": "bool_value"}[fmt.Sprintf("%T", v)]
		if name == "" {
			return nil, fmt.Errorf("property %q: unsupported %T", k, v)
		}
		val.Set(valueMD.Fields().ByName(protoreflect.Name(name)), protoreflect.ValueOf(v))
		props.Set(protoreflect.ValueOfString(k).MapKey(), protoreflect.ValueOfMessage(val))
	}
	if len(ev.Context) > 0 {
		ctx := m.Mutable(f.ByName("context")).Message()
		for k, v := range ev.Context {
			fd := ctx.Descriptor().Fields().ByName(protoreflect.Name(k))
			if fd == nil {
				return nil, fmt.Errorf("context has no field %q", k)
			}
			ctx.Set(fd, protoreflect.ValueOf(v))
		}
	}
	return proto.Marshal(m)
}
