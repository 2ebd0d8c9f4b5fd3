package api

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"

	"chatd/persistence"
)

// writeParams adds a "- Parameters:" line to a markdown export's header
// list when the conversation sets any.
func writeParams(b *bufio.Writer, p *persistence.Params) {
	if p.IsZero() {
		return
	}
	var parts []string
	if p.Temperature != nil {
		parts = append(parts, "temperature "+strconv.FormatFloat(*p.Temperature, 'g', -1, 64))
	}
	if p.TopP != nil {
		parts = append(parts, "top-p "+strconv.FormatFloat(*p.TopP, 'g', -1, 64))
	}
	if p.MaxTokens != nil {
		parts = append(parts, fmt.Sprintf("max tokens %d", *p.MaxTokens))
	}
	if len(p.Stop) > 0 {
		quoted := make([]string, len(p.Stop))
		for i, s := range p.Stop {
			quoted[i] = strconv.Quote(s) // control characters escaped too
		}
		parts = append(parts, "stop "+strings.Join(quoted, ", "))
	}
	fmt.Fprintf(b, "- Parameters: %s\n", strings.Join(parts, "; "))
}

// writeReasoning renders an answer's reasoning before its text, as a
// quoted block headed "Reasoning", so a reader tells it from the answer.
func writeReasoning(b *bufio.Writer, m *persistence.Message) {
	r := strings.TrimRight(m.Reasoning, "\n")
	if r == "" {
		return
	}
	b.WriteString("> **Reasoning**\n>\n")
	for _, line := range strings.Split(r, "\n") {
		if line == "" {
			b.WriteString(">\n")
			continue
		}
		fmt.Fprintf(b, "> %s\n", escapeControls(line))
	}
	b.WriteString("\n")
}
