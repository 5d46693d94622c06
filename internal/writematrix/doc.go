// Package writematrix holds one test: every write Spicegate offers, through
// each of its entry points (the HTTP API, the CLI, the Go client's Actor),
// for every kind of actor (a User, a Read-only member and support of the
// organization, each as a user and as an API token; a member of another
// organization as user and token; a removed member's token; an unknown
// user and token; no actor; a forged actor; the system). The outcome each
// cell must have is computed from the README's two tables (the
// Roles & Permissions matrix, and "Who may write what"), the single source
// the documentation and the test share, and every cell that is refused
// must leave every relationship as it was.
package writematrix
