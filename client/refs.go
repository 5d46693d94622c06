package client

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
)

// SpiceDB's grammar for names and IDs (authzed.api.v1 validation rules),
// checked before anything is sent. Hand-written rather than regexps: they
// run for every item of every bulk check (internal_test.go proves them
// equal to SpiceDB's regular expressions).
//
//	type:     ([a-z][a-z0-9_]{1,61}[a-z0-9]/)*[a-z][a-z0-9_]{1,62}[a-z0-9]
//	relation: [a-z][a-z0-9_]{1,62}[a-z0-9]
//	ID:       [a-zA-Z0-9/_|\-=+]{1,1024}

// validSegment checks one name: a lower-case letter, then lower-case
// letters, digits and _, ending in a letter or digit, 3 to max characters.
func validSegment(s string, maxLen int) bool {
	if len(s) < 3 || len(s) > maxLen || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		lowerOrDigit := ('a' <= c && c <= 'z') || ('0' <= c && c <= '9')
		if !lowerOrDigit && (c != '_' || i == len(s)-1) {
			return false
		}
	}
	return true
}

// validType checks a definition name, with optional "prefix/" namespaces.
func validType(s string) bool {
	for {
		i := strings.IndexByte(s, '/')
		if i < 0 {
			return validSegment(s, 64)
		}
		if !validSegment(s[:i], 63) {
			return false
		}
		s = s[i+1:]
	}
}

// validRelation checks a relation or permission name.
func validRelation(s string) bool { return validSegment(s, 64) }

// validIDChars checks that an ID is non-empty and uses only a-z A-Z 0-9 / _ | - = +.
func validIDChars(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '/' || c == '_' || c == '|' || c == '-' || c == '=' || c == '+':
		default:
			return false
		}
	}
	return true
}

// Object is a reference to an object: a resource such as dataset:d1, or the
// object of a subject such as user:alice.
type Object struct {
	Type string
	ID   string
}

// String formats the object as "type:id".
func (o Object) String() string { return o.Type + ":" + o.ID }

// Subject returns the object as a subject (no relation).
func (o Object) Subject() Subject { return Subject{Object: o} }

// Validate checks the object against SpiceDB's grammar; arg names it in the error.
func (o Object) Validate(arg string) error {
	if !validType(o.Type) {
		return argErr(arg+".type", o.Type, "must be a SpiceDB type name: lower case letters, digits and _, 3 to 64 characters, starting with a letter")
	}
	return validateID(arg+".id", o.ID)
}

func (o Object) proto() *v1.ObjectReference {
	return &v1.ObjectReference{ObjectType: o.Type, ObjectId: o.ID}
}

// ParseObject parses "type:id".
func ParseObject(s string) (Object, error) {
	typ, id, ok := strings.Cut(s, ":")
	if !ok {
		return Object{}, argErr("object", s, `must be "type:id"`)
	}
	o := Object{Type: typ, ID: id}
	return o, o.Validate("object")
}

// Subject is who a check is about: an object (user:alice, api_token:t1),
// optionally with a relation (organization:acme#member, a subject set).
type Subject struct {
	Object
	// Relation is empty for the object itself.
	Relation string
}

// String formats the subject as "type:id" or "type:id#relation".
func (s Subject) String() string {
	if s.Relation == "" {
		return s.Object.String()
	}
	return s.Object.String() + "#" + s.Relation
}

// Validate checks the subject against SpiceDB's grammar; arg names it in the error.
func (s Subject) Validate(arg string) error {
	if err := s.Object.Validate(arg); err != nil {
		return err
	}
	if s.Relation != "" && !validRelation(s.Relation) {
		return argErr(arg+".relation", s.Relation, "must be a SpiceDB relation name")
	}
	return nil
}

func (s Subject) proto() *v1.SubjectReference {
	return &v1.SubjectReference{Object: s.Object.proto(), OptionalRelation: s.Relation}
}

// ParseSubject parses "type:id" or "type:id#relation".
func ParseSubject(str string) (Subject, error) {
	objPart, rel, _ := strings.Cut(str, "#")
	typ, id, ok := strings.Cut(objPart, ":")
	if !ok {
		return Subject{}, argErr("subject", str, `must be "type:id" or "type:id#relation"`)
	}
	s := Subject{Object: Object{Type: typ, ID: id}, Relation: rel}
	if strings.Contains(str, "#") && rel == "" {
		return Subject{}, argErr("subject.relation", str, "is empty after #")
	}
	return s, s.Validate("subject")
}

// User is the subject user:id.
func User(id string) Subject { return Subject{Object: Object{Type: TypeUser, ID: id}} }

// APIToken is the subject api_token:id: a check on it answers with the
// token owner's rights in the token's organization.
func APIToken(id string) Subject { return Subject{Object: Object{Type: TypeAPIToken, ID: id}} }

// Organization is the object organization:id.
func Organization(id string) Object { return Object{Type: TypeOrganization, ID: id} }

// Dataset is the object dataset:id.
func Dataset(id string) Object { return Object{Type: TypeDataset, ID: id} }

// AdapterRepository is the object adapter_repository:id.
func AdapterRepository(id string) Object { return Object{Type: TypeAdapterRepository, ID: id} }

// TrainingJob is the object training_job:id.
func TrainingJob(id string) Object { return Object{Type: TypeTrainingJob, ID: id} }

// Deployment is the object deployment:id.
func Deployment(id string) Object { return Object{Type: TypeDeployment, ID: id} }

// LLM is the object llm:id.
func LLM(id string) Object { return Object{Type: TypeLLM, ID: id} }

// Invite is the object of the invite whose link secret (InviteInfo.ID) is
// secret.
//
// The secret itself is never stored: the invite's object ID in SpiceDB is
// the secret's SHA-256, so that reading relationships (lookups, the audit
// stream, zed, a backup) never reveals a live link, and accepting one
// needs the link itself.
func Invite(secret string) Object { return Object{Type: TypeInvite, ID: inviteKey(secret)} }

// inviteKey is the object ID of the invite whose link secret is secret.
func inviteKey(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// Membership is the bookkeeping object of userID's membership of org
// (schema.zed, definition membership): membership:org|user, readable, when
// neither ID contains "|" and the pair fits SpiceDB's 1,024 characters;
// otherwise membership:<hex SHA-256 of both>, which contains no "|", so
// the two forms never name the same object, and "org|" prefixes exactly
// the readable memberships of org.
func Membership(org, userID string) Object {
	if id := org + "|" + userID; len(id) <= maxIDLength && !strings.Contains(org, "|") && !strings.Contains(userID, "|") {
		return Object{Type: TypeMembership, ID: id}
	}
	sum := sha256.Sum256([]byte(strconv.Itoa(len(org)) + ":" + org + "|" + userID))
	return Object{Type: TypeMembership, ID: hex.EncodeToString(sum[:])}
}

// Token is the object api_token:id (as a resource, e.g. to check delete on it).
func Token(id string) Object { return Object{Type: TypeAPIToken, ID: id} }

// ValidateID checks an object ID against SpiceDB's grammar (1 to 1024
// characters of a-z A-Z 0-9 / _ | - = +); arg names it in the error.
func ValidateID(arg, id string) error { return validateID(arg, id) }

// maxIDLength is SpiceDB's limit on object IDs.
const maxIDLength = 1024

// validateID checks an object ID against SpiceDB's grammar.
func validateID(arg, id string) error {
	if len(id) > maxIDLength || !validIDChars(id) {
		return argErr(arg, id, "must be 1 to 1024 characters of a-z A-Z 0-9 / _ | - = +")
	}
	return nil
}
