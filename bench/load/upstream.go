package load

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"chatd/llm/fakeai"
)

// upstreamStream reads the fake upstream's SSE directly: baseline A.
type upstreamStream struct {
	spec     *Spec
	i        int
	client   *http.Client
	expected string

	times        timings
	frames, size int64
}

func setupUpstream(ctx context.Context, spec *Spec) ([]stream, error) {
	tr := &http.Transport{MaxIdleConnsPerHost: spec.Streams, MaxIdleConns: spec.Streams, DisableCompression: true}
	client := &http.Client{Transport: tr}
	// Open a kept-alive connection per stream first, as a server that has
	// been running would have.
	err := parallel(ctx, spec.Streams, spec.Streams, func(ctx context.Context, _ int) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, spec.URL+"/models", nil)
		res, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("upstream %s: %w", spec.URL, err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		return res.Body.Close()
	})
	if err != nil {
		return nil, err
	}
	streams := make([]stream, spec.Streams)
	for i := range streams {
		streams[i] = &upstreamStream{spec: spec, i: i, client: client, expected: spec.expectedText()}
	}
	return streams, nil
}

func (s *upstreamStream) run(ctx context.Context, r *recorder) {
	for a := range s.spec.Answers {
		why, err := s.answer(ctx, r, a)
		if err != nil {
			why = err.Error()
		}
		r.answered(s.i, why)
		if ctx.Err() != nil {
			return
		}
	}
}

// chunk is the part of a chat.completion.chunk the load generator reads.
type chunk struct {
	Choices []struct {
		Delta struct {
			Content string `json:"content"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
}

// answer streams one completion; why says what was wrong with it ("" if nothing).
func (s *upstreamStream) answer(ctx context.Context, r *recorder, a int) (why string, err error) {
	body, _ := json.Marshal(map[string]any{"model": s.spec.Model, "stream": true,
		"messages": []map[string]string{{"role": "user", "content": s.spec.prompt(s.i, a)}}})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.spec.URL+"/chat/completions", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	sendAt := fakeai.MonotonicNanos()
	res, err := s.client.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Sprintf("upstream status %d", res.StatusCode), nil
	}
	var text strings.Builder
	first, finished := true, false
	br := bufio.NewReaderSize(res.Body, 16<<10)
	for {
		line, err := br.ReadSlice('\n')
		at := fakeai.MonotonicNanos()
		if err != nil {
			return "", fmt.Errorf("upstream stream ended without [DONE]: %w", err)
		}
		data, ok := bytes.CutPrefix(bytes.TrimRight(line, "\r\n"), []byte("data: "))
		if !ok {
			continue
		}
		if string(data) == "[DONE]" {
			break
		}
		var c chunk
		if err := json.Unmarshal(data, &c); err != nil {
			return "", fmt.Errorf("upstream chunk: %w", err)
		}
		if len(c.Choices) == 0 {
			continue
		}
		finished = finished || c.Choices[0].FinishReason != nil
		content := c.Choices[0].Delta.Content
		if content == "" {
			continue
		}
		if first {
			first = false
			r.firstToken(at - sendAt)
		}
		s.record(content, at, len(line))
		text.WriteString(content)
	}
	switch {
	case !finished:
		return "no finish reason", nil
	case stripStamps(text.String()) != s.expected:
		return "text differs from the expected answer", nil
	}
	return "", nil
}

func (s *upstreamStream) record(content string, at int64, size int) {
	s.times.add(content, at)
	s.frames++
	s.size += int64(size)
}

func (s *upstreamStream) finish(res *Result, all *timings) {
	res.Tokens += int64(len(s.times.stamps))
	res.Frames += s.frames
	res.Bytes += s.size
	all.merge(&s.times)
}
