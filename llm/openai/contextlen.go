package openai

import (
	"regexp"
	"strconv"

	goopenai "github.com/sashabaranov/go-openai"

	"chatd/llm"
)

// A refusal of a prompt as too long often names the model's context window
// and the prompt's tokens; the hub fits the prompt into them and asks
// again (llm.Error.ContextTokens, PromptTokens). Each server has its own
// wording, matched case-insensitively:
//
//	OpenAI     This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens. ...
//	OpenAI (older), vLLM
//	           This model's maximum context length is 4096 tokens. However, you requested 5000 tokens (4000 in the messages, 1000 in the completion). ...
//	vLLM       This model's maximum context length is 4096 tokens. However, your request has 5000 input tokens. ...
//	llama.cpp  request (5000 tokens) exceeds the available context size (4096 tokens), try increasing it
//	Anthropic-compatible
//	           prompt is too long: 215000 tokens > 200000 maximum
//	Mistral    Prompt contains 40000 tokens and 0 draft tokens, too large for model with 32768 maximum context length
//	vLLM (newer)
//	           This model's maximum context length is 8192 tokens. However, you requested 1024 output tokens and your prompt contains at least 7169 input tokens, ...
//	           You passed 12289 input tokens and requested 4096 output tokens. However, the model's context length is only 16384 tokens, ...
//	           max_tokens=8192 cannot be greater than max_model_len=max_total_tokens=4096. ...
//	           The decoder prompt (length 9000) is longer than the maximum model length of 8192. ...
//	OpenRouter This endpoint's maximum context length is 65536 tokens. However, you requested about 70000 tokens (3000 of text input, 67000 in the output). ...
//	OpenAI (legacy completions)
//	           This model's maximum context length is 4097 tokens, however you requested 4231 tokens (3975 in your prompt; 256 for the completion). ...
//	TGI        Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096. Given: 4000 `inputs` tokens and 200 `max_new_tokens`
//	           Input validation error: `inputs` must have less than 4096 tokens. Given: 5000
//	Ollama     the input length exceeds the context length (no number)
//	Gemini     The input token count (140000) exceeds the maximum number of tokens allowed (131072).
//	           (in a list: [{"error": {...}}], see bodyError)
//	xAI        This model's maximum prompt length is 131072 but the request contains 537812 tokens.
//	           (as {"code": ..., "error": "..."}, see bodyError)
//	Together AI, SGLang
//	           The input (250000 tokens) is longer than the model's context length (200000 tokens).
//	SGLang, vLLM (others)
//	           Requested token count exceeds the model's maximum context length of 262144 tokens. You requested a total of 267042 tokens: 201506 tokens from the input messages and 65536 tokens for the completion. ...
//	LM Studio  Trying to keep the first 6547 tokens when context overflows. However, the model is loaded with context length of only 4096 tokens, which is not enough. Try to load the model with a larger context length, or provide a shorter input
//	           ("when context the overflows" in some versions, "with a context length" in others)
//	           The number of tokens to keep from the initial prompt is greater than the context length (n_keep: 5228 >= n_ctx: 4096). ...
//	           (as {"error": "..."}, see bodyError)
//
// vLLM's refusal of a max_tokens larger than the whole window names the
// window: the hub then asks for fewer tokens of answer (hub/refit.go).
// TGI's `inputs` bound is its longest prompt, below the whole window: taken
// as the window, it fits the prompt a little more tightly than needed.
//
// LM Studio names the tokens it must keep from the start of the prompt
// (the system prompt and first messages, or all of it): at most the
// prompt's tokens, taken as them, it fits the prompt no tighter than
// needed.
//
// A server that gives only the request's total ("you requested 5000
// tokens") has that total taken as the prompt's tokens: an upper bound, so
// the prompt is cut a little more than needed, never less.
var (
	// refusalPatterns recognise refusals whose words alone would be too
	// loose (see contextLength).
	refusalPatterns = []*regexp.Regexp{
		regexp.MustCompile(`(?i)maximum prompt length is \d+ but the request contains \d+ tokens`),
		regexp.MustCompile(`(?i)loaded with (?:a )?context length of only \d+ tokens`),
	}
	windowWords = []*regexp.Regexp{
		regexp.MustCompile(`(?i)maximum context length is (\d+) tokens`),
		regexp.MustCompile(`(?i)available context size \((\d+) tokens\)`),
		regexp.MustCompile(`(?i)tokens > (\d+) maximum`),
		regexp.MustCompile(`(?i)model with (\d+) maximum context length`),
		regexp.MustCompile("(?i)`max_new_tokens` must be <= (\\d+)"),
		regexp.MustCompile(`(?i)context length is only (\d+) tokens`),
		regexp.MustCompile(`(?i)max_model_len=(?:max_total_tokens=)?(\d+)`),
		regexp.MustCompile(`(?i)maximum model length of (\d+)`),
		regexp.MustCompile("(?i)`inputs` must have less than (\\d+) tokens"),
		regexp.MustCompile(`(?i)maximum number of tokens allowed \((\d+)\)`),
		regexp.MustCompile(`(?i)maximum prompt length is (\d+) but`),
		regexp.MustCompile(`(?i)longer than the model's context length \((\d+) tokens\)`),
		regexp.MustCompile(`(?i)maximum context length of (\d+) tokens`),
		regexp.MustCompile(`(?i)context length of only (\d+) tokens`),
		regexp.MustCompile(`(?i)n_ctx: ?(\d+)`),
	}
	promptWords = []*regexp.Regexp{
		regexp.MustCompile(`(?i)your messages resulted in (\d+) tokens`),
		regexp.MustCompile(`(?i)\((\d+) in the messages`),
		regexp.MustCompile(`(?i)your request has (\d+) input tokens`),
		regexp.MustCompile(`(?i)request \((\d+) tokens\) exceeds`),
		regexp.MustCompile(`(?i)prompt is too long: (\d+) tokens`),
		regexp.MustCompile(`(?i)prompt contains (\d+) tokens`),
		regexp.MustCompile("(?i)given: (\\d+) `inputs` tokens"),
		regexp.MustCompile(`(?i)your prompt contains at least (\d+) input tokens`),
		regexp.MustCompile(`(?i)you passed (\d+) input tokens`),
		regexp.MustCompile(`(?i)prompt \(length (\d+)\)`),
		regexp.MustCompile("(?i)`inputs` must have less than \\d+ tokens\\. given: (\\d+)"),
		regexp.MustCompile(`(?i)\((\d+) in your prompt`),
		regexp.MustCompile(`(?i)\((\d+) of text input`),
		regexp.MustCompile(`(?i)input token count \((\d+)\)`),
		regexp.MustCompile(`(?i)but the request contains (\d+) tokens`),
		regexp.MustCompile(`(?i)the input \((\d+) tokens\) is longer`),
		regexp.MustCompile(`(?i)(\d+) tokens from the input messages`),
		regexp.MustCompile(`(?i)keep the first (\d+) tokens`),
		regexp.MustCompile(`(?i)n_keep: ?(\d+)`),
		regexp.MustCompile(`(?i)you requested (?:about )?(\d+) tokens`), // the total: last
	}
)

