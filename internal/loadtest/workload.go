package loadtest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Op is one kind of request the load test sends.
type Op string

// The operations, reads first. Writes go through the facade's Actor (or
// the HTTP API's Spicegate-Actor), as an application's would.
const (
	OpCheck        Op = "check"         // one check: a dataset's view or delete, an organization's deploy
	OpBulkCheck    Op = "bulk_check"    // BulkCheckSize checks of one subject in one call
	OpPermissions  Op = "permissions"   // every permission of a subject on a dataset
	OpLookup       Op = "lookup"        // the first page of datasets a member may view
	OpAddMember    Op = "add_member"    // a User adds a new Read-only member
	OpRemoveMember Op = "remove_member" // support removes a member the test added
	OpCreateToken  Op = "create_token"  // a member creates an API token for itself
	OpDeleteToken  Op = "delete_token"  // its owner deletes a token the test created
	OpCreateInvite Op = "create_invite" // a User invites someone as Read-only
)

// Ops lists every operation in report order.
var Ops = []Op{OpCheck, OpBulkCheck, OpPermissions, OpLookup, OpAddMember, OpRemoveMember, OpCreateToken, OpDeleteToken, OpCreateInvite}

// BulkCheckSize is the number of checks in one bulk check.
const BulkCheckSize = 20

// LookupLimit is the page size of a lookup.
const LookupLimit = 100

// Mix is the share of each operation, in relative weights.
type Mix map[Op]int

// DefaultMix is mostly checks, with every other read and 10% writes.
var DefaultMix = Mix{OpCheck: 80, OpBulkCheck: 4, OpPermissions: 3, OpLookup: 3,
	OpAddMember: 2, OpRemoveMember: 2, OpCreateToken: 2, OpDeleteToken: 2, OpCreateInvite: 2}

// ParseMix reads "check=80,bulk_check=5,add_member=2": weights by
// operation; operations not named get none.
func ParseMix(s string) (Mix, error) {
	m := Mix{}
	for part := range strings.SplitSeq(s, ",") {
		name, weight, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, fmt.Errorf("mix: %q is not op=weight", part)
		}
		op := Op(name)
		if !slices.Contains(Ops, op) {
			return nil, fmt.Errorf("mix: unknown operation %q (one of %s)", name, opNames())
		}
		w, err := strconv.Atoi(weight)
		if err != nil || w < 0 {
			return nil, fmt.Errorf("mix: the weight of %s must be a whole number >= 0, not %q", name, weight)
		}
		m[op] = w
	}
	if m.total() == 0 {
		return nil, fmt.Errorf("mix: every weight is 0")
	}
	return m, nil
}

func opNames() string {
	names := make([]string, len(Ops))
	for i, op := range Ops {
		names[i] = string(op)
	}
	return strings.Join(names, ", ")
}

func (m Mix) total() int {
	n := 0
	for _, w := range m {
		n += w
	}
	return n
}

// String formats the mix as ParseMix reads it, in report order.
func (m Mix) String() string {
	var parts []string
	for _, op := range Ops {
		if m[op] > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", op, m[op]))
		}
	}
	return strings.Join(parts, ",")
}

// Shape is the size of the generated data the requests address: the
// organizations, members and datasets of seed.Generate with the same
// sizes (org00001, org00001-u0001, org00001-d000001, ...).
type Shape struct {
	Orgs, Members, Datasets int
}

// Request is one request to send: the operation and what it addresses.
// Which fields are set depends on Op.
type Request struct {
	Op    Op
	Actor string // "user:ID" for writes
	Org   string
	// Subject, Permission and Resource are a check's or the subject of
	// permissions and lookups ("user:ID" or "api_token:ID", "dataset:ID").
	Subject    string
	Permission string
	Resource   string
	// Resources are a bulk check's resources (one permission, view).
	Resources []string
	// User is the member added or removed; Token the token deleted.
	User, Token string
	// done is told what a write created, so that later removals and
	// deletions have something of the test's own to remove.
	done func(created string)
}

