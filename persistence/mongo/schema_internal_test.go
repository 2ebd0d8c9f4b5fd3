package mongo

import (
	"testing"

	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// TestClientKeyIndexSparse: the unique index on client_key is asked for
// sparse, so that on MongoDB conversations without the field (older ones,
// or an older instance's during a rolling upgrade) are left out of it
// rather than colliding as nulls. FerretDB ignores the option and does not
// list it, hence a check of the request rather than of the server.
func TestClientKeyIndexSparse(t *testing.T) {
	t.Parallel()
	for _, ix := range indexes {
		if ix.name != "client_key_unique" {
			continue
		}
		var o options.IndexOptions
		for _, set := range ix.model().Options.Opts {
			if err := set(&o); err != nil {
				t.Fatal(err)
			}
		}
		if o.Unique == nil || !*o.Unique || o.Sparse == nil || !*o.Sparse {
			t.Fatalf("client_key_unique asks for unique %v, sparse %v; want both", o.Unique, o.Sparse)
		}
		return
	}
	t.Fatal("no index client_key_unique")
}
