package mongo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// schemaID is the _id of the meta document recording the schema version.
const schemaID = "schema"

// migration is one step of the schema history. Steps run in order, each at
// most once per database as far as the schema document knows; they must be
// idempotent anyway, since two servers starting together may both run one.
type migration struct {
	version int
	name    string
	up      func(ctx context.Context, s *Store) error
	// retired marks a step an earlier build recorded whose work moved
	// elsewhere: a database at its version opens, and no database is
	// taken to it (so the builds that came before it keep opening the
	// databases this one writes).
	retired bool
}

// migrations is the ordered schema history; append, never edit or reorder.
// Indexes are not migrations: ensureIndexes creates them at every Open.
var migrations = []migration{
	{version: 1, name: "baseline: users, conversations, messages with chunked content", up: nil},
	// Documents written before it lack error_code and read as "" (nothing to rewrite).
	{version: 2, name: "messages: error_code of failed answers", up: nil},
	// Documents written before it lack reasoning, omitted_messages and
	// params and read as empty (nothing to rewrite).
	{version: 3, name: "messages: reasoning and omitted_messages; conversations: params", up: nil},
	// Step 4 deleted, once, what deleted users left (639d3f7); that sweep
	// moved to the background after Open (cleanUp, orphans.go), which runs
	// it on any database that has not recorded it done. Taken out of this
	// list, a database that build had taken to 4 was refused as newer than
	// the server. The next step is 5.
	{version: 4, name: "conversations and messages of deleted users removed", retired: true},
}

// schemaDoc is the meta document that records the applied migrations.
type schemaDoc struct {
	ID      string         `bson:"_id"`
	Version int            `bson:"version"`
	Applied []appliedEntry `bson:"applied"`
}

// appliedEntry records one applied migration.
type appliedEntry struct {
	Version   int       `bson:"version"`
	Name      string    `bson:"name"`
	AppliedAt time.Time `bson:"applied_at"`
}

// indexSpec is one index the store relies on.
type indexSpec struct {
	coll   func(s *Store) *mongo.Collection
	name   string
	unique bool
	sparse bool // leaves out the documents that lack the (single) field
	keys   bson.D
	reason string // why the store needs it
}

// indexes lists every index; names are fixed so creating them again is a
// no-op. No unique index may have a field a document can lack unless it is
// sparse: FerretDB tolerates that, MongoDB indexes the missing field as
// null and rejects the second such document. Only a single-field index
// gains from sparse (a compound one indexes a document that has any of its
// fields), and partial indexes are not an option (FerretDB refuses them);
// FerretDB accepts sparse and ignores it, its unique indexes leaving the
// documents without the field out anyway.
var indexes = []indexSpec{
	{
		coll:   func(s *Store) *mongo.Collection { return s.users },
		name:   "email_unique",
		unique: true,
		keys:   bson.D{{Key: "email", Value: 1}},
		reason: "sign-in by email; one account per email",
	},
	{
		coll:   func(s *Store) *mongo.Collection { return s.users },
		name:   "deleting",
		sparse: true,
		keys:   bson.D{{Key: "deleting_at", Value: 1}},
		// Only the users being deleted have deleting_at: sparse keeps the
		// index as small as they are few.
		reason: "FinishDeletions finds the users whose deletion was cut off without a scan",
	},
	{
		coll:   func(s *Store) *mongo.Collection { return s.conversations },
		name:   "owner_updated",
		keys:   bson.D{{Key: "owner_id", Value: 1}, {Key: "updated_at", Value: -1}, {Key: "_id", Value: -1}},
		reason: "a user's conversations newest first, paginated by (updated_at, _id)",
	},
	{
		coll:   func(s *Store) *mongo.Collection { return s.conversations },
		name:   "client_key_unique",
		unique: true,
		sparse: true,
		keys:   bson.D{{Key: "client_key", Value: 1}},
		// Conversations created before it, or by an older server during a
		// rolling upgrade, lack client_key: sparse leaves them out, so no
		// rewrite of them is needed and older servers keep working.
		reason: "idempotent creation: one conversation per owner and client id",
	},
	{
		coll:   func(s *Store) *mongo.Collection { return s.conversations },
		name:   "deleting",
		sparse: true,
		keys:   bson.D{{Key: "deleting_at", Value: 1}},
		// Only the conversations being deleted have deleting_at.
		reason: "FinishDeletions finds the conversations whose deletion was cut off without a scan",
	},
	{
		coll:   func(s *Store) *mongo.Collection { return s.messages },
		name:   "conversation_created",
		keys:   bson.D{{Key: "conversation_id", Value: 1}, {Key: "created_at", Value: 1}, {Key: "_id", Value: 1}},
		reason: "a conversation's messages oldest first",
	},
	{
		coll:   func(s *Store) *mongo.Collection { return s.messages },
		name:   "owner_client_message_unique",
		unique: true,
		keys:   bson.D{{Key: "owner_id", Value: 1}, {Key: "client_message_id", Value: 1}},
		reason: "idempotent sends: one message per client message id and owner",
	},
	{
		coll:   func(s *Store) *mongo.Collection { return s.messages },
		name:   "status",
		keys:   bson.D{{Key: "status", Value: 1}},
		reason: "InterruptStreaming at start, and a cluster's sweep of answers left streaming (StreamingBefore), find the few streaming messages without a scan",
	},
}

