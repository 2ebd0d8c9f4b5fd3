package llm

import (
	"slices"
	"strings"
	"unicode"
)

// notChat are the words, or runs of words, of a model's name that mark
// it as no chat model: speech (tts-1, gpt-4o-mini-tts), transcription
// (whisper-1, gpt-4o-transcribe), images (dall-e-3), moderation
// (omni-moderation-latest, text-moderation-stable), legacy completions
// (davinci-002, babbage-002) and search embeddings (text-search-ada-doc-001),
// realtime and audio models (gpt-realtime, gpt-4o-audio-preview) and video
// (sora-2, Google's veo-3.0-generate-preview). A run matches whole consecutive words only: "search" is no
// mark (gpt-4o-search-preview and Perplexity's sonar models are chat
// models). Embedding models and image models are judged by ChatModel
// itself (notChatWord, imageModel).
var notChat = [][]string{
	{"tts"}, {"whisper"}, {"transcribe"}, {"dall", "e"},
	{"moderation"}, {"davinci"}, {"babbage"}, {"text", "search"}, {"code", "search"},
	{"realtime"}, {"audio"}, {"sora"}, {"veo"},
}

// ChatModel reports whether an upstream model id looks like a chat model,
// leaving out embedding, speech, transcription, image, moderation, legacy
// completion, realtime, audio and video models (notChat, notChatWord,
// imageModel, geminiLive). It judges the name after the id's last "/" (not an
// organisation's, such as "mattshumer/"), by its whole words: letters and
// digits separated by anything else ("-", "_", ".", ":"), case aside.
func ChatModel(id string) bool {
	name := strings.ToLower(id[strings.LastIndex(id, "/")+1:])
	words := strings.FieldsFunc(name, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	if slices.ContainsFunc(words, notChatWord) || imageModel(words) || geminiLive(words) {
		return false
	}
	for _, run := range notChat {
		if containsRun(words, run) {
			return false
		}
	}
	return true
}

// notChatWord reports whether one word marks an embedding model (a word
// holding "embed": text-embedding-3-small, nomic-embed-text,
// embeddinggemma, Vertex's textembedding-gecko and multimodalembedding)
// or Google's image generator (a word beginning "imagen":
// imagen-4.0-generate-001).
func notChatWord(w string) bool {
	return strings.Contains(w, "embed") || strings.HasPrefix(w, "imagen")
}

// imageModel reports whether the word "image" marks an image generator
// (gpt-image-1, chatgpt-image-latest, grok-2-image-1212, Qwen-Image,
// gemini-2.0-flash-preview-image-generation), rather than one of the
// multimodal chat models that answer in text and images: Gemini's image
// models (gemini-2.5-flash-image, gemini-3-pro-image-preview), where only
// "image-generation" marks the generator, a "flash-image" in any other
// name, and OpenAI's "gpt-N-image" (gpt-5-image-mini, on OpenRouter).
func imageModel(words []string) bool {
	gemini := len(words) > 0 && words[0] == "gemini"
	for i, w := range words {
		if w != "image" {
			continue
		}
		generation := i+1 < len(words) && words[i+1] == "generation"
		flash := i >= 1 && words[i-1] == "flash"
		gptN := i >= 2 && words[i-2] == "gpt" && isDigits(words[i-1])
		if gemini && generation || !gemini && !flash && !gptN {
			return true
		}
	}
	return false
}

// geminiLive reports whether a Gemini name is one of its Live API models
// (gemini-2.0-flash-live-001, gemini-live-2.5-flash-preview), which answer
// over a socket of their own, not chat completions.
func geminiLive(words []string) bool {
	return len(words) > 0 && words[0] == "gemini" && slices.Contains(words, "live")
}

// isDigits reports whether w is a run of ASCII digits.
func isDigits(w string) bool {
	return w != "" && strings.Trim(w, "0123456789") == ""
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
