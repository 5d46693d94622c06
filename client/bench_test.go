package client_test

import (
	"errors"
	"io"
	"testing"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"github.com/stretchr/testify/require"

	"github.com/spicegate/spicegate/client"
	"github.com/spicegate/spicegate/internal/spicedbtest"
	"github.com/spicegate/spicegate/seed"
)

// The benchmarks compare the facade with the raw SpiceDB client on the same
// server, connection and data, in the same run: the ratio is the facade's
// overhead. scripts/bench.sh runs them and prints the ratios.

type benchEnv struct {
	c     *client.Client
	raw   v1.PermissionsServiceClient
	rev   client.Revision
	fresh *v1.Consistency
}

func newBenchEnv(b *testing.B) benchEnv {
	b.Helper()
	srv := spicedbtest.Start(b)
	conn := srv.Conn(b)
	raw := v1.NewPermissionsServiceClient(conn)
	rev, err := seed.Load(b.Context(), raw, seed.Generate(5, 10, 200), nil)
	require.NoError(b, err)
	c, err := client.NewFromConn(conn)
	require.NoError(b, err)
	return benchEnv{c: c, raw: raw, rev: client.Revision(rev),
		fresh: &v1.Consistency{Requirement: &v1.Consistency_AtLeastAsFresh{AtLeastAsFresh: &v1.ZedToken{Token: rev}}}}
}

// Org org00003's first member is a User; dataset 17 is one of its datasets.
const (
	benchUser    = "org00003-u0001"
	benchDataset = "org00003-d000017"
)

func BenchmarkCheck(b *testing.B) {
	env := newBenchEnv(b)
	b.Run("raw", func(b *testing.B) {
		req := &v1.CheckPermissionRequest{
			Consistency: env.fresh,
			Resource:    &v1.ObjectReference{ObjectType: "dataset", ObjectId: benchDataset},
			Permission:  "view",
			Subject:     &v1.SubjectReference{Object: &v1.ObjectReference{ObjectType: "user", ObjectId: benchUser}},
		}
		for b.Loop() {
			resp, err := env.raw.CheckPermission(b.Context(), req)
			if err != nil || resp.GetPermissionship() != v1.CheckPermissionResponse_PERMISSIONSHIP_HAS_PERMISSION {
				b.Fatal("raw check failed", err)
			}
		}
	})
	b.Run("facade", func(b *testing.B) {
		opt := client.WithConsistency(client.AtLeastAsFresh(env.rev))
		for b.Loop() {
			d, err := env.c.Check(b.Context(), client.User(benchUser), client.PermView, client.Dataset(benchDataset), opt)
			if err != nil || !d.Allowed() {
				b.Fatal("facade check failed", err)
			}
		}
	})
}

func BenchmarkCheckBulk100(b *testing.B) {
	env := newBenchEnv(b)
	items := make([]client.CheckItem, 100)
	rawItems := make([]*v1.CheckBulkPermissionsRequestItem, 100)
	for i := range items {
		items[i] = client.CheckItem{Subject: client.User(benchUser), Permission: client.PermView, Resource: client.Dataset(benchDataset)}
		rawItems[i] = &v1.CheckBulkPermissionsRequestItem{
			Resource:   &v1.ObjectReference{ObjectType: "dataset", ObjectId: benchDataset},
			Permission: "view",
			Subject:    &v1.SubjectReference{Object: &v1.ObjectReference{ObjectType: "user", ObjectId: benchUser}},
		}
	}
	b.Run("raw", func(b *testing.B) {
		for b.Loop() {
			resp, err := env.raw.CheckBulkPermissions(b.Context(), &v1.CheckBulkPermissionsRequest{Consistency: env.fresh, Items: rawItems})
			if err != nil || len(resp.GetPairs()) != 100 {
				b.Fatal("raw bulk check failed", err)
			}
		}
	})
	b.Run("facade", func(b *testing.B) {
		opt := client.WithConsistency(client.AtLeastAsFresh(env.rev))
		for b.Loop() {
			res, err := env.c.CheckMany(b.Context(), items, opt)
			if err != nil || len(res) != 100 {
				b.Fatal("facade bulk check failed", err)
			}
		}
	})
}

func BenchmarkLookupResources200(b *testing.B) {
	env := newBenchEnv(b)
	b.Run("raw", func(b *testing.B) {
		for b.Loop() {
			stream, err := env.raw.LookupResources(b.Context(), &v1.LookupResourcesRequest{
				Consistency: env.fresh, ResourceObjectType: "dataset", Permission: "view",
				Subject: &v1.SubjectReference{Object: &v1.ObjectReference{ObjectType: "user", ObjectId: benchUser}},
			})
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			for {
				_, err := stream.Recv()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
				n++
			}
			if n != 200 {
				b.Fatalf("raw lookup found %d", n)
			}
		}
	})
	b.Run("facade", func(b *testing.B) {
		opt := client.WithConsistency(client.AtLeastAsFresh(env.rev))
		for b.Loop() {
			n := 0
			for _, err := range env.c.LookupResources(b.Context(), client.User(benchUser), client.PermView, client.TypeDataset, opt) {
				if err != nil {
					b.Fatal(err)
				}
				n++
			}
			if n != 200 {
				b.Fatalf("facade lookup found %d", n)
			}
		}
	})
}
