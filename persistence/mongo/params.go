package mongo

import "chatd/persistence"

// paramsDoc is a conversation's sampling parameters; nil fields take the
// model's defaults.
type paramsDoc struct {
	Temperature *float64 `bson:"temperature,omitempty"`
	TopP        *float64 `bson:"top_p,omitempty"`
	MaxTokens   *int     `bson:"max_tokens,omitempty"`
	Stop        []string `bson:"stop,omitempty"`
}

// paramsDocOf converts p; nothing set is stored as no document.
func paramsDocOf(p *persistence.Params) *paramsDoc {
	if p.IsZero() {
		return nil
	}
	return &paramsDoc{Temperature: p.Temperature, TopP: p.TopP, MaxTokens: p.MaxTokens, Stop: p.Stop}
}

// params converts d; nil stays nil.
func (d *paramsDoc) params() *persistence.Params {
	if d == nil {
		return nil
	}
	return &persistence.Params{Temperature: d.Temperature, TopP: d.TopP, MaxTokens: d.MaxTokens, Stop: d.Stop}
}
