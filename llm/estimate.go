package llm

// Estimating a prompt's tokens without a network call (the hub fits
// prompts into a model's context window by it; hub/prune.go says why it
// errs high for most text).

const (
	// BytesPerToken is the bytes of text the estimate counts as a token.
	BytesPerToken = 3
	// TokensPerMessage is what the estimate counts for a message's role
	// and framing.
	TokensPerMessage = 4
)

// EstimateTokens is the estimated token cost of one message of text s
// (0 for no message): a token per BytesPerToken bytes, rounded up, and
// TokensPerMessage.
func EstimateTokens(s string) int {
	if s == "" {
		return 0
	}
	return (len(s)+BytesPerToken-1)/BytesPerToken + TokensPerMessage
}

// EstimatePrompt is the estimated token cost of the messages of a prompt.
func EstimatePrompt(msgs []Message) int {
	n := 0
	for _, m := range msgs {
		n += EstimateTokens(m.Content)
	}
	return n
}
