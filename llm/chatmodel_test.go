package llm_test

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"chatd/llm"
	"chatd/llm/fakeai"
)

// TestChatModel: discovered models are judged by the name after the id's
// last "/" and by whole words, so that chat models whose organisation or
// name holds a marked word inside another ("research", "mattshumer") or
// beside other words ("flash-image-preview", "search-preview") are kept,
// while embedding, speech, transcription, image, moderation, legacy,
// realtime, audio and video models are still left out.
func TestChatModel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		id   string
		chat bool
	}{
		{"gpt-4o", true},
		{"llama3", true},
		{"perplexity/sonar-deep-research", true},
		{"perplexity/sonar", true},
		{"openai/o4-mini-deep-research", true},
		{"alibaba/tongyi-deepresearch-30b-a3b", true},
		{"openai/gpt-4o-search-preview", true},
		{"gpt-4o-mini-search-preview", true},
		{"mattshumer/reflection-70b", true},
		{"google/gemini-2.5-flash-image-preview", true},
		{"openai/gpt-5-image-mini", true},
		{"openai/gpt-5-image", true},
		{"gemini-2.5-flash-image", true},
		{"google/gemini-3-pro-image-preview", true},
		{"models/gemini-3-pro-image-preview", true},
		{"qwen2.5:7b", true},

		{"text-embedding-3-small", false},
		{"text-embedding-ada-002", false},
		{"openai/text-embedding-3-large", false},
		{"nomic-embed-text:latest", false},
		{"embeddinggemma:300m", false},
		{"Qwen/Qwen3-Embedding-8B", false},
		{"tts-1", false},
		{"tts-1-hd", false},
		{"gpt-4o-mini-tts", false},
		{"whisper-1", false},
		{"openai/whisper-large-v3", false},
		{"gpt-4o-transcribe", false},
		{"dall-e-3", false},
		{"dall-e-2", false},
		{"gpt-image-1", false},
		{"gpt-image-1-mini", false},
		{"chatgpt-image-latest", false},
		{"grok-2-image-1212", false},
		{"grok-2-image", false},
		{"grok-imagine-image", false},
		{"models/imagen-3.0-generate-002", false},
		{"imagen-4.0-ultra-generate-001", false},
		{"Qwen/Qwen-Image", false},
		{"qwen-image-edit", false},
		{"models/gemini-2.0-flash-preview-image-generation", false},
		{"textembedding-gecko@003", false},
		{"multimodalembedding", false},
		{"omni-moderation-latest", false},
		{"text-moderation-stable", false},
		{"davinci-002", false},
		{"babbage-002", false},
		{"text-search-ada-doc-001", false},
		{"gpt-4o-realtime-preview", false},
		{"gpt-realtime", false},
		{"gpt-4o-audio-preview", false},
		{"gpt-audio", false},
		{"sora-2-pro", false},
		{"models/veo-2.0-generate-001", false},
		{"models/veo-3.0-generate-preview", false},
		{"models/gemini-2.0-flash-live-001", false},
		{"models/gemini-live-2.5-flash-preview", false},
		{"models/gemini-2.5-flash", true},
		{"TTS-1", false},
	}
	for _, tc := range tests {
		if got := llm.ChatModel(tc.id); got != tc.chat {
			t.Errorf("ChatModel(%q) = %v, want %v", tc.id, got, tc.chat)
		}
	}
}

// lockedBuffer is a log's output, written by the Router's list fetch.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestDiscoveryLogsModelsLeftOut: the listed models the filter leaves out
// are logged at debug level, so that an operator missing a model can see
// why.
func TestDiscoveryLogsModelsLeftOut(t *testing.T) {
	t.Parallel()
	srv := fakeai.Start(t, fakeai.Options{Models: []string{"gpt-4o", "whisper-1", "text-embedding-3-small"}})
	var out lockedBuffer
	log := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r := llm.NewRouter(llm.RouterOptions{Upstreams: []llm.Upstream{discovering("up", client(srv.URL))}, Logger: log})
	t.Cleanup(r.Close)
	if _, err := r.Models(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	if !strings.Contains(got, "level=DEBUG") || !strings.Contains(got, "whisper-1") ||
		!strings.Contains(got, "text-embedding-3-small") || strings.Contains(got, "gpt-4o") {
		t.Fatalf("log %q, want the models left out at debug level", got)
	}
}
