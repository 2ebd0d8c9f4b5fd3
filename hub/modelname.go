package hub

import (
	"chatd/hub/protocol"
	"chatd/llm"
)

// shownModel is model as a refusal names it: at most
// protocol.MaxModelChars characters, with "…" when cut. The transports
// refuse a longer name before it reaches the hub, but a refusal echoes
// the name quoted (and, in a frame, escaped again), so the bound holds
// here too, whatever the caller.
func shownModel(model string) string {
	if cut := llm.CutText(model, protocol.MaxModelChars); cut != model {
		return cut + "…"
	}
	return model
}
