package seed

import (
	"context"
	"errors"
	"fmt"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/spicegate/spicegate/client"
)

// batchSize is SpiceDB's default maximum of updates per write.
const batchSize = 1000

// BulkThreshold is the number of updates from which Load tries SpiceDB's bulk import.
const BulkThreshold = 20_000

// BulkStreamSize is the most relationships Load imports per bulk import
// stream (one transaction): about two seconds of work on PostgreSQL, far
// inside SpiceDB's streaming timeout.
const BulkStreamSize = 50_000

// bulkStreamTime bounds how long one stream sends, whatever its size, for
// slow servers: the next relationships go in a new stream. (A stream of
// 100,000 relationships outlived the 30 s timeout under the race detector
// on a busy machine.)
var bulkStreamTime = 10 * time.Second

func obj(typ, id string) *v1.ObjectReference {
	return &v1.ObjectReference{ObjectType: typ, ObjectId: id}
}

func subj(typ, id, relation string) *v1.SubjectReference {
	return &v1.SubjectReference{Object: obj(typ, id), OptionalRelation: relation}
}

func rel(resType, resID, relation string, subject *v1.SubjectReference) *v1.Relationship {
	return &v1.Relationship{Resource: obj(resType, resID), Relation: relation, Subject: subject}
}

func touch(r *v1.Relationship) *v1.RelationshipUpdate {
	return &v1.RelationshipUpdate{Operation: v1.RelationshipUpdate_OPERATION_TOUCH, Relationship: r}
}

func del(r *v1.Relationship) *v1.RelationshipUpdate {
	return &v1.RelationshipUpdate{Operation: v1.RelationshipUpdate_OPERATION_DELETE, Relationship: r}
}

// Updates returns the writes that make SpiceDB hold the seed: TOUCH for
// every relationship, and DELETE for a member's other roles (one role per
// user per organization). They are the relationships the client package
// writes for the same objects.
func (s *Seed) Updates() []*v1.RelationshipUpdate {
	var out []*v1.RelationshipUpdate
	add := func(u ...*v1.RelationshipUpdate) { out = append(out, u...) }
	user := func(id string) *v1.SubjectReference { return subj(client.TypeUser, id, "") }

	for _, l := range s.SharedLLMs {
		add(touch(rel(client.TypeLLM, l, client.RelPrompter, user("*"))),
			touch(rel(client.TypeLLM, l, client.RelPrompter, subj(client.TypePlatform, client.PlatformID, client.PermMember))))
	}
	for _, o := range s.Organizations {
		org := subj(client.TypeOrganization, o.ID, "")
		add(touch(rel(client.TypePlatform, client.PlatformID, client.RelOrganization, org)),
			touch(rel(client.TypeOrganization, o.ID, client.RelSupport, user(s.SupportUser))))
		roleOf := map[string]client.Role{s.SupportUser: client.RoleSupport}
		for _, m := range o.Members {
			role, _ := client.ParseRole(m.Role)
			roleOf[m.User] = role
			for _, other := range []client.Role{client.RoleUser, client.RoleReadonly} {
				if other != role {
					add(del(rel(client.TypeOrganization, o.ID, string(other), user(m.User))))
				}
			}
			add(touch(rel(client.TypeOrganization, o.ID, string(role), user(m.User))))
		}
		owned := func(typ string, items []Owned) {
			for _, it := range items {
				add(touch(rel(typ, it.ID, client.RelOrganization, org)), touch(rel(typ, it.ID, client.RelOwner, user(it.Owner))))
			}
		}
		owned(client.TypeDataset, o.Datasets)
		owned(client.TypeAdapterRepository, o.AdapterRepositories)
		for _, j := range o.TrainingJobs {
			add(touch(rel(client.TypeTrainingJob, j.ID, client.RelOrganization, org)),
				touch(rel(client.TypeTrainingJob, j.ID, client.RelCreator, user(j.Creator))))
			if j.Repository != "" {
				add(touch(rel(client.TypeTrainingJob, j.ID, client.RelRepository, subj(client.TypeAdapterRepository, j.Repository, ""))))
			}
		}
		for _, d := range o.Deployments {
			add(touch(rel(client.TypeDeployment, d, client.RelOrganization, org)))
		}
		for _, t := range o.APITokens {
			token := subj(client.TypeAPIToken, t.ID, "")
			add(touch(rel(client.TypeAPIToken, t.ID, client.RelOrganization, org)),
				touch(rel(client.TypeAPIToken, t.ID, client.RelOwner, user(t.Owner))),
				touch(rel(client.TypeOrganization, o.ID, client.RelAPIToken, token)),
				touch(rel(client.TypeUser, t.Owner, client.RelAPIToken, token)),
				touch(rel(client.TypeMembership, client.Membership(o.ID, t.Owner).ID, client.RelAPIToken, token)),
				// A token holds its owner's role (Validate made sure the owner is a member), and only that one.
				touch(rel(client.TypeOrganization, o.ID, string(roleOf[t.Owner]), token)))
			for _, other := range []client.Role{client.RoleUser, client.RoleReadonly, client.RoleSupport} {
				if other != roleOf[t.Owner] {
					add(del(rel(client.TypeOrganization, o.ID, string(other), token)))
				}
			}
		}
		for _, l := range o.PrivateLLMs {
			add(touch(rel(client.TypeLLM, l, client.RelPrompter, subj(client.TypeOrganization, o.ID, client.PermMember))),
				touch(rel(client.TypeLLM, l, client.RelOrganization, org)))
		}
	}
	return out
}

