package mongo

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// ferretDBVersionField is the field FerretDB adds to its buildInfo reply
// (v1.24.2: "ferretdbVersion" beside "ferretdbFeatures"); MongoDB has no
// such field.
const ferretDBVersionField = "ferretdbVersion"

// detectFerretDB reports whether the server is FerretDB, from its buildInfo
// reply. When buildInfo fails, the server is taken for MongoDB: the store
// then keeps the atomic fence filter, right on any server (on FerretDB only
// slower).
func (s *Store) detectFerretDB(ctx context.Context) bool {
	var info bson.Raw
	err := s.client.Database("admin").RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&info)
	if err != nil {
		s.log.Warn("mongodb: buildInfo failed; taking the server for MongoDB", "err", err)
		return false
	}
	if isFerretDB(info) {
		v, _ := info.Lookup(ferretDBVersionField).StringValueOK()
		s.log.Info("mongodb: the server is FerretDB; message updates check the fence by _id before writing",
			"ferretdb_version", v)
		return true
	}
	return false
}

// isFerretDB reports whether a buildInfo reply comes from FerretDB.
func isFerretDB(buildInfo bson.Raw) bool {
	_, err := buildInfo.LookupErr(ferretDBVersionField)
	return err == nil
}
