package openai

import (
	"bytes"
	"encoding/json"

	goopenai "github.com/sashabaranov/go-openai"

	"chatd/llm"
)

// chunkFields is what chatd reads of one chat completion chunk: its usage
// (nil when the chunk has none), in order, its choices of index 0, and the
// error it reports (nil when none).
type chunkFields struct {
	usage   *llm.Usage
	choices []choiceFields
	// err is the chunk's top-level "error" member: OpenRouter reports a
	// failure after the stream started as an ordinary chunk carrying one
	// (and finish_reason "error"). go-openai's type has no such field.
	err *goopenai.APIError
}

// choiceFields is what chatd reads of a choice.
type choiceFields struct {
	finish, content, reasoning, refusal string
}

// chunkDecoder decodes the chunks of one stream. Most chunks are decoded
// in one pass over their bytes, without reflection, by a decoder of just
// the fields chatd reads; a chunk it does not fully understand goes to
// json.Unmarshal into go-openai's type, as go-openai's Recv does, so the
// result and the error are go-openai's either way. It is used by one
// goroutine; its result is valid until the next decode.
type chunkDecoder struct {
	scanner
	fields chunkFields
	texts  textArena // the strings of the fields (their text is kept past the next decode)
}

// decode returns what chatd reads of raw, one chunk's JSON as go-openai's
// RecvRaw returns it, or json.Unmarshal's error.
func (d *chunkDecoder) decode(raw []byte) (*chunkFields, error) {
	if d.fast(raw) {
		return &d.fields, nil
	}
	var resp goopenai.ChatCompletionStreamResponse
	if err := json.Unmarshal(raw, &resp); err != nil {
		return nil, err
	}
	d.fields = fieldsOf(resp, d.fields.choices[:0])
	d.fields.err = errorMember(raw)
	return &d.fields, nil
}

// errorMember returns the top-level "error" member of raw, a chunk
// json.Unmarshal accepts, as encoding/json matches names (in any case,
// escaped or not); nil when there is none or it is null. An error that is
// not an object of go-openai's shape keeps its JSON text as the message.
// The fast path never takes a chunk with an error member, so only chunks
// json.Unmarshal decodes are searched, and only those whose bytes could
// name one.
func errorMember(raw []byte) *goopenai.APIError {
	if !mayNameError(raw) {
		return nil
	}
	var v struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(raw, &v) != nil || len(v.Error) == 0 || string(v.Error) == "null" {
		return nil
	}
	e := &goopenai.APIError{}
	if json.Unmarshal(v.Error, e) != nil {
		e = &goopenai.APIError{Message: string(v.Error)}
		_ = json.Unmarshal(v.Error, &e.Message) // a plain string
	}
	return e
}

// mayNameError reports whether raw holds "rror" in any case, or an escape:
// a member that encoding/json takes for "error" must spell it so.
func mayNameError(raw []byte) bool {
	if bytes.Contains(raw, []byte(`\u`)) {
		return true
	}
	for i := 0; i+4 <= len(raw); i++ {
		if raw[i]|0x20 == 'r' && raw[i+1]|0x20 == 'r' && raw[i+2]|0x20 == 'o' && raw[i+3]|0x20 == 'r' {
			return true
		}
	}
	return false
}

// fieldsOf returns what chatd reads of a chunk go-openai decoded,
// appending its choices of index 0 to choices.
func fieldsOf(resp goopenai.ChatCompletionStreamResponse, choices []choiceFields) chunkFields {
	f := chunkFields{choices: choices}
	if u := resp.Usage; u != nil {
		f.usage = &llm.Usage{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens, TotalTokens: u.TotalTokens}
	}
	for _, ch := range resp.Choices {
		if ch.Index == 0 {
			f.choices = append(f.choices, choiceFields{finish: string(ch.FinishReason),
				content: ch.Delta.Content, reasoning: ch.Delta.ReasoningContent, refusal: ch.Delta.Refusal})
		}
	}
	return f
}

// The fields of go-openai's chunk types (ChatCompletionStreamResponse,
// ChatCompletionStreamChoice, ChatCompletionStreamChoiceDelta, Usage), in
// the order of the names of their levels below.
const (
	chunkID = iota
	chunkObject
	chunkCreated
	chunkModel
	chunkChoices
	chunkFingerprint
	chunkAnnotations
	chunkFilterResults
	chunkUsage
	chunkError
)

const (
	choiceIndex = iota
	choiceDelta
	choiceLogprobs
	choiceFinish
	choiceFilterResults
)

const (
	deltaContent = iota
	deltaRole
	deltaFunctionCall
	deltaToolCalls
	deltaRefusal
	deltaReasoning
)