// workload draws requests: organizations with a Zipf skew (a few hot
// ones, as on a real platform), members and datasets uniformly within
// them. It is safe for concurrent use.
type workload struct {
	shape Shape
	mix   Mix
	run   string // a per-run prefix of the users the test adds

	mu      sync.Mutex
	rng     *rand.Rand
	zipf    *rand.Zipf
	added   map[string][]string    // org -> members the test added
	tokens  map[string][][2]string // org -> (token, owner) the test created
	counter int
}

func newWorkload(shape Shape, mix Mix, seed uint64) *workload {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	var zipf *rand.Zipf
	if shape.Orgs > 1 {
		zipf = rand.NewZipf(rng, 1.1, 1, uint64(shape.Orgs-1))
	}
	// The users a run adds are its own (two runs never add the same one),
	// whatever the seed.
	return &workload{shape: shape, mix: mix, run: fmt.Sprintf("lt%x", time.Now().UnixNano()), rng: rng, zipf: zipf,
		added: map[string][]string{}, tokens: map[string][][2]string{}}
}

func (w *workload) org() string {
	i := uint64(0)
	if w.zipf != nil {
		i = w.zipf.Uint64()
	}
	return fmt.Sprintf("org%05d", i+1)
}

func (w *workload) member(org string) string {
	return fmt.Sprintf("%s-u%04d", org, 1+w.rng.IntN(max(w.shape.Members, 1)))
}

func (w *workload) dataset(org string) string {
	return fmt.Sprintf("dataset:%s-d%06d", org, 1+w.rng.IntN(max(w.shape.Datasets, 1)))
}

// subject is a member, or one time in five the member's generated token.
func (w *workload) subject(org string) string {
	m := w.member(org)
	if w.rng.IntN(5) == 0 {
		return "api_token:" + m + "-token"
	}
	return "user:" + m
}

// next draws the next request.
func (w *workload) next() Request {
	w.mu.Lock()
	defer w.mu.Unlock()
	pick := w.rng.IntN(w.mix.total())
	var op Op
	for _, o := range Ops {
		if pick < w.mix[o] {
			op = o
			break
		}
		pick -= w.mix[o]
	}
	org := w.org()
	firstUser := "user:" + org + "-u0001" // a User in every generated organization
	r := Request{Op: op, Org: org}
	switch op {
	case OpCheck:
		r.Subject = w.subject(org)
		switch n := w.rng.IntN(10); {
		case n < 6:
			r.Permission, r.Resource = "view", w.dataset(org)
		case n < 8:
			r.Permission, r.Resource = "delete", w.dataset(org)
		default:
			r.Permission, r.Resource = "deploy", "organization:"+org
		}
	case OpBulkCheck:
		r.Subject, r.Permission = w.subject(org), "view"
		for range BulkCheckSize {
			r.Resources = append(r.Resources, w.dataset(org))
		}
	case OpPermissions:
		r.Subject, r.Resource = w.subject(org), w.dataset(org)
	case OpLookup:
		r.Subject, r.Permission, r.Resource = "user:"+w.member(org), "view", "dataset"
	case OpRemoveMember:
		if added := w.added[org]; len(added) > 0 {
			r.Actor, r.User = "user:support", added[len(added)-1]
			w.added[org] = added[:len(added)-1]
			break
		}
		r.Op = OpAddMember // nothing of the test's own to remove yet
		fallthrough
	case OpAddMember:
		w.counter++
		r.Actor, r.User = firstUser, fmt.Sprintf("%s-%s-%d", org, w.run, w.counter)
		r.done = func(string) { w.push(func() { w.added[org] = append(w.added[org], r.User) }) }
	case OpDeleteToken:
		if toks := w.tokens[org]; len(toks) > 0 {
			t := toks[len(toks)-1]
			w.tokens[org] = toks[:len(toks)-1]
			r.Token, r.Actor = t[0], "user:"+t[1]
			break
		}
		r.Op = OpCreateToken
		fallthrough
	case OpCreateToken:
		owner := w.member(org)
		r.Actor = "user:" + owner
		r.done = func(id string) { w.push(func() { w.tokens[org] = append(w.tokens[org], [2]string{id, owner}) }) }
	case OpCreateInvite:
		r.Actor = firstUser
	}
	return r
}

func (w *workload) push(f func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	f()
}
