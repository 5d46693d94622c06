package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	core "github.com/authzed/spicedb/pkg/proto/core/v1"
	"github.com/authzed/spicedb/pkg/schemadsl/compiler"
	"github.com/authzed/spicedb/pkg/schemadsl/input"

	"github.com/spicegate/spicegate/schema"
)

// TestDifferentialAgainstMemory writes the same random relationships and
// mutations (creates, touches, deletes, deletes by filter, expirations in
// the past and in the future) through the v1 API to two real SpiceDB
// servers, one on SpiceDB's memory datastore and one on the SQLite
// datastore, with Spicegate's schema, and after every batch of writes asks
// both the same random CheckPermission, CheckBulkPermissions,
// LookupResources and LookupSubjects questions (fully consistent, or at
// least as fresh as each server's own write): every answer must be the same.
// Relationships and questions are derived from the schema itself, so the
// test follows the schema as it changes.
//
// SPICEGATE_DIFF_SEED=N replays a run; the seed is printed on failure.
// -short asks 2,000 questions instead of 10,000, and so does a -race build
// 3,000 (the race detector makes every question about eight times slower
// on SpiceDB's side and on SQLite's; the comparison itself is the same).
func TestDifferentialAgainstMemory(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("SPICEGATE_DIFF_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		require.NoError(t, err)
		seed = v
	}
	t.Logf("seed %d (replay with SPICEGATE_DIFF_SEED=%d)", seed, seed)
	defer func() {
		if t.Failed() {
			t.Logf("FAILED with seed %d: replay with SPICEGATE_DIFF_SEED=%d", seed, seed)
		}
	}()

	batches, questionsPerBatch := 250, 40
	switch {
	case testing.Short():
		batches = 50
	case raceEnabled:
		batches = 75
	}

	memConn := startServer(t, nil)
	sqlConn := startServer(t, newDatastore(t, syncNormal()...))
	writeSchema(t, memConn)
	writeSchema(t, sqlConn)

	g := newGenerator(t, seed)
	d := &differ{t: t, mem: memConn, sql: sqlConn, stats: map[string]int{}}

	questions := 0
	for batch := range batches {
		g.rnd = rand.New(rand.NewPCG(seed, uint64(batch)))
		d.write(g, batch)
		qs := make([]question, questionsPerBatch)
		for i := range qs {
			qs[i] = g.question()
		}
		d.ask(qs, batch)
		questions += len(qs)
		if batch%50 == 49 {
			d.compareAllRelationships(g)
		}
		if t.Failed() {
			return
		}
	}
	t.Logf("%d batches of writes, %d questions answered identically", batches, questions)
	t.Logf("answers: %v; time answering: memory %s, sqlite %s; by kind (check, bulk, lookup resources, lookup subjects): %v", d.stats, d.memTime, d.sqlTime, d.kindTime)
	require.GreaterOrEqual(t, questions, min(10000, batches*questionsPerBatch))
}

// objectType is a definition of the schema, as the generator uses it.
type objectType struct {
	name        string
	relations   []relationInfo
	permissions []string // relations and permissions: what may be checked
}

type relationInfo struct {
	name    string
	allowed []*core.AllowedRelation
}

type generator struct {
	t     testing.TB
	rnd   *rand.Rand
	types map[string]*objectType
	names []string
	// written remembers relationships, so that deletes and creates often hit
	// existing ones.
	written []*v1.Relationship
}

func newGenerator(t testing.TB, seed uint64) *generator {
	compiled, err := compiler.Compile(compiler.InputSchema{Source: input.Source("schema"), SchemaString: schema.Text()},
		compiler.AllowUnprefixedObjectType())
	require.NoError(t, err)
	g := &generator{t: t, rnd: rand.New(rand.NewPCG(seed, 0)), types: map[string]*objectType{}}
	for _, def := range compiled.ObjectDefinitions {
		ot := &objectType{name: def.Name}
		for _, rel := range def.Relation {
			ot.permissions = append(ot.permissions, rel.Name)
			if rel.TypeInformation != nil && len(rel.TypeInformation.AllowedDirectRelations) > 0 {
				ot.relations = append(ot.relations, relationInfo{name: rel.Name, allowed: rel.TypeInformation.AllowedDirectRelations})
			}
		}
		g.types[def.Name] = ot
		g.names = append(g.names, def.Name)
	}
	sort.Strings(g.names)
	return g
}

