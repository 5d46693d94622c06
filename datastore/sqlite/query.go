package sqlite

import (
	"database/sql"
	"fmt"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/authzed/spicedb/pkg/datastore"
	"github.com/authzed/spicedb/pkg/datastore/options"
	core "github.com/authzed/spicedb/pkg/proto/core/v1"
	"github.com/authzed/spicedb/pkg/spiceerrors"
	"github.com/authzed/spicedb/pkg/tuple"
)

const (
	colNamespace        = "namespace"
	colObjectID         = "object_id"
	colRelation         = "relation"
	colSubjectNamespace = "subject_namespace"
	colSubjectObjectID  = "subject_object_id"
	colSubjectRelation  = "subject_relation"

	// relColumns are the columns a relationship read returns, in scan order.
	relColumns = "namespace, object_id, relation, subject_namespace, subject_object_id, subject_relation, " +
		"caveat_name, caveat_context, expiration, integrity_key_id, integrity_hash, integrity_timestamp"

	indexBySubject = "relationships_by_subject"
)

// numRelColumns counts the columns of a relationship's key.
const numRelColumns = 6

var (
	byResourceColumns = []string{colNamespace, colObjectID, colRelation, colSubjectNamespace, colSubjectObjectID, colSubjectRelation}
	bySubjectColumns  = []string{colSubjectNamespace, colSubjectObjectID, colSubjectRelation, colNamespace, colObjectID, colRelation}

	orderByResource = " ORDER BY " + strings.Join(byResourceColumns, ", ")
	orderBySubject  = " ORDER BY " + strings.Join(bySubjectColumns, ", ")
)

// relQuery builds the SQL of one relationship read. Every read filters on
// the revision (created_txn <= R < deleted_txn) and, unless asked not to, on
// expiration.
type relQuery struct {
	where  []string
	args   []any
	static [numRelColumns]string // the value the filter fixes, per column (colIndex)
	fixed  uint8                 // the columns whose value the filter fixes, a bit each
	varies uint8                 // the columns the filter leaves free
	index  string                // INDEXED BY, when the access path is known
}

func newRelQuery(rev revision) *relQuery {
	q := &relQuery{}
	q.where = append(make([]string, 0, 8), "created_txn <= ?", "deleted_txn > ?")
	q.args = append(make([]any, 0, 8), int64(rev), int64(rev))
	return q
}

// colIndex numbers the relationship columns (bits of relQuery's fixed and
// varies); -1 for any other column.
func colIndex(col string) int {
	switch col {
	case colNamespace:
		return 0
	case colObjectID:
		return 1
	case colRelation:
		return 2
	case colSubjectNamespace:
		return 3
	case colSubjectObjectID:
		return 4
	case colSubjectRelation:
		return 5
	}
	return -1
}

// eqCond is "col = ?", without building the string for the relationship
// columns (a read builds its SQL on every call).
func eqCond(col string) string {
	switch col {
	case colNamespace:
		return colNamespace + " = ?"
	case colObjectID:
		return colObjectID + " = ?"
	case colRelation:
		return colRelation + " = ?"
	case colSubjectNamespace:
		return colSubjectNamespace + " = ?"
	case colSubjectObjectID:
		return colSubjectObjectID + " = ?"
	case colSubjectRelation:
		return colSubjectRelation + " = ?"
	}
	return col + " = ?"
}

func (q *relQuery) and(cond string, args ...any) {
	q.where = append(q.where, cond)
	q.args = append(q.args, args...)
}

func (q *relQuery) eq(col, value string) {
	q.and(eqCond(col), value)
	q.fix(col, value)
}

func (q *relQuery) fix(col, value string) {
	i := colIndex(col)
	if i < 0 || q.varies&(1<<i) != 0 {
		return
	}
	if q.fixed&(1<<i) != 0 && q.static[i] != value {
		q.vary(col)
		return
	}
	q.fixed |= 1 << i
	q.static[i] = value
}

func (q *relQuery) vary(col string) {
	if i := colIndex(col); i >= 0 {
		q.fixed &^= 1 << i
		q.varies |= 1 << i
	}
}

// fixes reports whether the filter fixes col's value.
func (q *relQuery) fixes(col string) bool {
	i := colIndex(col)
	return i >= 0 && q.fixed&(1<<i) != 0
}

