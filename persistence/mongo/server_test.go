package mongo

import (
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

func TestIsFerretDB(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		reply bson.D
		want  bool
	}{
		{"MongoDB 7", bson.D{{Key: "version", Value: "7.0.14"}, {Key: "gitVersion", Value: "ce59cfc6a3c5e5c067dca0d30697edd68d4f5188"},
			{Key: "modules", Value: bson.A{}}, {Key: "ok", Value: 1.0}}, false},
		{"FerretDB v1.24.2", bson.D{{Key: "version", Value: "7.0.77"}, {Key: "gitVersion", Value: "unknown"},
			{Key: "ferretdbVersion", Value: "v1.24.2"},
			{Key: "ferretdbFeatures", Value: bson.D{{Key: "aggregationStages", Value: bson.A{"$match"}}}},
			{Key: "ok", Value: 1.0}}, true},
		{"empty reply", bson.D{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			raw, err := bson.Marshal(tt.reply)
			if err != nil {
				t.Fatal(err)
			}
			if got := isFerretDB(raw); got != tt.want {
				t.Errorf("isFerretDB = %v, want %v", got, tt.want)
			}
		})
	}
}