// id picks an object ID of a type: a handful per type, more users.
func (g *generator) id(typ string) string {
	n := 4
	switch typ {
	case "user":
		n = 8
	case "platform":
		return "global"
	}
	return fmt.Sprintf("%s%d", typ[:min(3, len(typ))], g.rnd.IntN(n))
}

func (g *generator) relationship() *v1.Relationship {
	var ot *objectType
	if org, ok := g.types["organization"]; ok && g.rnd.IntN(3) == 0 {
		ot = org // memberships connect most permissions: write them often
	}
	for ot == nil || len(ot.relations) == 0 {
		ot = g.types[g.names[g.rnd.IntN(len(g.names))]]
	}
	rel := ot.relations[g.rnd.IntN(len(ot.relations))]
	allowed := rel.allowed[g.rnd.IntN(len(rel.allowed))]
	subject := &v1.SubjectReference{Object: &v1.ObjectReference{ObjectType: allowed.Namespace}}
	switch {
	case allowed.GetPublicWildcard() != nil:
		subject.Object.ObjectId = "*"
	default:
		subject.Object.ObjectId = g.id(allowed.Namespace)
		if r := allowed.GetRelation(); r != "" && r != "..." {
			subject.OptionalRelation = r
		}
	}
	out := &v1.Relationship{
		Resource: &v1.ObjectReference{ObjectType: ot.name, ObjectId: g.id(ot.name)},
		Relation: rel.name,
		Subject:  subject,
	}
	if allowed.RequiredCaveat != nil {
		out.OptionalCaveat = &v1.ContextualizedCaveat{CaveatName: allowed.RequiredCaveat.CaveatName}
	}
	if allowed.RequiredExpiration != nil {
		switch g.rnd.IntN(3) {
		case 0: // in the past: invisible as soon as written
			out.OptionalExpiresAt = timestamppb.New(time.Now().Add(-time.Duration(1+g.rnd.IntN(3600)) * time.Second))
		case 1: // far enough in the future not to expire during the test
			out.OptionalExpiresAt = timestamppb.New(time.Now().Add(time.Duration(1+g.rnd.IntN(24)) * time.Hour))
		}
	}
	return out
}

func relKey(r *v1.Relationship) string {
	s := r.GetResource().GetObjectType() + ":" + r.GetResource().GetObjectId() + "#" + r.GetRelation() + "@" +
		r.GetSubject().GetObject().GetObjectType() + ":" + r.GetSubject().GetObject().GetObjectId()
	if sr := r.GetSubject().GetOptionalRelation(); sr != "" {
		s += "#" + sr
	}
	return s
}

func (g *generator) updates() []*v1.RelationshipUpdate {
	n := 1 + g.rnd.IntN(15)
	seen := map[string]bool{}
	var out []*v1.RelationshipUpdate
	for range n {
		var rel *v1.Relationship
		if len(g.written) > 0 && g.rnd.IntN(3) == 0 {
			rel = g.written[g.rnd.IntN(len(g.written))]
		} else {
			rel = g.relationship()
		}
		if seen[relKey(rel)] {
			continue
		}
		seen[relKey(rel)] = true
		op := v1.RelationshipUpdate_OPERATION_TOUCH
		switch p := g.rnd.IntN(100); {
		case p < 20:
			op = v1.RelationshipUpdate_OPERATION_DELETE
		case p < 30 && rel.OptionalExpiresAt == nil:
			op = v1.RelationshipUpdate_OPERATION_CREATE
		}
		if op != v1.RelationshipUpdate_OPERATION_DELETE {
			g.written = append(g.written, rel)
		}
		out = append(out, &v1.RelationshipUpdate{Operation: op, Relationship: rel})
	}
	return out
}

