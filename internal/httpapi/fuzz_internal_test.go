package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
)

// fuzzBody has the shapes the API's requests use: strings, numbers,
// booleans, a nested object, and a list of objects.
type fuzzBody struct {
	ID          string `json:"id"`
	Owner       string `json:"owner,omitempty"`
	Limit       int    `json:"limit,omitempty"`
	TTLSeconds  int64  `json:"ttl_seconds,omitempty"`
	Shared      bool   `json:"shared,omitempty"`
	Consistency string `json:"consistency,omitempty"`
	Items       []struct {
		Subject    string `json:"subject"`
		Permission string `json:"permission"`
		Resource   string `json:"resource"`
	} `json:"items,omitempty"`
	Context map[string]any `json:"context,omitempty"`
}

// FuzzDecode: the strict decoder never panics, refuses with a 4xx that
// names what is wrong, and what it accepts, encoding/json reads the same
// way (it is stricter, never looser) and reads again after a round trip.
func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		`{"id":"d1","owner":"alice"}`,
		`{"items":[{"subject":"user:alice","permission":"view","resource":"dataset:d1"}]}`,
		`{"id":"x","owner":"alice","owner":"rita"}`,
		`{"ID":"x"}`,
		`{"limit":10,"shared":true,"ttl_seconds":3600,"context":{"a":[1,{"b":null}]}}`,
		`{"id":"x"} {"id":"y"}`,
		`[]`, `null`, ``, `{"id":1e400}`, `{"limit":1.5}`, `{"items":[{"subject":"a","subject":"b"}]}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		var got fuzzBody
		err := decode(req, &got)
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) || ae.status < 400 || ae.status >= 500 {
				t.Fatalf("decode(%q): %v is not a 4xx API error", body, err)
			}
			return
		}
		var loose fuzzBody
		if err := json.Unmarshal(body, &loose); err != nil {
			t.Fatalf("decode accepted %q, which encoding/json refuses: %v", body, err)
		}
		if !reflect.DeepEqual(got, loose) {
			t.Fatalf("decode(%q) = %+v, encoding/json reads %+v", body, got, loose)
		}
		again, err := json.Marshal(got)
		if err != nil {
			t.Fatal(err)
		}
		var round fuzzBody
		if err := decode(httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(again)), &round); err != nil {
			t.Fatalf("decode refuses its own round trip %s: %v", again, err)
		}
	})
}