// in adds "col IN (...)". The list is padded (repeating its last value) to
// a power of two, so that the number of distinct statements, each prepared
// once and cached, stays small.
func (q *relQuery) in(col string, values []string) string {
	n := len(values)
	padded := n
	if n > 1 && n <= 1024 {
		padded = 1 << bits.Len(uint(n-1))
	}
	for _, v := range values {
		q.args = append(q.args, v)
	}
	for range padded - n {
		q.args = append(q.args, values[n-1])
	}
	if n == 1 {
		q.fix(col, values[0])
	} else {
		q.vary(col)
	}
	return inCond(col, padded)
}

// inConds holds the "col IN (?, ...)" conditions built so far, by column
// and length: a few dozen, given the padding.
var inConds sync.Map // inKey -> string

type inKey struct {
	col string
	n   int
}

func inCond(col string, n int) string {
	if c, ok := inConds.Load(inKey{col, n}); ok {
		return c.(string)
	}
	var sb strings.Builder
	sb.WriteString(col)
	sb.WriteString(" IN (?")
	sb.WriteString(strings.Repeat(",?", n-1))
	sb.WriteString(")")
	if n > 1024 {
		return sb.String() // not padded: too many lengths to keep
	}
	c, _ := inConds.LoadOrStore(inKey{col, n}, sb.String())
	return c.(string)
}

// prefix adds a range condition for IDs starting with p, which (unlike
// LIKE) the primary key serves. UTF-8 text never contains the byte 0xff.
func (q *relQuery) prefix(col, p string) {
	q.and(col+" >= ? AND "+col+" < ?", p, p+"\xff")
	q.vary(col)
}

func (q *relQuery) resourceFilter(filter datastore.RelationshipsFilter) error {
	if filter.OptionalResourceType != "" {
		q.eq(colNamespace, filter.OptionalResourceType)
	}
	if filter.OptionalResourceRelation != "" {
		q.eq(colRelation, filter.OptionalResourceRelation)
	}
	if len(filter.OptionalResourceIds) > 0 && filter.OptionalResourceIDPrefix != "" {
		return spiceerrors.MustBugf("cannot filter by both resource IDs and an ID prefix")
	}
	if len(filter.OptionalResourceIds) > 0 {
		cond := q.in(colObjectID, filter.OptionalResourceIds)
		q.where = append(q.where, cond)
	}
	if skipsRelations(filter) {
		q.and(skipScanRelations, filter.OptionalResourceType, filter.OptionalResourceIds[0],
			filter.OptionalResourceType, filter.OptionalResourceIds[0])
	}
	if filter.OptionalResourceIDPrefix != "" {
		q.prefix(colObjectID, filter.OptionalResourceIDPrefix)
	}
	if len(filter.OptionalSubjectsSelectors) > 0 {
		q.subjectSelectors(filter.OptionalSubjectsSelectors)
	}
	switch filter.OptionalCaveatNameFilter.Option {
	case datastore.CaveatFilterOptionHasMatchingCaveat:
		q.and("caveat_name = ?", filter.OptionalCaveatNameFilter.CaveatName)
	case datastore.CaveatFilterOptionNoCaveat:
		q.and("(caveat_name IS NULL OR caveat_name = '')")
	}
	switch filter.OptionalExpirationOption {
	case datastore.ExpirationFilterOptionHasExpiration:
		q.and("expiration IS NOT NULL")
	case datastore.ExpirationFilterOptionNoExpiration:
		q.and("expiration IS NULL")
	}
	return nil
}

// skipScanRelations lists the relations one resource has, as a condition
// on the relation column: one primary-key seek per relation (the next
// relation after the last one found), whatever the number of rows under
// each. Dead and future rows count too, which only adds a candidate; the
// revision conditions still decide what is read. Its arguments: the
// resource's type and ID, twice.
const skipScanRelations = colRelation + ` IN (WITH RECURSIVE rels(r) AS (` +
	`SELECT (SELECT relation FROM relationships WHERE namespace = ? AND object_id = ? ORDER BY relation LIMIT 1) ` +
	`UNION ALL SELECT (SELECT relation FROM relationships WHERE namespace = ? AND object_id = ? AND relation > rels.r ` +
	`ORDER BY relation LIMIT 1) FROM rels WHERE rels.r IS NOT NULL) SELECT r FROM rels WHERE r IS NOT NULL)`

