package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"chatd/persistence"
	"chatd/persistence/sqlite"
)

// blindSearch is a store whose searches find nothing.
type blindSearch struct{ *sqlite.Store }

func (b blindSearch) ListConversations(ctx context.Context, ownerID string, q persistence.ListQuery) (persistence.ConversationPage, error) {
	if q.Search != "" {
		return persistence.ConversationPage{}, nil
	}
	return b.Store.ListConversations(ctx, ownerID, q)
}

// TestGrowthChecksSearchHits: the growth scenario's searches are checked,
// not only timed: a store whose search finds nothing (a broken index
// answers fast) is a problem of the report and its search check is not
// measured; the searches were timed whatever they returned. The real store
// gives no problem.
func TestGrowthChecksSearchHits(t *testing.T) {
	t.Parallel()
	c := smokeConfig()
	c.growthSQLite.messages = rareSure // a set that surely holds the rare word
	for _, blind := range []bool{false, true} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		s, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(t.TempDir(), "chatd.db"), Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		var store persistence.Store = s
		if blind {
			store = blindSearch{s}
		}
		res, err := fillAndTime(ctx, store, c.growthSQLite, "")
		if cerr := s.Close(ctx); cerr != nil {
			t.Fatal(cerr)
		}
		if err != nil {
			t.Fatal(err)
		}
		var r report
		growthChecks(&r, c, res)
		if !blind {
			if len(r.problems) > 0 {
				t.Fatalf("problems over the real store: %q", r.problems)
			}
			continue
		}
		if len(r.problems) != 1 || !strings.Contains(r.problems[0], "rare word") {
			t.Fatalf("problems %q, want one for the rare word's searches that found nothing", r.problems)
		}
		for _, ch := range r.checks {
			if strings.Contains(ch.what, "rare word") && (ch.met || !ch.broken) {
				t.Fatalf("check %+v over searches that found nothing", ch)
			}
		}
	}
}
