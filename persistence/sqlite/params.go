package sqlite

import (
	"encoding/json"
	"fmt"

	"chatd/persistence"
)

// encodeParams is the params column of a conversation: JSON, or ” when
// nothing is set.
func encodeParams(p *persistence.Params) (string, error) {
	if p.IsZero() {
		return "", nil
	}
	b, err := json.Marshal(p)
	if err != nil {
		return "", fmt.Errorf("encode params: %w", err)
	}
	return string(b), nil
}

// patchParams is the params argument of an update: NULL keeps the column.
func patchParams(p *persistence.Params) (any, error) {
	if p == nil {
		return nil, nil
	}
	return encodeParams(p)
}

// decodeParams reads a params column into *p (” leaves it nil).
func decodeParams(s string, p **persistence.Params) error {
	if s == "" {
		return nil
	}
	*p = new(persistence.Params)
	if err := json.Unmarshal([]byte(s), *p); err != nil {
		return fmt.Errorf("decode params: %w", err)
	}
	return nil
}
