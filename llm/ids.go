package llm

import "sync"

// ids hands out a Router's model ids. An id, once given to a model (an
// upstream's model by the name it knows), is that model's for the
// Router's life: a refresh of one upstream's list never moves an id to
// another upstream's model, so a conversation stored with an id is
// answered by the model it chose, and what is learned per id (windows,
// output bounds) stays with that model. Configured models take theirs
// first, in order, before any list is fetched: a model's name if no
// earlier configured model has it, else "upstream/name". A listed model
// then takes its name if no model was ever given it, else
// "upstream/name", else none (it is left out). A model its upstream stops
// listing keeps its id, given to no other model: the id is unknown while
// the model is not listed, as any model no longer offered is (the hub
// answers a conversation on it with the default model and says so), and
// reaches it again once it is listed again. Safe for concurrent use.
type ids struct {
	mu    sync.Mutex
	given map[modelKey]string // each model's id
	taken map[string]bool     // every id given
}

// modelKey names a model of the Router: its source and the name the
// upstream knows.
type modelKey struct {
	src    *source
	remote string
}

func newIDs() *ids {
	return &ids{given: make(map[modelKey]string), taken: make(map[string]bool)}
}

// of returns the id of model remote of s, giving it one the first time;
// false when it has none (its name and "upstream/name" were given to
// other models, or its name was and the upstream has no name).
func (a *ids) of(s *source, remote string) (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	k := modelKey{s, remote}
	if id, ok := a.given[k]; ok {
		return id, true
	}
	id := remote
	if a.taken[id] {
		if s.up.Name == "" {
			return "", false
		}
		id = s.up.Name + "/" + remote
	}
	if a.taken[id] {
		return "", false
	}
	a.given[k], a.taken[id] = id, true
	return id, true
}
