package llm

import (
	"slices"
	"strings"
	"unicode"
)

// notChat are the words, or runs of words, of a model's name that mark
// it as no chat model: embedding models (any word beginning "embed":
// text-embedding-3-small, nomic-embed-text, embeddinggemma), speech
// (tts-1, gpt-4o-mini-tts), transcription (whisper-1, gpt-4o-transcribe),
// images (dall-e-3, gpt-image-1, chatgpt-image-latest), moderation
// (omni-moderation-latest, text-moderation-stable), legacy completions
// (davinci-002, babbage-002) and search embeddings (text-search-ada-doc-001),
// realtime and audio models (gpt-realtime, gpt-4o-audio-preview) and video
// (sora-2). A run matches whole consecutive words only: "image" alone is
// no mark (Gemini's gemini-2.5-flash-image-preview and OpenRouter's
// openai/gpt-5-image answer in text too), nor is "search"
// (gpt-4o-search-preview and Perplexity's sonar models are chat models).
var notChat = [][]string{
	{"tts"}, {"whisper"}, {"transcribe"}, {"dall", "e"}, {"gpt", "image"}, {"chatgpt", "image"},
	{"moderation"}, {"davinci"}, {"babbage"}, {"text", "search"}, {"code", "search"},
	{"realtime"}, {"audio"}, {"sora"},
}

// ChatModel reports whether an upstream model id looks like a chat model,
// leaving out embedding, speech, transcription, image, moderation, legacy
// completion, realtime, audio and video models (notChat). It judges the
// name after the id's last "/" (not an organisation's, such as
// "mattshumer/"), by its whole words: letters and digits separated by
// anything else ("-", "_", ".", ":"), case aside.
func ChatModel(id string) bool {
	name := strings.ToLower(id[strings.LastIndex(id, "/")+1:])
	words := strings.FieldsFunc(name, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	if slices.ContainsFunc(words, func(w string) bool { return strings.HasPrefix(w, "embed") }) {
		return false
	}
	for _, run := range notChat {
		if containsRun(words, run) {
			return false
		}
	}
	return true
}

// containsRun reports whether run appears in words as consecutive elements.
func containsRun(words, run []string) bool {
	for i := 0; i+len(run) <= len(words); i++ {
		if slices.Equal(words[i:i+len(run)], run) {
			return true
		}
	}
	return false
}