// model is the createIndexes form of ix.
func (ix indexSpec) model() mongo.IndexModel {
	o := options.Index().SetName(ix.name)
	if ix.unique {
		o.SetUnique(true)
	}
	if ix.sparse {
		o.SetSparse(true)
	}
	return mongo.IndexModel{Keys: ix.keys, Options: o}
}

// setUp creates the indexes and applies pending migrations; fresh says
// whether the database held no chatd schema before, buildText whether the
// text index is left for cleanUp to build (see textIndexNow).
func (s *Store) setUp(ctx context.Context) (fresh, buildText bool, err error) {
	if err := s.ensureIndexes(ctx); err != nil {
		return false, false, err
	}
	s.ferretDB = s.detectFerretDB(ctx)
	s.locks.ferretDB = s.ferretDB
	buildText = s.textIndexNow(ctx)
	from, err := s.migrate(ctx)
	return from == 0, buildText, err
}

// ensureIndexes creates every index; existing ones are left as they are.
func (s *Store) ensureIndexes(ctx context.Context) error {
	for _, ix := range indexes {
		c := ix.coll(s)
		if _, err := c.Indexes().CreateOne(ctx, ix.model()); err != nil {
			return fmt.Errorf("create index %s.%s: %w", c.Name(), ix.name, err)
		}
	}
	return nil
}

// migrate applies the migrations newer than the recorded schema version
// and returns that version.
func (s *Store) migrate(ctx context.Context) (int, error) {
	current, err := s.schemaVersion(ctx)
	if err != nil {
		return 0, err
	}
	latest := migrations[len(migrations)-1].version
	if current > latest {
		return current, fmt.Errorf("database schema version %d is newer than this server knows (%d): run the release that wrote it, or restore a backup taken before the upgrade (docs/deploy.md)", current, latest)
	}
	for _, m := range migrations {
		if m.version <= current || m.retired {
			continue
		}
		recorded, err := s.apply(ctx, m)
		if err != nil {
			return current, err
		}
		if !recorded {
			s.log.Info("mongodb schema step recorded by another server starting meanwhile", "version", m.version)
			continue
		}
		s.log.Info("mongodb schema migrated", "version", m.version, "migration", m.name)
	}
	return current, nil
}

// schemaVersion reads the recorded version; 0 for a new database.
func (s *Store) schemaVersion(ctx context.Context) (int, error) {
	var d schemaDoc
	err := s.meta.FindOne(ctx, bson.D{{Key: "_id", Value: schemaID}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return d.Version, nil
}

// apply runs m and records it, unless another server recorded it first
// (recorded is false then).
func (s *Store) apply(ctx context.Context, m migration) (recorded bool, err error) {
	if m.up != nil {
		if err := m.up(ctx, s); err != nil {
			return false, fmt.Errorf("migration %d (%s): %w", m.version, m.name, err)
		}
	}
	filter := bson.D{{Key: "_id", Value: schemaID}, {Key: "version", Value: bson.D{{Key: "$lt", Value: m.version}}}}
	update := bson.D{
		{Key: "$set", Value: bson.D{{Key: "version", Value: m.version}}},
		{Key: "$push", Value: bson.D{{Key: "applied", Value: appliedEntry{Version: m.version, Name: m.name, AppliedAt: now()}}}},
	}
	res, err := s.meta.UpdateOne(ctx, filter, update, options.UpdateOne().SetUpsert(true))
	if mongo.IsDuplicateKeyError(err) {
		// The document exists with version >= m.version: another server
		// recorded this step while we ran it.
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("record migration %d: %w", m.version, err)
	}
	return res.ModifiedCount > 0 || res.UpsertedCount > 0, nil
}