// maxNamedTokens bounds a number read from a refusal: anything larger is
// no context window (nor prompt) of today's models, and is ignored.
const maxNamedTokens = 100_000_000

// refusalTokens returns the context window and the prompt's tokens that
// the message of a context-length refusal names, 0 for what it does not.
func refusalTokens(msg string) (window, prompt int) {
	return firstNumber(windowWords, msg), firstNumber(promptWords, msg)
}

// firstNumber returns the number the first of res that matches s
// captures, if it is a plausible count of tokens; else 0.
func firstNumber(res []*regexp.Regexp, s string) int {
	for _, re := range res {
		m := re.FindStringSubmatch(s)
		if m == nil {
			continue
		}
		n, err := strconv.Atoi(m[1])
		if err != nil || n <= 0 || n > maxNamedTokens {
			return 0
		}
		return n
	}
	return 0
}

// contextLengthError is the error of a prompt refused as too long by an
// API error e (status: its HTTP status, 0 inside a stream), with the
// numbers it names.
func contextLengthError(e *goopenai.APIError, status int, key secrets, err error) *llm.Error {
	window, prompt := refusalTokens(e.Message)
	return &llm.Error{Kind: llm.KindContextLength, Status: status, Err: err,
		Message:       "The conversation is too long for this model's context window: " + clean(e.Message, key),
		ContextTokens: window, PromptTokens: prompt}
}
