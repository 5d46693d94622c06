package sqlite_test

import (
	"context"
	"fmt"
	"testing"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
)

// platformShape is the size of the data set of Spicegate's performance
// target: organizations of members (80% User, 18% Read-only, and the support
// account in every organization), each with datasets that name their
// organization and an owner.
type platformShape struct {
	orgs, members, datasets int
}

func orgID(o int) string          { return fmt.Sprintf("org%d", o) }
func userID(o, m int) string      { return fmt.Sprintf("u%d-%d", o, m) }
func datasetID(o, d int) string   { return fmt.Sprintf("ds%d-%d", o, d) }
func (s platformShape) rels() int { return s.orgs * (s.members + 2*s.datasets) }

func rel(resType, resID, relation, subType, subID string) *v1.Relationship {
	return &v1.Relationship{
		Resource: &v1.ObjectReference{ObjectType: resType, ObjectId: resID},
		Relation: relation,
		Subject:  &v1.SubjectReference{Object: &v1.ObjectReference{ObjectType: subType, ObjectId: subID}},
	}
}

// each calls f with every relationship of the shape.
func (s platformShape) each(f func(*v1.Relationship)) {
	for o := range s.orgs {
		for m := range s.members {
			switch {
			case m == s.members-1:
				f(rel("organization", orgID(o), "support", "user", "support"))
			case m < s.members*4/5:
				f(rel("organization", orgID(o), "user", "user", userID(o, m)))
			default:
				f(rel("organization", orgID(o), "readonly", "user", userID(o, m)))
			}
		}
		for d := range s.datasets {
			f(rel("dataset", datasetID(o, d), "organization", "organization", orgID(o)))
			f(rel("dataset", datasetID(o, d), "owner", "user", userID(o, d%max(1, s.members*4/5))))
		}
	}
}

// load imports the shape with ImportBulkRelationships, in messages of 1,000.
func (s platformShape) load(tb testing.TB, conn grpc.ClientConnInterface) {
	tb.Helper()
	stream, err := v1.NewPermissionsServiceClient(conn).ImportBulkRelationships(context.Background())
	require.NoError(tb, err)
	batch := make([]*v1.Relationship, 0, 1000)
	flush := func() {
		if len(batch) > 0 {
			require.NoError(tb, stream.Send(&v1.ImportBulkRelationshipsRequest{Relationships: batch}))
			batch = make([]*v1.Relationship, 0, 1000)
		}
	}
	s.each(func(r *v1.Relationship) {
		batch = append(batch, r)
		if len(batch) == cap(batch) {
			flush()
		}
	})
	flush()
	resp, err := stream.CloseAndRecv()
	require.NoError(tb, err)
	require.EqualValues(tb, s.rels(), resp.GetNumLoaded())
}