// Relationships counts the relationships the seed stands for: its
// Updates' TOUCHes (the DELETEs only clear other roles).
func (s *Seed) Relationships() int {
	n := 0
	for _, u := range s.Updates() {
		if u.GetOperation() == v1.RelationshipUpdate_OPERATION_TOUCH {
			n++
		}
	}
	return n
}

// Progress is told how many of the total updates were written so far.
type Progress func(done, total int)

// Load writes the seed and returns the revision of the last write. A seed
// of BulkThreshold relationships or more is first tried with SpiceDB's
// bulk import (much faster), which only creates: when some of its
// relationships exist already, SpiceDB refuses the import and the seed is
// written with TOUCH and DELETE instead, so loading is idempotent either
// way. The import goes in streams of at most BulkStreamSize relationships
// and about 10 s of sending, each one transaction: SpiceDB ends a stream it
// has not answered within its streaming timeout (30 s by default), which a
// single stream of a million relationships into PostgreSQL exceeds.
func Load(ctx context.Context, perms v1.PermissionsServiceClient, s *Seed, progress Progress) (string, error) {
	if err := s.Validate(); err != nil {
		return "", err
	}
	updates := s.Updates()
	if progress == nil {
		progress = func(int, int) {}
	}
	if len(updates) >= BulkThreshold {
		rev, err := bulkImport(ctx, perms, updates, progress)
		if err == nil {
			return rev, nil
		}
		if status.Code(err) != codes.AlreadyExists {
			return "", fmt.Errorf("seed: bulk import: %w", err)
		}
	}
	var last string
	for start := 0; start < len(updates); start += batchSize {
		end := min(start+batchSize, len(updates))
		resp, err := perms.WriteRelationships(ctx, &v1.WriteRelationshipsRequest{Updates: updates[start:end]})
		if err != nil {
			return last, fmt.Errorf("seed: writing updates %d to %d: %w", start, end, err)
		}
		last = resp.GetWrittenAt().GetToken()
		progress(end, len(updates))
	}
	return last, nil
}

func bulkImport(ctx context.Context, perms v1.PermissionsServiceClient, updates []*v1.RelationshipUpdate, progress Progress) (string, error) {
	rels := make([]*v1.Relationship, 0, len(updates))
	for _, u := range updates {
		if u.GetOperation() == v1.RelationshipUpdate_OPERATION_TOUCH {
			rels = append(rels, u.GetRelationship())
		}
	}
	for start := 0; start < len(rels); {
		n, err := importStream(ctx, perms, rels[start:min(start+BulkStreamSize, len(rels))], func(done int) {
			progress(start+done, len(rels))
		})
		if err != nil {
			return "", err
		}
		start += n
	}
	// Bulk import returns no revision: read one that includes it.
	resp, err := perms.CheckPermission(ctx, &v1.CheckPermissionRequest{
		Consistency: &v1.Consistency{Requirement: &v1.Consistency_FullyConsistent{FullyConsistent: true}},
		Resource:    obj(client.TypePlatform, client.PlatformID), Permission: client.PermMember,
		Subject: subj(client.TypeUser, "seed-probe", ""),
	})
	if err != nil {
		return "", err
	}
	return resp.GetCheckedAt().GetToken(), nil
}

// importStream imports rels, or as many of them as it sends within
// bulkStreamTime, in one bulk import stream (one transaction), in messages
// of batchSize, and returns how many it imported.
func importStream(ctx context.Context, perms v1.PermissionsServiceClient, rels []*v1.Relationship, progress func(int)) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := perms.ImportBulkRelationships(ctx)
	if err != nil {
		return 0, err
	}
	began := time.Now()
	sent := 0
	for sent < len(rels) && (sent == 0 || time.Since(began) < bulkStreamTime) {
		end := min(sent+batchSize, len(rels))
		if err := stream.Send(&v1.ImportBulkRelationshipsRequest{Relationships: rels[sent:end]}); err != nil {
			_, recvErr := stream.CloseAndRecv()
			return 0, errors.Join(err, recvErr)
		}
		sent = end
		progress(sent)
	}
	if _, err := stream.CloseAndRecv(); err != nil {
		return 0, err
	}
	return sent, nil
}
