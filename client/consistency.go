package client

import (
	"sync"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
)

// Revision is a point in SpiceDB's history (a ZedToken): every write
// returns the revision it was written at, and every check carries the one
// it was evaluated at. It is opaque: pass it between services as the
// string it is, never parse it.
type Revision string

func (r Revision) proto() *v1.ZedToken { return &v1.ZedToken{Token: string(r)} }

func revisionOf(t *v1.ZedToken) Revision {
	if t == nil {
		return ""
	}
	return Revision(t.GetToken())
}

// Consistency says how fresh the data a read sees must be. The zero value
// is the client's default: see [Client].
type Consistency struct {
	kind consistencyKind
	rev  Revision
}

type consistencyKind int

const (
	consistencyDefault consistencyKind = iota
	consistencyMinimizeLatency
	consistencyAtLeast
	consistencyFull
	consistencyExact
)

// MinimizeLatency reads whatever SpiceDB has cached: fastest, possibly a
// few seconds stale. Right for UI hints, wrong right after a write.
func MinimizeLatency() Consistency { return Consistency{kind: consistencyMinimizeLatency} }

// AtLeastAsFresh reads data at least as new as rev: read-your-writes
// across services, when the writer passes its revision along.
func AtLeastAsFresh(rev Revision) Consistency { return Consistency{kind: consistencyAtLeast, rev: rev} }

// FullyConsistent reads the newest data. It bypasses SpiceDB's caches: use
// it where a stale answer would be wrong, not everywhere.
func FullyConsistent() Consistency { return Consistency{kind: consistencyFull} }

// freshAfter is the consistency of a facade read that must see the
// facade's own write at rev. fully_consistent is not enough: SpiceDB
// shares one head-revision lookup among concurrent callers (a
// singleflight), so a read that starts right after a write can be served
// at a head taken before that write committed. at_least_as_fresh(rev)
// cannot miss it, nor anything committed before it. With no write yet
// (rev ""), it is fully consistent.
func freshAfter(rev Revision) Consistency {
	if rev == "" {
		return FullyConsistent()
	}
	return AtLeastAsFresh(rev)
}

// AtExactSnapshot reads the data exactly as it was at rev (e.g. to page
// through a listing at one point in time).
func AtExactSnapshot(rev Revision) Consistency { return Consistency{kind: consistencyExact, rev: rev} }

func (c Consistency) validate() error {
	if (c.kind == consistencyAtLeast || c.kind == consistencyExact) && c.rev == "" {
		return argErr("consistency", "", "needs a revision")
	}
	return nil
}

// proto resolves the requirement; for the default it asks the tracker.
func (c Consistency) proto(t *revisionTracker) *v1.Consistency {
	switch c.kind {
	case consistencyMinimizeLatency:
		return &v1.Consistency{Requirement: &v1.Consistency_MinimizeLatency{MinimizeLatency: true}}
	case consistencyAtLeast:
		return &v1.Consistency{Requirement: &v1.Consistency_AtLeastAsFresh{AtLeastAsFresh: c.rev.proto()}}
	case consistencyFull:
		return &v1.Consistency{Requirement: &v1.Consistency_FullyConsistent{FullyConsistent: true}}
	case consistencyExact:
		return &v1.Consistency{Requirement: &v1.Consistency_AtExactSnapshot{AtExactSnapshot: c.rev.proto()}}
	default:
		return t.defaultConsistency()
	}
}

// revisionTracker gives the default consistency read-your-writes within one
// Client: reads are at least as fresh as the newest revision it wrote.
//
// Revisions are opaque, so which of two is newer is only known from
// timing: a write that overlapped no other write of this Client is newer
// than all before it. When writes overlapped, the newest among them is
// unknown, and reads are fully consistent until a write completes alone.
type revisionTracker struct {
	mu         sync.Mutex
	inFlight   int
	overlapped bool
	newest     Revision
	uncertain  bool
}

// begin marks a write as started; call the returned func with its revision
// ("" if it failed) when it ends.
func (t *revisionTracker) begin() func(Revision) {
	t.mu.Lock()
	t.inFlight++
	if t.inFlight > 1 {
		t.overlapped = true
	}
	t.mu.Unlock()
	return func(rev Revision) {
		t.mu.Lock()
		defer t.mu.Unlock()
		t.inFlight--
		if rev != "" {
			t.newest = rev
			t.uncertain = t.overlapped
		}
		if t.inFlight == 0 {
			t.overlapped = false
		}
	}
}

func (t *revisionTracker) defaultConsistency() *v1.Consistency {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.uncertain:
		return &v1.Consistency{Requirement: &v1.Consistency_FullyConsistent{FullyConsistent: true}}
	case t.newest != "":
		return &v1.Consistency{Requirement: &v1.Consistency_AtLeastAsFresh{AtLeastAsFresh: t.newest.proto()}}
	default:
		return &v1.Consistency{Requirement: &v1.Consistency_MinimizeLatency{MinimizeLatency: true}}
	}
}

// Newest returns the newest revision the tracker is sure of.
func (t *revisionTracker) Newest() Revision {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.newest
}