// skipsRelations reports whether a read gets skipScanRelations: one
// resource, any relation, and subjects named by type and ID ("the roles
// user U holds in organization O"). Without it SQLite seeks the resource
// and reads every row under it to find the subject's: an organization's
// whole membership, on every write a member makes. With it, each of the
// resource's few relations is a seek on the full key.
func skipsRelations(filter datastore.RelationshipsFilter) bool {
	if filter.OptionalResourceType == "" || len(filter.OptionalResourceIds) != 1 || filter.OptionalResourceRelation != "" ||
		len(filter.OptionalSubjectsSelectors) == 0 {
		return false
	}
	for _, sel := range filter.OptionalSubjectsSelectors {
		if sel.OptionalSubjectType == "" || len(sel.OptionalSubjectIds) == 0 {
			return false
		}
	}
	return true
}

func (q *relQuery) subjectSelectors(selectors []datastore.SubjectsSelector) {
	if len(selectors) > 1 {
		q.vary(colSubjectNamespace)
		q.vary(colSubjectObjectID)
		q.vary(colSubjectRelation)
		// Selectors of one subject type that all name their IDs (a check
		// of a subject and of the type's wildcard) also get the union of
		// their keys as a plain condition, which SQLite seeks: from an OR
		// alone it would read every subject under the resource.
		if typ, ids, ok := sameTypeIDs(selectors); ok {
			q.and(colSubjectNamespace+" = ?", typ)
			q.where = append(q.where, q.in(colSubjectObjectID, ids))
			q.vary(colSubjectObjectID)
		}
	}
	// One condition, built in one buffer: a check reads with one selector
	// on every dispatch.
	var sb strings.Builder
	sb.Grow(128)
	sb.WriteByte('(')
	for i, sel := range selectors {
		if i > 0 {
			sb.WriteString(" OR ")
		}
		ands := make([]string, 0, 3)
		if sel.OptionalSubjectType != "" {
			ands = append(ands, colSubjectNamespace+" = ?")
			q.args = append(q.args, sel.OptionalSubjectType)
			q.fix(colSubjectNamespace, sel.OptionalSubjectType)
		}
		if len(sel.OptionalSubjectIds) > 0 {
			ands = append(ands, q.in(colSubjectObjectID, sel.OptionalSubjectIds))
		}
		if !sel.RelationFilter.IsEmpty() {
			switch {
			case sel.RelationFilter.OnlyNonEllipsisRelations:
				ands = append(ands, colSubjectRelation+" <> ?")
				q.args = append(q.args, datastore.Ellipsis)
				q.vary(colSubjectRelation)
			case sel.RelationFilter.IncludeEllipsisRelation && sel.RelationFilter.NonEllipsisRelation != "":
				ands = append(ands, colSubjectRelation+" IN (?, ?)")
				q.args = append(q.args, datastore.Ellipsis, sel.RelationFilter.NonEllipsisRelation)
				q.vary(colSubjectRelation)
			case sel.RelationFilter.IncludeEllipsisRelation:
				ands = append(ands, colSubjectRelation+" = ?")
				q.args = append(q.args, datastore.Ellipsis)
				q.fix(colSubjectRelation, datastore.Ellipsis)
			default:
				ands = append(ands, colSubjectRelation+" = ?")
				q.args = append(q.args, sel.RelationFilter.NonEllipsisRelation)
				q.fix(colSubjectRelation, sel.RelationFilter.NonEllipsisRelation)
			}
		}
		if len(ands) == 0 {
			ands = append(ands, "1")
		}
		sb.WriteByte('(')
		for j, a := range ands {
			if j > 0 {
				sb.WriteString(" AND ")
			}
			sb.WriteString(a)
		}
		sb.WriteByte(')')
	}
	sb.WriteByte(')')
	q.where = append(q.where, sb.String())
}

