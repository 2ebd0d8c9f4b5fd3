package mongo_test

import (
	"slices"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"chatd/persistence"
	"chatd/persistence/mongo"
)

// TestFencePaths runs the fence on both of its paths, on FerretDB: the
// one Open selects there (a find by _id per message, then an update by
// _id alone of the messages found streaming) and the one it selects on
// MongoDB (one update per message filtered by _id and status, and by the
// chunks its text follows when the store knows them, read back when it
// matched fewer). Both must skip the same updates; the commands sent
// show which path ran.
func TestFencePaths(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		ferretDB   bool
		filter     []string // keys of each update statement's filter, of a known message
		unknown    []string // and of an unknown one
		statements int      // update statements of the mixed batch
		finds      int      // finds by _id alone before the update
	}{
		{"FerretDB", true, []string{"_id"}, []string{"_id"}, 1, 4},
		{"MongoDB", false, []string{"_id", "status", "content", "reasoning.0"}, []string{"_id", "status"}, 4, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			log := writeLog{finds: true}
			ctx, e := newEnv(t, log.monitor())
			s := e.store
			if !mongo.IsFerretDB(s) {
				t.Fatal("Open on FerretDB did not detect FerretDB")
			}
			mongo.SetFerretDB(s, tt.ferretDB)
			u := mustUser(ctx, t, s, "a@x")
			c := mustConversation(ctx, t, s, u.ID, "chat")
			live := mustMessage(ctx, t, s, c, persistence.RoleAssistant, "live ")
			ended := mustMessage(ctx, t, s, c, persistence.RoleAssistant, "ended ")
			done := mustMessage(ctx, t, s, c, persistence.RoleAssistant, "done ")
			endedMsg, err := s.InterruptMessage(ctx, u.ID, ended.ID, "taken over", time.Now())
			if err != nil {
				t.Fatal(err)
			}
			final := persistence.MessageUpdate{ID: done.ID, Append: "the end.", Status: persistence.StatusComplete,
				FinishReason: "stop", At: time.Now()}
			if skipped, err := s.ApplyMessageUpdates(ctx, []persistence.MessageUpdate{final}); err != nil || skipped != nil {
				t.Fatalf("final update: skipped %v, err %v", skipped, err)
			}
			doneMsg, err := s.Message(ctx, u.ID, done.ID)
			if err != nil {
				t.Fatal(err)
			}
			log.take()

			unknown := persistence.NewID()
			skipped, err := s.ApplyMessageUpdates(ctx, []persistence.MessageUpdate{
				{ID: live.ID, Append: "more"},
				{ID: ended.ID, Append: "late", Status: persistence.StatusComplete},
				{ID: unknown, Append: "lost"},
				final, // retried as is: found stored, counts as applied
			})
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(skipped)
			want := []string{ended.ID, unknown}
			slices.Sort(want)
			if !slices.Equal(skipped, want) {
				t.Errorf("skipped %v, want %v (the interrupted and the unknown message)", skipped, want)
			}
			cmds := log.take()
			var finds, updates int
			for _, cmd := range cmds {
				switch cmd.name {
				case "find":
					if keys := filterKeys(t, cmd.raw.Lookup("filter").Document()); slices.Equal(keys, []string{"_id"}) &&
						cmd.raw.Lookup("filter", "_id").Type == bson.TypeObjectID {
						finds++
					}
				case "update":
					updates++
					stmts, _ := cmd.raw.Lookup("updates").Array().Values()
					if len(stmts) != tt.statements {
						t.Errorf("%d update statements, want %d", len(stmts), tt.statements)
					}
					for _, st := range stmts {
						q := st.Document().Lookup("q").Document()
						want := tt.filter
						if q.Lookup("_id").ObjectID().Hex() == unknown {
							want = tt.unknown
						}
						if keys := filterKeys(t, q); !slices.Equal(keys, want) {
							t.Errorf("update filter keys %v, want %v", keys, want)
						}
					}
				default:
					t.Errorf("unexpected %s command", cmd.name)
				}
			}
			if updates != 1 || finds != tt.finds {
				t.Errorf("%d update commands and %d finds by _id, want 1 and %d", updates, finds, tt.finds)
			}

			for _, w := range []struct {
				id   string
				want persistence.Message
			}{{ended.ID, endedMsg}, {done.ID, doneMsg}} {
				got, err := s.Message(ctx, u.ID, w.id)
				if err != nil {
					t.Fatal(err)
				}
				if got.Content != w.want.Content || got.Status != w.want.Status || !got.UpdatedAt.Equal(w.want.UpdatedAt) {
					t.Errorf("message %s: %q %s %v, want it unchanged: %q %s %v", w.id, got.Content, got.Status, got.UpdatedAt,
						w.want.Content, w.want.Status, w.want.UpdatedAt)
				}
			}
			if got, err := s.Message(ctx, u.ID, live.ID); err != nil || got.Content != "live more" || got.Status != persistence.StatusStreaming {
				t.Errorf("live message: %q %s, %v; want %q streaming", got.Content, got.Status, err, "live more")
			}

			later := final
			later.At = final.At.Add(time.Second)
			if skipped, err := s.ApplyMessageUpdates(ctx, []persistence.MessageUpdate{later}); err != nil || !slices.Equal(skipped, []string{done.ID}) {
				t.Errorf("a later final update: skipped %v, err %v; want %s skipped", skipped, err, done.ID)
			}
		})
	}
}

// filterKeys returns the keys of a filter document, in order.
func filterKeys(t *testing.T, d bson.Raw) []string {
	t.Helper()
	elems, err := d.Elements()
	if err != nil {
		t.Fatal(err)
	}
	keys := make([]string, len(elems))
	for i, e := range elems {
		keys[i] = e.Key()
	}
	return keys
}
