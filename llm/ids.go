package llm

import (
	"errors"
	"fmt"
	"sync"
)

// ids hands out a Router's model ids. An id, once given to a model (an
// upstream's model by the name it knows), is that model's for the
// Router's life: a refresh of one upstream's list never moves an id to
// another upstream's model, so a conversation stored with an id is
// answered by the model it chose, and what is learned per id (windows,
// output bounds) stays with that model. Configured models take theirs
// first, in order, before any list is fetched: a model's name if no
// earlier configured model has it, else "upstream/name"; one whose
// "upstream/name" is another configured model's name gets none, which
// CheckIDs refuses at start. A listed model then takes its name if no
// model was ever given it, else "upstream/name", else none (it is left
// out, and the Router logs it once). A model its upstream stops listing
// keeps its id, given to no other model: the id is unknown while the
// model is not listed, as any model no longer offered is (the hub
// answers a conversation on it with the default model and says so), and
// reaches it again once it is listed again. Safe for concurrent use.
type ids struct {
	mu    sync.Mutex
	given map[modelKey]string // each model's id
	owner map[string]modelKey // the model each id was given to
	told  map[modelKey]bool   // models with none, already reported
}

// modelKey names a model of the Router: its source and the name the
// upstream knows.
type modelKey struct {
	src    *source
	remote string
}

// String names the model in a message: `upstream "azure"'s model "gpt-4o"`.
func (k modelKey) String() string {
	if k.src.up.Name == "" {
		return fmt.Sprintf("model %q", k.remote)
	}
	return fmt.Sprintf("upstream %q's model %q", k.src.up.Name, k.remote)
}

func newIDs() *ids {
	return &ids{given: make(map[modelKey]string), owner: make(map[string]modelKey), told: make(map[modelKey]bool)}
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
	if _, taken := a.owner[id]; taken {
		if s.up.Name == "" {
			return "", false
		}
		id = s.up.Name + "/" + remote
	}
	if _, taken := a.owner[id]; taken {
		return "", false
	}
	a.given[k], a.owner[id] = id, k
	return id, true
}

// untold returns why model remote of s, which of found no id for, has
// none, the first time it is asked for that model; nil after.
func (a *ids) untold(s *source, remote string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	k := modelKey{s, remote}
	if a.told[k] {
		return nil
	}
	a.told[k] = true
	return a.clash(k)
}

// clash says which models have the ids k could have had, and how to give
// k one. a.mu is held.
func (a *ids) clash(k modelKey) error {
	if k.src.up.Name == "" {
		return fmt.Errorf("%s gets no id: %q is the id of %s", k, k.remote, a.owner[k.remote])
	}
	prefixed := k.src.up.Name + "/" + k.remote
	return fmt.Errorf("%s gets no id: %q is the id of %s and %q that of %s; "+
		"give upstream %q another name (it prefixes the id: \"<name>/%s\"), or serve the model from one upstream only",
		k, k.remote, a.owner[k.remote], prefixed, a.owner[prefixed], k.src.up.Name, k.remote)
}

// CheckIDs reports every configured model (Upstream.Models) to which a
// Router with these upstreams would give no id: its name and
// "upstream/name" are ids of configured models before it (OpenRouter's
// "openai/gpt-4o" before upstream "openai"'s "gpt-4o", whose name an
// earlier upstream's "gpt-4o" has). Such a model could be reached by no
// id: a configuration holding one is to be refused.
func CheckIDs(upstreams []Upstream) error {
	a := newIDs()
	var errs []error
	for _, up := range upstreams {
		s := &source{up: up}
		for _, m := range up.Models {
			if _, ok := a.of(s, m.ID); !ok {
				errs = append(errs, a.untold(s, m.ID))
			}
		}
	}
	return errors.Join(errs...)
}
