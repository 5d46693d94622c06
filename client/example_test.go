package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/spicegate/spicegate/client"
	"github.com/spicegate/spicegate/internal/embedded"
)

// exampleClient runs a real SpiceDB in process, as `spicegate serve` does,
// writes the schema, and returns a client on it.
func exampleClient() (*client.Client, func()) {
	ctx := context.Background()
	srv, err := embedded.Start(ctx, embedded.Config{PresharedKey: "example-key"})
	if err != nil {
		log.Fatal(err)
	}
	conn, err := srv.Conn()
	if err != nil {
		log.Fatal(err)
	}
	c, err := client.NewFromConn(conn)
	if err != nil {
		log.Fatal(err)
	}
	for {
		if _, err := c.WriteSchema(ctx); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond) // the server is still starting
	}
	return c, func() { _ = conn.Close(); _ = srv.Stop() }
}

// Connecting to a SpiceDB cluster: TLS with the system's certificates and
// SpiceDB's preshared key. Check readiness at start-up: connecting is lazy.
func ExampleNew() {
	c, err := client.New("spicedb.internal:50051", client.WithPresharedKey("secret"))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ready(ctx); err != nil {
		log.Printf("SpiceDB is not ready: %v", err)
	}
}

// The common flow: an organization, its members, a check.
func Example() {
	c, stop := exampleClient()
	defer stop()
	ctx := context.Background()

	if _, err := c.CreateOrganization(ctx, "acme", "alice"); err != nil {
		log.Fatal(err)
	}
	if _, err := c.AddMember(ctx, "acme", "rita", client.RoleReadonly); err != nil {
		log.Fatal(err)
	}
	for _, user := range []string{"alice", "rita"} {
		d, err := c.Check(ctx, client.User(user), client.PermDeploy, client.Organization("acme"))
		if err != nil {
			log.Fatal(err) // an error is never an allow
		}
		fmt.Printf("%s may deploy: %v\n", user, d.Allowed())
	}
	// Output:
	// alice may deploy: true
	// rita may deploy: false
}

// Read-your-writes across services: the writer hands its revision on.
func ExampleAtLeastAsFresh() {
	c, stop := exampleClient()
	defer stop()
	ctx := context.Background()
	if _, err := c.CreateOrganization(ctx, "acme", "alice"); err != nil {
		log.Fatal(err)
	}
	rev, err := c.RegisterDataset(ctx, "acme", "reviews", "alice")
	if err != nil {
		log.Fatal(err)
	}
	token := string(rev) // e.g. in an HTTP header to another service

	d, err := c.Check(ctx, client.User("alice"), client.PermDelete, client.Dataset("reviews"),
		client.WithConsistency(client.AtLeastAsFresh(client.Revision(token))))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("alice may delete her dataset:", d.Allowed())
	// Output: alice may delete her dataset: true
}

func ExampleClient_LookupResources() {
	c, stop := exampleClient()
	defer stop()
	ctx := context.Background()
	if _, err := c.CreateOrganization(ctx, "acme", "alice"); err != nil {
		log.Fatal(err)
	}
	for _, id := range []string{"chats", "reviews"} {
		if _, err := c.RegisterDataset(ctx, "acme", id, "alice"); err != nil {
			log.Fatal(err)
		}
	}
	count := 0
	for _, err := range c.LookupResources(ctx, client.User("alice"), client.PermView, client.TypeDataset) {
		if err != nil {
			log.Fatal(err)
		}
		count++
	}
	fmt.Println("datasets alice sees:", count)
	// Output: datasets alice sees: 2
}

func ExampleClient_AcceptInvite() {
	c, stop := exampleClient()
	defer stop()
	ctx := context.Background()
	if _, err := c.CreateOrganization(ctx, "acme", "alice"); err != nil {
		log.Fatal(err)
	}
	inv, err := c.As(client.User("alice")).CreateInvite(ctx, "acme", client.RoleReadonly, 24*time.Hour)
	if err != nil {
		log.Fatal(err)
	}
	member, _, err := c.AcceptInvite(ctx, inv.ID, "carol")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(member.UserID, "joined as", member.Role)

	_, _, err = c.AcceptInvite(ctx, inv.ID, "dave")
	fmt.Println("second accept conflicts:", errors.Is(err, client.ErrConflict))
	// Output:
	// carol joined as readonly
	// second accept conflicts: true
}

func ExampleClient_As() {
	c, stop := exampleClient()
	defer stop()
	ctx := context.Background()
	if _, err := c.CreateOrganization(ctx, "acme", "alice"); err != nil {
		log.Fatal(err)
	}
	if _, err := c.AddMember(ctx, "acme", "rita", client.RoleReadonly); err != nil {
		log.Fatal(err)
	}
	_, err := c.As(client.User("alice")).RemoveMember(ctx, "acme", "rita")
	fmt.Println("alice removes rita:", errors.Is(err, client.ErrPermissionDenied))
	_, err = c.As(client.User("support")).RemoveMember(ctx, "acme", "rita")
	fmt.Println("support removes rita:", err == nil)
	// Output:
	// alice removes rita: true
	// support removes rita: true
}
