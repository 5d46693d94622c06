package sqlite_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"github.com/authzed/grpcutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/authzed/spicedb/pkg/cmd/server"
	"github.com/authzed/spicedb/pkg/cmd/util"

	"github.com/spicegate/spicegate/datastore/sqlite"
)

// An embedded SpiceDB on a SQLite file: open the datastore, hand it to the
// server with server.WithDatastore, and use SpiceDB's API as usual.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "spicedb-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	ds, err := sqlite.New(ctx, filepath.Join(dir, "spicedb.sqlite"), sqlite.WithGCWindow(time.Hour))
	if err != nil {
		log.Fatal(err)
	}
	defer ds.Close() // the server does not close a datastore it was given

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	srv, err := server.NewConfigWithOptionsAndDefaults(
		server.WithDatastore(ds),
		server.WithGRPCServer(util.GRPCServerConfig{Enabled: true, Network: util.BufferedNetwork}),
		server.WithPresharedSecureKey("example-key"),
		server.WithHTTPGateway(util.HTTPServerConfig{HTTPEnabled: false}),
		server.WithMetricsAPI(util.HTTPServerConfig{HTTPEnabled: false}),
		server.WithDispatchServer(util.GRPCServerConfig{Enabled: false}),
		server.WithSilentlyDisableTelemetry(true),
	).Complete(runCtx)
	if err != nil {
		log.Fatal(err)
	}
	go func() { _ = srv.Run(runCtx) }()

	conn, err := srv.NewClient(grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpcutil.WithInsecureBearerToken("example-key"))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()

	if _, err := v1.NewSchemaServiceClient(conn).WriteSchema(ctx, &v1.WriteSchemaRequest{Schema: `
		definition user {}
		definition document {
			relation viewer: user
			permission view = viewer
		}`}); err != nil {
		log.Fatal(err)
	}
	perms := v1.NewPermissionsServiceClient(conn)
	written, err := perms.WriteRelationships(ctx, &v1.WriteRelationshipsRequest{Updates: []*v1.RelationshipUpdate{{
		Operation: v1.RelationshipUpdate_OPERATION_TOUCH,
		Relationship: &v1.Relationship{
			Resource: &v1.ObjectReference{ObjectType: "document", ObjectId: "readme"},
			Relation: "viewer",
			Subject:  &v1.SubjectReference{Object: &v1.ObjectReference{ObjectType: "user", ObjectId: "alice"}},
		},
	}}})
	if err != nil {
		log.Fatal(err)
	}
	for _, who := range []string{"alice", "bob"} {
		resp, err := perms.CheckPermission(ctx, &v1.CheckPermissionRequest{
			Consistency: &v1.Consistency{Requirement: &v1.Consistency_AtLeastAsFresh{AtLeastAsFresh: written.GetWrittenAt()}},
			Resource:    &v1.ObjectReference{ObjectType: "document", ObjectId: "readme"},
			Permission:  "view",
			Subject:     &v1.SubjectReference{Object: &v1.ObjectReference{ObjectType: "user", ObjectId: who}},
		})
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(who, resp.GetPermissionship())
	}

	// An online, consistent copy of the file; open it with New to restore.
	if err := ds.Backup(ctx, filepath.Join(dir, "backup.sqlite")); err != nil {
		log.Fatal(err)
	}
	fmt.Println("backed up")

	// Output:
	// alice PERMISSIONSHIP_HAS_PERMISSION
	// bob PERMISSIONSHIP_NO_PERMISSION
	// backed up
}
