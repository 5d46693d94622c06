package client

import (
	"testing"
)

// FuzzGrammar: the hand-written checks of SpiceDB's grammar accept exactly
// what SpiceDB's regular expressions accept.
func FuzzGrammar(f *testing.F) {
	for _, s := range []string{"", "abc", "a_c", "ab_", "abc/def", "abc//def", "Abc", "ab-c", "a|b", "x=y+z/w", "é", "abc\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := validType(s), typeRE.MatchString(s); got != want {
			t.Fatalf("validType(%q) = %v, SpiceDB's grammar says %v", s, got, want)
		}
		if got, want := validRelation(s), relationRE.MatchString(s); got != want {
			t.Fatalf("validRelation(%q) = %v, SpiceDB's grammar says %v", s, got, want)
		}
		if got, want := validIDChars(s), idRE.MatchString(s); got != want {
			t.Fatalf("validIDChars(%q) = %v, SpiceDB's grammar says %v", s, got, want)
		}
	})
}

// FuzzParseReferences: ParseObject and ParseSubject never panic, and what
// they accept is valid for SpiceDB and prints back as it was read.
func FuzzParseReferences(f *testing.F) {
	for _, s := range []string{"dataset:d1", "user:alice", "organization:acme#member", "user:*", "a:b:c", ":x", "x:", "#", "user:alice#",
		"organization:acme#member#x", "api_token:0123456789abcdef0123456789abcdef", "platform:global#member"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if o, err := ParseObject(s); err == nil {
			if !typeRE.MatchString(o.Type) || (!idRE.MatchString(o.ID) && o.ID != "*") || len(o.ID) > maxIDLength {
				t.Fatalf("ParseObject(%q) accepted %#v, which SpiceDB refuses", s, o)
			}
			if o.String() != s {
				t.Fatalf("ParseObject(%q) prints back as %q", s, o.String())
			}
		}
		if sub, err := ParseSubject(s); err == nil {
			if err := sub.Validate("subject"); err != nil {
				t.Fatalf("ParseSubject(%q) accepted %#v, which does not validate: %v", s, sub, err)
			}
			if sub.Relation != "" && !relationRE.MatchString(sub.Relation) {
				t.Fatalf("ParseSubject(%q) accepted relation %q", s, sub.Relation)
			}
			if sub.String() != s {
				t.Fatalf("ParseSubject(%q) prints back as %q", s, sub.String())
			}
		}
	})
}
