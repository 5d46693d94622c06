package sqlite

import (
	"encoding/binary"
	"errors"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	core "github.com/authzed/spicedb/pkg/proto/core/v1"
	"github.com/authzed/spicedb/pkg/tuple"
)

// The changelog records, per transaction and in the order they happened,
// the changes Watch reports. A transaction's records are packed into blobs
// (rows of the changelog table, numbered by seq). Each record is a kind byte
// followed by length-prefixed fields.
type changeKind byte

const (
	// changeCreated: a relationship was inserted where none was live.
	changeCreated changeKind = 1
	// changeReplaced: a relationship was inserted over a live one (a touch
	// that changed its caveat or expiration).
	changeReplaced changeKind = 2
	// changeDeleted: a live relationship was deleted.
	changeDeleted       changeKind = 3
	changeNamespace     changeKind = 4
	changeNamespaceGone changeKind = 5
	changeCaveat        changeKind = 6
	changeCaveatGone    changeKind = 7
)

const (
	flagCaveat = 1 << iota
	flagExpiration
	flagIntegrity
)

// changelogBlobSize is the size at which a transaction's pending records
// are written out as one changelog row.
const changelogBlobSize = 256 << 10

type changeRecord struct {
	kind       changeKind
	rel        tuple.Relationship
	name       string
	definition []byte
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b []byte, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

func appendRelChange(b []byte, kind changeKind, rel tuple.Relationship) ([]byte, error) {
	b = append(b, byte(kind))
	b = appendString(b, rel.Resource.ObjectType)
	b = appendString(b, rel.Resource.ObjectID)
	b = appendString(b, rel.Resource.Relation)
	b = appendString(b, rel.Subject.ObjectType)
	b = appendString(b, rel.Subject.ObjectID)
	b = appendString(b, rel.Subject.Relation)
	var flags byte
	if rel.OptionalCaveat != nil && rel.OptionalCaveat.CaveatName != "" {
		flags |= flagCaveat
	}
	if rel.OptionalExpiration != nil {
		flags |= flagExpiration
	}
	if rel.OptionalIntegrity != nil {
		flags |= flagIntegrity
	}
	b = append(b, flags)
	if flags&flagCaveat != 0 {
		ctx, err := encodeCaveatContext(rel.OptionalCaveat.Context)
		if err != nil {
			return nil, err
		}
		b = appendString(b, rel.OptionalCaveat.CaveatName)
		b = appendBytes(b, ctx)
	}
	if flags&flagExpiration != 0 {
		b = binary.AppendVarint(b, rel.OptionalExpiration.UnixMicro())
	}
	if flags&flagIntegrity != 0 {
		b = appendString(b, rel.OptionalIntegrity.KeyId)
		b = appendBytes(b, rel.OptionalIntegrity.Hash)
		b = binary.AppendVarint(b, rel.OptionalIntegrity.HashedAt.AsTime().UnixNano())
	}
	return b, nil
}

func appendDefChange(b []byte, kind changeKind, name string, def []byte) []byte {
	b = append(b, byte(kind))
	b = appendString(b, name)
	return appendBytes(b, def)
}

var errCorruptChangelog = errors.New("corrupt changelog record")

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errCorruptChangelog
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errCorruptChangelog
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if uint64(len(d.b)) < n {
		d.err = errCorruptChangelog
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) string() string { return string(d.bytes()) }

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.err = errCorruptChangelog
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

// decodeChanges decodes one changelog blob.
func decodeChanges(blob []byte, each func(changeRecord) error) error {
	d := &decoder{b: blob}
	for len(d.b) > 0 && d.err == nil {
		rec := changeRecord{kind: changeKind(d.byte())}
		switch rec.kind {
		case changeCreated, changeReplaced, changeDeleted:
			rel := tuple.Relationship{}
			rel.Resource.ObjectType = d.string()
			rel.Resource.ObjectID = d.string()
			rel.Resource.Relation = d.string()
			rel.Subject.ObjectType = d.string()
			rel.Subject.ObjectID = d.string()
			rel.Subject.Relation = d.string()
			flags := d.byte()
			if flags&flagCaveat != 0 {
				name := d.string()
				ctx, err := decodeCaveatContext(d.bytes())
				if err != nil {
					return err
				}
				rel.OptionalCaveat = &core.ContextualizedCaveat{CaveatName: name, Context: ctx}
			}
			if flags&flagExpiration != 0 {
				t := time.UnixMicro(d.varint()).UTC()
				rel.OptionalExpiration = &t
			}
			if flags&flagIntegrity != 0 {
				rel.OptionalIntegrity = &core.RelationshipIntegrity{
					KeyId: d.string(),
					Hash:  d.bytes(),
				}
				rel.OptionalIntegrity.HashedAt = timestamppb.New(time.Unix(0, d.varint()).UTC())
			}
			rec.rel = rel
		case changeNamespace, changeNamespaceGone, changeCaveat, changeCaveatGone:
			rec.name = d.string()
			rec.definition = d.bytes()
		default:
			return errCorruptChangelog
		}
		if d.err != nil {
			return d.err
		}
		if err := each(rec); err != nil {
			return err
		}
	}
	return d.err
}