// subject picks the subject of a question: mostly users, sometimes anything.
func (g *generator) subject() *v1.SubjectReference {
	if len(g.written) > 0 && g.rnd.IntN(2) == 0 {
		s := g.written[g.rnd.IntN(len(g.written))].GetSubject().GetObject()
		if s.GetObjectId() != "*" && (s.GetObjectType() == "user" || g.rnd.IntN(3) == 0) {
			return &v1.SubjectReference{Object: &v1.ObjectReference{ObjectType: s.GetObjectType(), ObjectId: s.GetObjectId()}}
		}
	}
	typ := "user"
	if _, ok := g.types["user"]; !ok || g.rnd.IntN(5) == 0 {
		typ = g.names[g.rnd.IntN(len(g.names))]
	}
	return &v1.SubjectReference{Object: &v1.ObjectReference{ObjectType: typ, ObjectId: g.id(typ)}}
}

func (g *generator) resourceAndPermission() (*v1.ObjectReference, string) {
	if len(g.written) > 0 && g.rnd.IntN(2) == 0 {
		r := g.written[g.rnd.IntN(len(g.written))].GetResource()
		ot := g.types[r.GetObjectType()]
		return &v1.ObjectReference{ObjectType: r.GetObjectType(), ObjectId: r.GetObjectId()}, ot.permissions[g.rnd.IntN(len(ot.permissions))]
	}
	var ot *objectType
	for ot == nil || len(ot.permissions) == 0 {
		ot = g.types[g.names[g.rnd.IntN(len(g.names))]]
	}
	return &v1.ObjectReference{ObjectType: ot.name, ObjectId: g.id(ot.name)}, ot.permissions[g.rnd.IntN(len(ot.permissions))]
}

// askers is how many questions are asked at a time.
const askers = 2

type questionKind int

const (
	qCheck questionKind = iota
	qBulk
	qLookupResources
	qLookupSubjects
)

type question struct {
	kind        questionKind
	resource    *v1.ObjectReference
	permission  string
	subject     *v1.SubjectReference
	bulk        []*v1.CheckBulkPermissionsRequestItem
	subjectType string
	atLeastAsOf bool
}

func (g *generator) question() question {
	q := question{atLeastAsOf: g.rnd.IntN(4) == 0}
	switch p := g.rnd.IntN(100); {
	case p < 45:
		q.kind = qCheck
		q.resource, q.permission = g.resourceAndPermission()
		q.subject = g.subject()
	case p < 60:
		q.kind = qBulk
		for range 1 + g.rnd.IntN(10) {
			res, perm := g.resourceAndPermission()
			q.bulk = append(q.bulk, &v1.CheckBulkPermissionsRequestItem{Resource: res, Permission: perm, Subject: g.subject()})
		}
	case p < 80:
		q.kind = qLookupResources
		q.resource, q.permission = g.resourceAndPermission()
		q.subject = g.subject()
	default:
		q.kind = qLookupSubjects
		q.resource, q.permission = g.resourceAndPermission()
		q.subjectType = "user"
		if g.rnd.IntN(4) == 0 {
			q.subjectType = g.names[g.rnd.IntN(len(g.names))]
		}
	}
	return q
}

func (q question) String() string {
	switch q.kind {
	case qCheck:
		return fmt.Sprintf("CheckPermission(%s:%s#%s@%s:%s)", q.resource.ObjectType, q.resource.ObjectId, q.permission, q.subject.Object.ObjectType, q.subject.Object.ObjectId)
	case qBulk:
		return fmt.Sprintf("CheckBulkPermissions(%d items)", len(q.bulk))
	case qLookupResources:
		return fmt.Sprintf("LookupResources(%s#%s@%s:%s)", q.resource.ObjectType, q.permission, q.subject.Object.ObjectType, q.subject.Object.ObjectId)
	default:
		return fmt.Sprintf("LookupSubjects(%s:%s#%s, %s)", q.resource.ObjectType, q.resource.ObjectId, q.permission, q.subjectType)
	}
}

