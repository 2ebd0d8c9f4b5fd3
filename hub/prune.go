package hub

// Fitting a prompt into a model's context window, without a network call.
//
// Tokens are estimated from bytes: one token per 3 bytes of text, rounded
// up, plus 4 per message for the role and framing. OpenAI's tokenizers
// average about 4 bytes of English per token, and about 3 bytes (one
// character) of Chinese or Japanese, so the estimate errs on the high side
// for most text; what it gets wrong is caught by the upstream's own
// refusal, which ends the answer with a context_length error.
//
// The budget of a prompt is the model's context window less the room kept
// for the answer (the conversation's maxTokens, else a quarter of the
// window up to 4096 tokens) and a margin of 16 tokens for the reply's
// priming. A maxTokens that leaves no room for the system prompt and the
// newest message is not kept whole: the prompt is fitted as if it were
// unset, and the answer's max tokens are lowered to what the window leaves
// after the prompt (answerTokens), for that answer only. The answer is
// possible, if shorter than asked; one that reaches the lower bound ends
// with finish reason "length", as any answer cut at its max tokens.

import "chatd/llm"

const (
	bytesPerToken   = llm.BytesPerToken
	primingTokens   = 16
	answerRoomMax   = 4096
	answerRoomShare = 4 // a quarter of the window
)

// estimateTokens is the estimated token cost of one message of text s
// (0 for no message): llm.EstimateTokens, which the title request is
// bounded by too.
func estimateTokens(s string) int { return llm.EstimateTokens(s) }

// promptTokenBudget is how many estimated tokens a prompt may use with a
// context window of contextTokens (0: unknown, no bound) and an answer of
// at most maxTokens (0: not set). It is at least 1, so the newest message
// is still sent when the window is tiny (the upstream then decides).
func promptTokenBudget(contextTokens, maxTokens int) int {
	if contextTokens <= 0 {
		return 0
	}
	room := maxTokens
	if room <= 0 {
		room = min(contextTokens/answerRoomShare, answerRoomMax)
	}
	return max(contextTokens-room-primingTokens, 1)
}

// answerTokens is the max tokens of an answer of at most maxTokens (0: not
// set) after a prompt of prompt tokens, in a window of window (0:
// unknown): maxTokens, lowered to what the window leaves after the prompt
// and the margin when that is less. A prompt that fills the window alone
// keeps maxTokens: the upstream refuses it as too long, as it is.
func answerTokens(window, maxTokens, prompt int) int {
	room := window - prompt - primingTokens
	if window <= 0 || maxTokens <= 0 || room < 1 || maxTokens <= room {
		return maxTokens
	}
	return room
}