// sameTypeIDs returns the subject type of selectors and the IDs they name,
// each once, when they all name one type and IDs.
func sameTypeIDs(selectors []datastore.SubjectsSelector) (string, []string, bool) {
	typ := selectors[0].OptionalSubjectType
	var ids []string
	for _, sel := range selectors {
		if sel.OptionalSubjectType == "" || sel.OptionalSubjectType != typ || len(sel.OptionalSubjectIds) == 0 {
			return "", nil, false
		}
		for _, id := range sel.OptionalSubjectIds {
			if !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
	}
	return typ, ids, true
}

func (q *relQuery) notExpired(now time.Time) {
	q.and("(expiration IS NULL OR expiration > ?)", now.UnixMicro())
}

// cursor adds "(columns...) > (cursor...)" (or <=) in the sort order,
// leaving out the columns the filter fixes.
func (q *relQuery) cursor(c options.Cursor, order options.SortOrder, op string) error {
	rel := options.ToRelationship(c)
	var cols []string
	switch order {
	case options.ByResource:
		cols = byResourceColumns
	case options.BySubject:
		cols = bySubjectColumns
	default:
		return datastore.ErrCursorsWithoutSorting
	}
	values := map[string]string{
		colNamespace:        rel.Resource.ObjectType,
		colObjectID:         rel.Resource.ObjectID,
		colRelation:         rel.Resource.Relation,
		colSubjectNamespace: rel.Subject.ObjectType,
		colSubjectObjectID:  rel.Subject.ObjectID,
		colSubjectRelation:  rel.Subject.Relation,
	}
	var names []string
	var args []any
	for _, col := range cols {
		if q.fixes(col) {
			continue
		}
		names = append(names, col)
		args = append(args, values[col])
	}
	if len(names) == 0 {
		if op == ">" {
			q.and("0") // every row equals the cursor: nothing is after it
		}
		return nil
	}
	q.and("("+strings.Join(names, ", ")+") "+op+" ("+strings.Repeat("?, ", len(names)-1)+"?)", args...)
	return nil
}

func (q *relQuery) sql(order options.SortOrder, limit *uint64) string {
	var sb strings.Builder
	sb.Grow(512)
	sb.WriteString("SELECT ")
	sb.WriteString(relColumns)
	sb.WriteString(" FROM relationships")
	if q.index != "" {
		sb.WriteString(" INDEXED BY ")
		sb.WriteString(q.index)
	}
	sb.WriteString(" WHERE ")
	for i, w := range q.where {
		if i > 0 {
			sb.WriteString(" AND ")
		}
		sb.WriteString(w)
	}
	switch order {
	case options.ByResource:
		sb.WriteString(orderByResource)
	case options.BySubject:
		sb.WriteString(orderBySubject)
	}
	if limit != nil {
		sb.WriteString(" LIMIT ")
		sb.WriteString(strconv.FormatUint(limitBucket(*limit), 10))
	}
	return sb.String()
}

// minLimitBucket is the smallest LIMIT a read's SQL carries (see limitBucket).
const minLimitBucket = 64

// limitBucket is the LIMIT written into a read's SQL for a read of at most n
// rows: n rounded up to a power of two, at least minLimitBucket (0 stays
// 0); the reader stops at n itself. The LIMIT is a literal, not a
// parameter, because SQLite lets a bound LIMIT steer its plan and so
// recompiles a statement every time that parameter is bound
// (sqlite3ExprIsInteger sets the statement's expmask): with "LIMIT ?" every
// paged or limited read was parsed and planned again, which measured 43% of
// the SQLite time of a write-heavy load. Rounding keeps the number of
// distinct statements, each prepared once and cached, small whatever limits
// callers ask for (the statement cache stops adding at
// maxCachedStatements): five for every limit up to 1,024.
func limitBucket(n uint64) uint64 {
	if n == 0 {
		return 0
	}
	if n <= minLimitBucket {
		return minLimitBucket
	}
	if n > 1<<62 {
		return 1 << 62
	}
	return 1 << bits.Len64(n-1)
}

// wantsSubjectIndex reports whether the subject index is the access path:
// no resource IDs to seek in the primary key, and one subject selector with
// a type and IDs to seek in the subject index.
func wantsSubjectIndex(filter datastore.RelationshipsFilter) bool {
	if len(filter.OptionalResourceIds) > 0 || filter.OptionalResourceIDPrefix != "" {
		return false
	}
	if len(filter.OptionalSubjectsSelectors) != 1 {
		return false
	}
	sel := filter.OptionalSubjectsSelectors[0]
	return sel.OptionalSubjectType != "" && len(sel.OptionalSubjectIds) > 0
}

// seeks reports whether SQLite reaches a read's rows by seeking to them:
// every row it visits before the first it returns is a version (dead,
// expired or future) of a row the read names, never a row of another
// subject or resource, and no sort precedes the first row. Such a read runs
// without an interrupt on its context (poolQuerier.query). Two shapes, with
// no caveat or expiration filter (which could skip any number of rows):
//   - the primary key: resource type, IDs and relation, and either no
//     subject selector (every subject of those resources is wanted) or
//     selectors naming subjects of one type by IDs (subjectSelectors seeks
//     their union); in resource order;
//   - the subject index: one selector naming its subjects by type, IDs and
//     one subject relation, and the resource type and relation (the index
//     orders resources by relation, then ID: without both, the subject
//     order sorts); in subject order.
//
// Not seeks, among others: SpiceDB's read of subject sets (no subject
// named), a subject's reads in resource order (sorted first).
// TestSeeksSeek checks every shape this admits against SQLite's plans.
func seeks(filter datastore.RelationshipsFilter, order options.SortOrder) bool {
	if filter.OptionalCaveatNameFilter.Option != datastore.CaveatFilterOptionNone ||
		filter.OptionalExpirationOption != datastore.ExpirationFilterOptionNone ||
		filter.OptionalResourceIDPrefix != "" {
		return false
	}
	order = effectiveOrder(filter, order)
	sels := filter.OptionalSubjectsSelectors
	if filter.OptionalResourceType != "" && len(filter.OptionalResourceIds) > 0 && filter.OptionalResourceRelation != "" {
		if order != options.ByResource && order != options.Unsorted {
			return false
		}
		if len(sels) == 0 {
			return true
		}
		_, _, ok := sameTypeIDs(sels)
		return ok
	}
	if !wantsSubjectIndex(filter) || order != options.BySubject && order != options.Unsorted {
		return false
	}
	rf := sels[0].RelationFilter
	oneRelation := rf.IncludeEllipsisRelation != (rf.NonEllipsisRelation != "") && !rf.OnlyNonEllipsisRelations
	return oneRelation && filter.OptionalResourceType != "" && filter.OptionalResourceRelation != ""
}

// effectiveOrder resolves ChooseEfficient: the order of the read's index.
func effectiveOrder(filter datastore.RelationshipsFilter, order options.SortOrder) options.SortOrder {
	if order != options.ChooseEfficient {
		return order
	}
	if wantsSubjectIndex(filter) {
		return options.BySubject
	}
	return options.ByResource
}

// buildRelQuery returns the SQL and arguments of a relationship read.
func buildRelQuery(rev revision, now time.Time, filter datastore.RelationshipsFilter, order options.SortOrder,
	after, beforeOrEqual options.Cursor, limit *uint64, skipExpiration bool,
) (string, []any, error) {
	q := newRelQuery(rev)
	if err := q.resourceFilter(filter); err != nil {
		return "", nil, err
	}
	subjectIndex := wantsSubjectIndex(filter)
	if subjectIndex {
		q.index = indexBySubject
	}
	order = effectiveOrder(filter, order)
	if !skipExpiration {
		q.notExpired(now)
	}
	if after != nil {
		if order == options.Unsorted {
			return "", nil, datastore.ErrCursorsWithoutSorting
		}
		if err := q.cursor(after, order, ">"); err != nil {
			return "", nil, err
		}
	}
	if beforeOrEqual != nil {
		if order == options.Unsorted {
			return "", nil, datastore.ErrCursorsWithoutSorting
		}
		if err := q.cursor(beforeOrEqual, order, "<="); err != nil {
			return "", nil, err
		}
	}
	return q.sql(order, limit), q.args, nil
}

// relRow is one scanned relationship row.
type relRow struct {
	ns, oid, rel, sns, soid, srel string
	caveatName                    sql.NullString
	caveatContext                 []byte
	expiration                    sql.NullInt64
	integrityKeyID                sql.NullString
	integrityHash                 []byte
	integrityTimestamp            sql.NullInt64
}

func (r *relRow) dest() []any {
	return []any{&r.ns, &r.oid, &r.rel, &r.sns, &r.soid, &r.srel, &r.caveatName, &r.caveatContext,
		&r.expiration, &r.integrityKeyID, &r.integrityHash, &r.integrityTimestamp}
}

func (r *relRow) relationship() (tuple.Relationship, error) {
	rel := tuple.Relationship{
		RelationshipReference: tuple.RelationshipReference{
			Resource: tuple.ObjectAndRelation{ObjectType: r.ns, ObjectID: r.oid, Relation: r.rel},
			Subject:  tuple.ObjectAndRelation{ObjectType: r.sns, ObjectID: r.soid, Relation: r.srel},
		},
	}
	if r.caveatName.Valid && r.caveatName.String != "" {
		c, err := decodeCaveatContext(r.caveatContext)
		if err != nil {
			return rel, err
		}
		rel.OptionalCaveat = &core.ContextualizedCaveat{CaveatName: r.caveatName.String, Context: c}
	}
	if r.expiration.Valid {
		t := time.UnixMicro(r.expiration.Int64).UTC()
		rel.OptionalExpiration = &t
	}
	if r.integrityKeyID.Valid {
		rel.OptionalIntegrity = &core.RelationshipIntegrity{
			KeyId:    r.integrityKeyID.String,
			Hash:     r.integrityHash,
			HashedAt: timestamppb.New(time.Unix(0, r.integrityTimestamp.Int64).UTC()),
		}
	}
	return rel, nil
}

// relValues are a relationship's column values, in relColumns order.
func relValues(rel tuple.Relationship) ([]any, error) {
	var caveatName, caveatContext, expiration, ikid, ihash, its any
	if rel.OptionalCaveat != nil && rel.OptionalCaveat.CaveatName != "" {
		caveatName = rel.OptionalCaveat.CaveatName
		ctxBytes, err := encodeCaveatContext(rel.OptionalCaveat.Context)
		if err != nil {
			return nil, err
		}
		if ctxBytes != nil {
			caveatContext = ctxBytes
		}
	}
	if rel.OptionalExpiration != nil {
		expiration = rel.OptionalExpiration.UnixMicro()
	}
	if in := rel.OptionalIntegrity; in != nil {
		ikid = in.KeyId
		ihash = in.Hash
		if ihash == nil {
			ihash = []byte{}
		}
		its = in.HashedAt.AsTime().UnixNano()
	}
	return []any{
		rel.Resource.ObjectType, rel.Resource.ObjectID, rel.Resource.Relation,
		rel.Subject.ObjectType, rel.Subject.ObjectID, rel.Subject.Relation,
		caveatName, caveatContext, expiration, ikid, ihash, its,
	}, nil
}

func encodeCaveatContext(s *structpb.Struct) ([]byte, error) {
	if s == nil || len(s.GetFields()) == 0 {
		return nil, nil
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("encode caveat context: %w", err)
	}
	return b, nil
}

func decodeCaveatContext(b []byte) (*structpb.Struct, error) {
	s := &structpb.Struct{}
	if len(b) == 0 {
		return s, nil
	}
	if err := proto.Unmarshal(b, s); err != nil {
		return nil, fmt.Errorf("decode caveat context: %w", err)
	}
	return s, nil
}

// sameRelationship reports whether a touch of rel onto existing changes
// nothing: same caveat (name and context) and same expiration.
func sameRelationship(existing, rel tuple.Relationship) bool {
	ec, rc := existing.OptionalCaveat, rel.OptionalCaveat
	if (ec == nil || ec.CaveatName == "") != (rc == nil || rc.CaveatName == "") {
		return false
	}
	if ec != nil && ec.CaveatName != "" {
		if ec.CaveatName != rc.CaveatName {
			return false
		}
		if len(ec.Context.GetFields()) != 0 || len(rc.Context.GetFields()) != 0 {
			if !proto.Equal(ec.Context, rc.Context) {
				return false
			}
		}
	}
	ee, re := existing.OptionalExpiration, rel.OptionalExpiration
	if (ee == nil) != (re == nil) {
		return false
	}
	if ee != nil && ee.UnixMicro() != re.UnixMicro() {
		return false
	}
	return true
}