type differ struct {
	kindTime  [4]time.Duration
	stats     map[string]int
	memTime   time.Duration
	sqlTime   time.Duration
	t         *testing.T
	mem, sql  *grpc.ClientConn
	memToken  *v1.ZedToken
	sqlToken  *v1.ZedToken
	mu        sync.Mutex
	mismatchN int
}

func errCode(err error) string {
	if err == nil {
		return "OK"
	}
	return status.Code(err).String()
}

func (d *differ) write(g *generator, batch int) {
	ctx := context.Background()
	if g.rnd.IntN(15) == 0 {
		res, _ := g.resourceAndPermission()
		filter := &v1.RelationshipFilter{ResourceType: res.ObjectType}
		if g.rnd.IntN(2) == 0 {
			filter.OptionalResourceId = res.ObjectId
		} else {
			s := g.subject()
			filter.OptionalSubjectFilter = &v1.SubjectFilter{SubjectType: s.Object.ObjectType, OptionalSubjectId: s.Object.ObjectId}
		}
		req := &v1.DeleteRelationshipsRequest{RelationshipFilter: filter}
		mresp, merr := v1.NewPermissionsServiceClient(d.mem).DeleteRelationships(ctx, req)
		sresp, serr := v1.NewPermissionsServiceClient(d.sql).DeleteRelationships(ctx, req)
		require.Equal(d.t, errCode(merr), errCode(serr), "batch %d: DeleteRelationships(%v): memory %v, sqlite %v", batch, filter, merr, serr)
		if merr == nil {
			require.Equal(d.t, mresp.GetDeletionProgress(), sresp.GetDeletionProgress())
			d.memToken, d.sqlToken = mresp.GetDeletedAt(), sresp.GetDeletedAt()
		}
		return
	}
	req := &v1.WriteRelationshipsRequest{Updates: g.updates()}
	mresp, merr := v1.NewPermissionsServiceClient(d.mem).WriteRelationships(ctx, req)
	sresp, serr := v1.NewPermissionsServiceClient(d.sql).WriteRelationships(ctx, req)
	require.Equal(d.t, errCode(merr), errCode(serr), "batch %d: WriteRelationships(%v): memory %v, sqlite %v", batch, req.Updates, merr, serr)
	if merr == nil {
		d.memToken, d.sqlToken = mresp.GetWrittenAt(), sresp.GetWrittenAt()
	}
}

func (d *differ) consistency(q question, token *v1.ZedToken) *v1.Consistency {
	if q.atLeastAsOf && token != nil {
		return &v1.Consistency{Requirement: &v1.Consistency_AtLeastAsFresh{AtLeastAsFresh: token}}
	}
	return &v1.Consistency{Requirement: &v1.Consistency_FullyConsistent{FullyConsistent: true}}
}

