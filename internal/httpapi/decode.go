package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"github.com/go-json-experiment/json/jsontext"
)

// decode reads a JSON request body strictly, into a pointer to a struct:
//
//   - the Content-Type, when given, is application/json (else 415);
//   - the body is one JSON object, within the size limit;
//   - keys match the struct's JSON names exactly: encoding/json alone
//     would take "Owner" for "owner", and the last of two "owner" keys,
//     so that a body could say one thing to a proxy that reads the first
//     and another to Spicegate;
//   - no key is unknown, and none appears twice, at any depth.
//
// Errors name the JSON key, e.g. "items[2].subject".
func decode(r *http.Request, into any) error { return decodeBody(r, into, false) }

// decodeOptional is decode for routes whose every field is optional: an
// empty body is an empty object.
func decodeOptional(r *http.Request, into any) error { return decodeBody(r, into, true) }

func decodeBody(r *http.Request, into any, optional bool) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return &apiError{status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type",
				Message: fmt.Sprintf("the body must be application/json, not %q", ct)}
		}
	}
	body, err := io.ReadAll(r.Body)
	var maxErr *http.MaxBytesError
	switch {
	case errors.As(err, &maxErr):
		return &apiError{status: http.StatusBadRequest, Code: "body_too_large",
			Message: fmt.Sprintf("the request body exceeds %d bytes", maxErr.Limit)}
	case err != nil:
		return badRequest("", "the request body could not be read")
	case len(bytes.TrimSpace(body)) == 0 && optional:
		return nil
	case len(bytes.TrimSpace(body)) == 0:
		return badRequest("", "the request needs a JSON body")
	}

	// The keys first, with a tokenizer that allocates little (encoding/json's
	// Decoder.Token cost 25 µs a check request, as much as the rest of the
	// handler); it also refuses invalid UTF-8, which encoding/json would
	// replace.
	dec := jsontext.NewDecoder(bytes.NewReader(body), jsontext.AllowDuplicateNames(true))
	if err := walkStrict(dec, reflect.TypeOf(into).Elem(), "", true); err != nil {
		return err
	}
	if _, err := dec.ReadToken(); !errors.Is(err, io.EOF) {
		return badRequest("", "the body must hold one JSON object")
	}

	// The keys are exactly the struct's: now let encoding/json convert.
	if err := json.Unmarshal(body, into); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return badRequest(typeErr.Field, "field %q must be a %s", typeErr.Field, typeErr.Type)
		}
		return badRequest("", "malformed JSON: %v", err)
	}
	return nil
}

// walkStrict reads one JSON value from dec and checks its keys against t
// (nil: anything goes, duplicates excepted). top requires an object.
func walkStrict(dec *jsontext.Decoder, t reflect.Type, path string, top bool) error {
	tok, err := dec.ReadToken()
	if err != nil {
		return syntaxError(err)
	}
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	kind := tok.Kind()
	if top && kind != '{' {
		return badRequest("", "the body must be a JSON object")
	}
	switch kind {
	case '{':
		var fields map[string]reflect.Type
		if t != nil && t.Kind() == reflect.Struct {
			fields = jsonFields(t)
		}
		var seen map[string]bool
		for dec.PeekKind() != '}' {
			keyTok, err := dec.ReadToken()
			if err != nil {
				return syntaxError(err)
			}
			key := keyTok.String()
			at := key
			if path != "" {
				at = path + "." + key
			}
			if seen[key] {
				return badRequest(at, "field %q appears twice", at)
			}
			if seen == nil {
				seen = make(map[string]bool, 8)
			}
			seen[key] = true
			var ft reflect.Type
			if fields != nil {
				var ok bool
				if ft, ok = fields[key]; !ok {
					return badRequest(at, "unknown field %q (names are case-sensitive)", at)
				}
			}
			if err := walkStrict(dec, ft, at, false); err != nil {
				return err
			}
		}
	case '[':
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for i := 0; dec.PeekKind() != ']'; i++ {
			if err := walkStrict(dec, elem, path+"["+strconv.Itoa(i)+"]", false); err != nil {
				return err
			}
		}
	default:
		return nil // a scalar: encoding/json checks its type
	}
	if _, err := dec.ReadToken(); err != nil { // the closing delimiter
		return syntaxError(err)
	}
	return nil
}

func syntaxError(err error) error {
	var syntaxErr *jsontext.SyntacticError
	if errors.As(err, &syntaxErr) {
		return badRequest("", "malformed JSON at byte %d", syntaxErr.ByteOffset)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return badRequest("", "malformed JSON: the body ends too early")
	}
	return badRequest("", "malformed JSON: %v", err)
}

// fieldCache keeps each request type's JSON names.
var fieldCache sync.Map // reflect.Type -> map[string]reflect.Type

// jsonFields returns the JSON names of a struct's fields, embedded
// structs' included, as encoding/json sees them.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	if f, ok := fieldCache.Load(t); ok {
		return f.(map[string]reflect.Type)
	}
	fields := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			for k, v := range jsonFields(f.Type) {
				fields[k] = v
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fields[name] = f.Type
	}
	fieldCache.Store(t, fields)
	return fields
}
