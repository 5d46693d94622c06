package seed

import "fmt"

// Generate builds a synthetic seed for benchmarks and load tests: orgs
// organizations, each with members members (the first a User, then
// alternately User and Read-only), datasets datasets owned round-robin by
// its Users, one deployment, and one API token per member. IDs are
// deterministic (org00001, org00001-u0001, org00001-d000001, ...), so two
// runs with the same sizes produce the same seed.
func Generate(orgs, members, datasets int) *Seed {
	s := &Seed{SupportUser: "support", SharedLLMs: []string{"shared-llm"}}
	for o := 1; o <= orgs; o++ {
		org := Organization{ID: fmt.Sprintf("org%05d", o)}
		var users []string
		for m := 1; m <= max(members, 1); m++ {
			id := fmt.Sprintf("%s-u%04d", org.ID, m)
			role := "user"
			if m%2 == 0 {
				role = "readonly"
			} else {
				users = append(users, id)
			}
			org.Members = append(org.Members, Member{User: id, Role: role})
			org.APITokens = append(org.APITokens, Owned{ID: id + "-token", Owner: id})
		}
		for d := 1; d <= datasets; d++ {
			org.Datasets = append(org.Datasets, Owned{ID: fmt.Sprintf("%s-d%06d", org.ID, d), Owner: users[d%len(users)]})
		}
		org.Deployments = []string{org.ID + "-deployment"}
		s.Organizations = append(s.Organizations, org)
	}
	return s
}