// answer asks one server a question and renders the answer as text.
func (d *differ) answer(conn grpc.ClientConnInterface, token *v1.ZedToken, q question) string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	perms := v1.NewPermissionsServiceClient(conn)
	c := d.consistency(q, token)
	switch q.kind {
	case qCheck:
		resp, err := perms.CheckPermission(ctx, &v1.CheckPermissionRequest{Consistency: c, Resource: q.resource, Permission: q.permission, Subject: q.subject})
		if err != nil {
			return errCode(err)
		}
		return resp.GetPermissionship().String()
	case qBulk:
		resp, err := perms.CheckBulkPermissions(ctx, &v1.CheckBulkPermissionsRequest{Consistency: c, Items: q.bulk})
		if err != nil {
			return errCode(err)
		}
		var parts []string
		for _, p := range resp.GetPairs() {
			if e := p.GetError(); e != nil {
				parts = append(parts, "error:"+strconv.Itoa(int(e.GetCode())))
			} else {
				parts = append(parts, p.GetItem().GetPermissionship().String())
			}
		}
		return strings.Join(parts, ",")
	case qLookupResources:
		stream, err := perms.LookupResources(ctx, &v1.LookupResourcesRequest{Consistency: c, ResourceObjectType: q.resource.ObjectType, Permission: q.permission, Subject: q.subject})
		if err != nil {
			return errCode(err)
		}
		var out []string
		for {
			r, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return errCode(err)
			}
			out = append(out, r.GetResourceObjectId()+"="+r.GetPermissionship().String())
		}
		slices.Sort(out)
		return strings.Join(out, ",")
	default:
		stream, err := perms.LookupSubjects(ctx, &v1.LookupSubjectsRequest{Consistency: c, Resource: q.resource, Permission: q.permission, SubjectObjectType: q.subjectType})
		if err != nil {
			return errCode(err)
		}
		var out []string
		for {
			r, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return errCode(err)
			}
			s := r.GetSubject().GetSubjectObjectId() + "=" + r.GetSubject().GetPermissionship().String()
			var excluded []string
			for _, e := range r.GetExcludedSubjects() {
				excluded = append(excluded, e.GetSubjectObjectId())
			}
			slices.Sort(excluded)
			if len(excluded) > 0 {
				s += "-" + strings.Join(excluded, "-")
			}
			out = append(out, s)
		}
		slices.Sort(out)
		return strings.Join(out, ",")
	}
}

// ask asks both servers every question, several at a time.
func (d *differ) ask(qs []question, batch int) {
	var wg sync.WaitGroup
	work := make(chan question)
	for range askers {
		wg.Go(func() {
			for q := range work {
				start := time.Now()
				m := d.answer(d.mem, d.memToken, q)
				mid := time.Now()
				s := d.answer(d.sql, d.sqlToken, q)
				end := time.Now()
				d.mu.Lock()
				d.memTime += mid.Sub(start)
				d.sqlTime += end.Sub(mid)
				d.kindTime[q.kind] += end.Sub(start)
				d.stats[outcome(q, m)]++
				d.mu.Unlock()
				if m != s {
					d.mu.Lock()
					d.mismatchN++
					d.t.Errorf("batch %d: %s: memory answered %q, sqlite answered %q", batch, q, m, s)
					d.mu.Unlock()
				}
			}
		})
	}
	for _, q := range qs {
		work <- q
	}
	close(work)
	wg.Wait()
}

// compareAllRelationships reads every relationship from both servers.
func (d *differ) compareAllRelationships(g *generator) {
	read := func(conn grpc.ClientConnInterface) []string {
		var out []string
		for _, typ := range g.names {
			stream, err := v1.NewPermissionsServiceClient(conn).ReadRelationships(context.Background(), &v1.ReadRelationshipsRequest{
				Consistency:        &v1.Consistency{Requirement: &v1.Consistency_FullyConsistent{FullyConsistent: true}},
				RelationshipFilter: &v1.RelationshipFilter{ResourceType: typ},
			})
			require.NoError(d.t, err)
			for {
				r, err := stream.Recv()
				if errors.Is(err, io.EOF) {
					break
				}
				require.NoError(d.t, err)
				s := relKey(r.GetRelationship())
				if e := r.GetRelationship().GetOptionalExpiresAt(); e != nil {
					s += "[" + e.AsTime().UTC().Truncate(time.Microsecond).Format(time.RFC3339Nano) + "]"
				}
				out = append(out, s)
			}
		}
		slices.Sort(out)
		return out
	}
	require.Equal(d.t, read(d.mem), read(d.sql), "ReadRelationships differ")
}

// outcome classifies an answer, to show what the questions exercised.
func outcome(q question, answer string) string {
	kind := [...]string{"check", "bulk", "lookup-resources", "lookup-subjects"}[q.kind]
	switch {
	case answer == "":
		return kind + ":empty"
	case !strings.Contains(answer, "_") && !strings.Contains(answer, "="):
		return kind + ":error"
	case strings.Contains(answer, "HAS_PERMISSION"):
		return kind + ":allowed"
	default:
		return kind + ":denied"
	}
}
