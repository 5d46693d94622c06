package seed_test

import (
	"slices"
	"testing"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"

	"github.com/spicegate/spicegate/client"
	"github.com/spicegate/spicegate/seed"
)

// FuzzParse: a seed file comes from an operator. Parsing and validating
// never panic, and a seed that validates writes only relationships SpiceDB
// accepts (valid types, relations and IDs), one role per member.
func FuzzParse(f *testing.F) {
	f.Add(seed.Demo())
	for _, s := range []string{
		"support_user: support\norganizations:\n- id: acme\n  members: [{user: alice, role: user}]\n",
		"support_user: support\norganizations:\n- id: acme\n  members: [{user: alice, role: admin}]\n",
		"support_user: support\norganizations:\n- id: a|b\n  members: [{user: alice, role: user}]\n  api_tokens: [{id: t, owner: alice}]\n",
		"organizations: {}\n", "- 1\n", "support_user: [x]\n", "unknown: 1\n", "",
	} {
		f.Add([]byte(s))
	}
	types := []string{client.TypeUser, client.TypePlatform, client.TypeOrganization, client.TypeMembership, client.TypeDataset,
		client.TypeAdapterRepository, client.TypeTrainingJob, client.TypeDeployment, client.TypeAPIToken, client.TypeLLM}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := seed.ParseBytes(data)
		if err != nil || s.Validate() != nil {
			return
		}
		roles := map[string]int{}
		for _, u := range s.Updates() {
			r := u.GetRelationship()
			for _, ref := range []*v1.ObjectReference{r.GetResource(), r.GetSubject().GetObject()} {
				if ref.GetObjectId() != "*" {
					if err := client.ValidateID("id", ref.GetObjectId()); err != nil {
						t.Fatalf("a valid seed writes %v: %v", r, err)
					}
				}
			}
			if !slices.Contains(types, r.GetResource().GetObjectType()) {
				t.Fatalf("a valid seed writes a relationship of unknown type: %v", r)
			}
			if u.GetOperation() == v1.RelationshipUpdate_OPERATION_TOUCH && r.GetResource().GetObjectType() == client.TypeOrganization {
				if _, err := client.ParseRole(r.GetRelation()); err == nil {
					roles[r.GetResource().GetObjectId()+"/"+r.GetSubject().GetObject().GetObjectType()+":"+r.GetSubject().GetObject().GetObjectId()]++
				}
			}
		}
		for who, n := range roles {
			if n > 1 {
				t.Fatalf("a valid seed gives %s %d roles", who, n)
			}
		}
	})
}
