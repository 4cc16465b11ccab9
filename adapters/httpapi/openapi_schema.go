package httpapi

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// The OpenAPI document is generated from the route table (routes.go) and
// the request and answer types, so it cannot drift from the router. It is
// OpenAPI 3.0.3, the version client generators read (oapi-codegen among
// them); nothing here needs 3.1. Redocly CLI lints it with its recommended
// rules and Prism's validating proxy holds the server to it in the
// end-to-end tests (make test-api).

var (
	timeType = reflect.TypeOf(time.Time{})
	uuidType = reflect.TypeOf(uuid.UUID{})
)

// schemas builds the document's schemas from Go types: each named struct
// and each closed set of codes is a component (#/components/schemas/...),
// so a client generator names its types after them (SignalView, Urgency).
type schemas struct {
	components map[string]any
	names      map[schemaKey]string
}

type schemaKey struct {
	t      reflect.Type
	answer bool
}

// request is the schema of a request body's type: a field is required
// unless it is a pointer, omitempty, or tagged openapi:"optional" (a field
// the server does without, whose empty value answers still write).
func (b *schemas) request(t reflect.Type) map[string]any { return b.of(t, false) }

// answer is the schema of an answer's type: every field without omitempty
// is required, and a pointer without omitempty is nullable (the server
// writes null).
func (b *schemas) answer(t reflect.Type) map[string]any { return b.of(t, true) }

// resolve follows a $ref to its component.
func (b *schemas) resolve(sch map[string]any) map[string]any {
	if ref, ok := sch["$ref"].(string); ok {
		return b.components[strings.TrimPrefix(ref, "#/components/schemas/")].(map[string]any)
	}
	return sch
}

func ref(name string) map[string]any { return map[string]any{"$ref": "#/components/schemas/" + name} }

// enumNames are the components of the closed sets.
var enumNames = map[string]string{"status": "SignalStatus", "channel": "NotificationChannel", "role": "Role", "actor_role": "ActorRole"}

func (b *schemas) enum(name string) map[string]any {
	vals, ok := enums[name]
	if !ok {
		panic("openapi: no enum " + name)
	}
	comp := enumNames[name]
	if comp == "" {
		for part := range strings.SplitSeq(name, "_") {
			comp += strings.ToUpper(part[:1]) + part[1:]
		}
	}
	if _, done := b.components[comp]; !done {
		var vs []any
		for _, v := range vals {
			vs = append(vs, v)
		}
		b.components[comp] = map[string]any{"type": "string", "enum": vs}
	}
	return ref(comp)
}

// fieldOptions are a field's schema options: by its JSON name, then its
// openapi tag (comma-separated: optional, nullable, enum=<set>,
// format=<format>, plain for none of the name's).
type fieldOptions struct {
	optional, nullable bool
	enum, format       string
}

func optionsOf(name string, tag string) fieldOptions {
	var o fieldOptions
	for _, src := range []string{byName[name], tag} {
		for opt := range strings.SplitSeq(src, ",") {
			k, v, _ := strings.Cut(opt, "=")
			switch k {
			case "optional":
				o.optional = true
			case "nullable":
				o.nullable = true
			case "enum":
				o.enum = v
			case "format":
				o.format = v
			case "plain":
				o.enum, o.format = "", ""
			case "":
			default:
				panic(fmt.Sprintf("openapi tag of %s: unknown option %q", name, opt))
			}
		}
	}
	return o
}

// apply puts o's enum or format on sch, or on its items for a list.
func (b *schemas) apply(o fieldOptions, sch map[string]any) map[string]any {
	if sch["type"] == "array" {
		sch["items"] = b.apply(o, sch["items"].(map[string]any))
		return sch
	}
	if sch["type"] != "string" {
		return sch
	}
	if o.enum != "" {
		return b.enum(o.enum)
	}
	switch o.format {
	case "":
	case "config-id": // an id of the network's own configuration: an open set
		sch["pattern"] = configIDPattern
	default:
		sch["format"] = o.format
	}
	return sch
}

// componentName is a struct type's component name: its Go name with a
// capital (signalView: SignalView); a request type that answers also use
// gets Input after it (OpenAPI builds the answers' schemas first).
func (b *schemas) componentName(k schemaKey) string {
	name := k.t.Name()
	name = strings.ToUpper(name[:1]) + name[1:]
	if _, both := b.names[schemaKey{k.t, true}]; both && !k.answer {
		name += "Input"
	}
	for n, base := 2, name; ; n++ {
		if _, taken := b.components[name]; !taken {
			return name
		}
		name = base + strconv.Itoa(n)
	}
}

func (b *schemas) of(t reflect.Type, answer bool) map[string]any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t {
	case timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case uuidType:
		return map[string]any{"type": "string", "format": "uuid"}
	}
	switch t.Kind() {
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int32:
		return map[string]any{"type": "integer"}
	case reflect.Int64, reflect.Uint64, reflect.Uint32:
		out := map[string]any{"type": "integer", "format": "int64"}
		if t.Kind() != reflect.Int64 {
			out["minimum"] = 0
		}
		return out
	case reflect.Float64:
		return map[string]any{"type": "number", "format": "double"}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 { // []byte: base64
			return map[string]any{"type": "string", "format": "byte"}
		}
		return map[string]any{"type": "array", "items": b.of(t.Elem(), answer)}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": b.of(t.Elem(), answer)}
	case reflect.Struct:
		k := schemaKey{t, answer}
		if name, ok := b.names[k]; ok {
			return ref(name)
		}
		if t.Name() == "" {
			return b.object(t, answer)
		}
		name := b.componentName(k)
		b.names[k] = name
		b.components[name] = map[string]any{} // taken, for types that hold themselves
		b.components[name] = b.object(t, answer)
		return ref(name)
	}
	return map[string]any{}
}

// object is the schema of a struct's fields, embedded structs' included.
func (b *schemas) object(t reflect.Type, answer bool) map[string]any {
	props := map[string]any{}
	var required []any
	var walk func(reflect.Type)
	walk = func(t reflect.Type) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if f.Anonymous && f.Type.Kind() == reflect.Struct {
				walk(f.Type)
				continue
			}
			if !f.IsExported() {
				continue
			}
			name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			o := optionsOf(name, f.Tag.Get("openapi"))
			sch := b.apply(o, b.of(f.Type, answer))
			omitempty := strings.Contains(opts, "omitempty")
			if answer {
				if f.Type.Kind() == reflect.Pointer && !omitempty || o.nullable {
					if _, isRef := sch["$ref"]; isRef { // no siblings beside a $ref in 3.0
						sch = map[string]any{"allOf": []any{sch}}
					}
					sch["nullable"] = true
				}
				if !omitempty {
					required = append(required, name)
				}
			} else if !omitempty && f.Type.Kind() != reflect.Pointer && !o.optional {
				required = append(required, name)
			}
			props[name] = sch
		}
	}
	walk(t)
	out := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		out["required"] = required
	}
	return out
}
