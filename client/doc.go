// Package client is the typed Go facade over SpiceDB for the platform's
// permission model (schema/schema.zed): it records who belongs where and
// answers "may this subject do this?".
//
// Create one [Client] per process with [New] (or [NewFromConn]) and share
// it. Reads are [Client.Check], [Client.CheckMany], [Client.Permissions],
// [Client.LookupResources] and [Client.LookupSubjects]; every write
// (organizations, members, invites, datasets, adapter repositories,
// training jobs, deployments, API tokens, LLMs, organization deletion) is
// atomic and returns the [Revision] it was written at. [Client.As] gives the
// actor-checked variants of the team and administrative actions.
//
// Safety:
//   - every ID, type and permission is validated against SpiceDB's grammar
//     before anything is sent, and the error names the argument;
//   - a check that fails is denied, never allowed;
//   - errors match the sentinels of errors.go with errors.Is;
//   - reads and idempotent writes (TOUCH, DELETE) retry Unavailable and
//     DeadlineExceeded with bounded, jittered backoff; creates do not, so a
//     retry never turns into a spurious ErrAlreadyExists;
//   - consistency is chosen per call (see [Consistency]); the default is
//     read-your-writes within one Client.
//
// The package imports authzed-go, grpcutil and gRPC, never SpiceDB itself:
// importing it does not compile a database.
package client
