package sqlite_test

import (
	"testing"

	"github.com/spicegate/spicegate/datastore/sqlite"
)

// FuzzRevisionFromString: a revision in a ZedToken comes from outside.
// Parsing never panics; what parses prints back in its canonical form and
// parses again to an equal revision.
func FuzzRevisionFromString(f *testing.F) {
	for _, s := range []string{"1", "42", "0", "-1", "18446744073709551615", "18446744073709551616", "0042", "1.5", "", " 1", "1e3"} {
		f.Add(s)
	}
	var d *sqlite.Datastore // RevisionFromString needs no open file
	f.Fuzz(func(t *testing.T, s string) {
		rev, err := d.RevisionFromString(s)
		if err != nil {
			return
		}
		again, err := d.RevisionFromString(rev.String())
		if err != nil {
			t.Fatalf("%q parsed as %s, which does not parse: %v", s, rev, err)
		}
		if !again.Equal(rev) || again.String() != rev.String() || rev.LessThan(again) || rev.GreaterThan(again) {
			t.Fatalf("%q: %s and %s differ", s, rev, again)
		}
	})
}