const (
	usagePrompt = iota
	usageCompletion
	usageTotal
	usagePromptDetails
	usageCompletionDetails
)

var (
	chunkNames = newLevel("id", "object", "created", "model", "choices", "system_fingerprint",
		"prompt_annotations", "prompt_filter_results", "usage", "error")
	choiceNames = newLevel("index", "delta", "logprobs", "finish_reason", "content_filter_results")
	deltaNames  = newLevel("content", "role", "function_call", "tool_calls", "refusal", "reasoning_content")
	usageNames  = newLevel("prompt_tokens", "completion_tokens", "total_tokens",
		"prompt_tokens_details", "completion_tokens_details")
)

// fast decodes raw into d.fields and reports whether it could: false
// leaves raw to json.Unmarshal. It takes a chunk only when json.Unmarshal
// would decode it without an error to the same fields: strictly valid
// JSON, an object with no "error" member, each name of a field at most
// once, no name that could match a field in another way (another case, an
// escape, non-ASCII bytes), values of the field's type, or null; the
// members chatd does not read (tool calls, logprobs, content filters,
// token details) only when null.
func (d *chunkDecoder) fast(raw []byte) bool {
	d.scanner = scanner{in: raw}
	d.fields = chunkFields{choices: d.fields.choices[:0]}
	d.space()
	if d.i >= len(d.in) || d.in[d.i] != '{' || !d.members(chunkNames, 0, d.chunkMember) {
		return false
	}
	d.space()
	return d.i == len(d.in)
}

// chunkMember reads the value of the chunk's field idx.
func (d *chunkDecoder) chunkMember(idx, depth int) bool {
	switch idx {
	case chunkID, chunkObject, chunkModel, chunkFingerprint:
		_, ok := d.skipString()
		return ok
	case chunkCreated:
		_, ok := d.int()
		return ok
	case chunkChoices:
		return d.null() || d.in[d.i] == '[' && d.choices(depth+1)
	case chunkUsage:
		if d.null() {
			return true
		}
		d.fields.usage = &llm.Usage{}
		return d.in[d.i] == '{' && d.members(usageNames, depth+1, d.usageMember)
	case chunkAnnotations, chunkFilterResults:
		return d.null()
	}
	return false // an error member
}

// choices reads the array of choices at c.i (a '[').
func (d *chunkDecoder) choices(depth int) bool {
	if depth >= maxDepth {
		return false
	}
	if d.open(']') {
		return true
	}
	for more := true; more; {
		var ch choiceFields
		index := 0
		if !d.null() {
			ok := d.i < len(d.in) && d.in[d.i] == '{' && d.members(choiceNames, depth+1, func(idx, depth int) bool {
				return d.choiceMember(&ch, &index, idx, depth)
			})
			if !ok {
				return false
			}
		}
		if index == 0 {
			d.fields.choices = append(d.fields.choices, ch)
		}
		var ok bool
		if more, ok = d.next(']'); !ok {
			return false
		}
	}
	return true
}

// choiceMember reads the value of a choice's field idx.
func (d *chunkDecoder) choiceMember(ch *choiceFields, index *int, idx, depth int) bool {
	ok := true
	switch idx {
	case choiceIndex:
		*index, ok = d.int()
	case choiceDelta:
		ok = d.null() || d.in[d.i] == '{' && d.members(deltaNames, depth+1, func(idx, _ int) bool {
			return d.deltaMember(ch, idx)
		})
	case choiceFinish:
		ch.finish, ok = d.text(&d.texts)
	case choiceLogprobs, choiceFilterResults:
		ok = d.null()
	}
	return ok
}

// deltaMember reads the value of a delta's field idx.
func (d *chunkDecoder) deltaMember(ch *choiceFields, idx int) bool {
	ok := true
	switch idx {
	case deltaContent:
		ch.content, ok = d.text(&d.texts)
	case deltaReasoning:
		ch.reasoning, ok = d.text(&d.texts)
	case deltaRefusal:
		ch.refusal, ok = d.text(&d.texts)
	case deltaRole:
		_, ok = d.skipString()
	case deltaFunctionCall, deltaToolCalls:
		ok = d.null()
	}
	return ok
}

// usageMember reads the value of the usage's field idx.
func (d *chunkDecoder) usageMember(idx, _ int) bool {
	u, ok := d.fields.usage, true
	switch idx {
	case usagePrompt:
		u.PromptTokens, ok = d.int()
	case usageCompletion:
		u.CompletionTokens, ok = d.int()
	case usageTotal:
		u.TotalTokens, ok = d.int()
	case usagePromptDetails, usageCompletionDetails:
		ok = d.null()
	}
	return ok
}
