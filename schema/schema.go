// Package schema holds Spicegate's SpiceDB schema: the permission contract
// that other services check by name. The schema text is embedded from
// schema.zed, so binaries, tests and the validation files share one source
// of truth.
//
// The validation files beside it (organization.yaml, resources.yaml: zed's
// format; lookups/resources.yaml: Spicegate's lookup format) prove the schema
// cell by cell; run them with `spicegate validate schema/*.yaml`.
//
// This package imports nothing from SpiceDB, so services that only need the
// schema text do not compile SpiceDB.
package schema

import _ "embed" // for go:embed

//go:embed schema.zed
var text string

// FileName is the schema's file name, as validation files refer to it (schemaFile).
const FileName = "schema.zed"

// Text returns the schema in SpiceDB's schema language, as written to SpiceDB.
func Text() string { return text }
